"""JavaScript probes: the V8 worker exposes no I/O at all, so most escapes end
as a ReferenceError or a refused import; limits end as Timeout or
ResourceExhausted. `expect` as in probes_py.py."""


def probe(name, source, expect, through_node=None):
    """`through_node`: the outcome through a node's deploy when it differs
    (the node bundles JS with esbuild first, which refuses Node built-ins)."""
    p = {"name": name, "source": source, "expect": expect}
    if through_node:
        p["through_node"] = through_node
    return p


def returns(expression):
    return "export default function (input, state, ctx) { return {output: %s}; }\n" % expression


def typeof(name):
    return probe("js_no_" + name, returns("typeof " + name), ("ok", "undefined"))


JS_PROBES = [
    probe("js_require_fs", returns("require('fs').readFileSync('/etc/passwd', 'utf8')"),
          ("Exception", "require is not defined"),
          ("LoadFailed", "cannot import \"fs\": Node built-ins are not available")),
    probe("js_import_fs", "import fs from 'fs';\nexport default function () { return {output: fs.readFileSync('/etc/passwd')}; }\n",
          ("LoadFailed", "import of \"fs\" is not supported"), ("LoadFailed", "cannot import \"fs\": Node built-ins are not available")),
    probe("js_import_child_process", "import cp from 'child_process';\nexport default function () { return {output: cp.execSync('id')}; }\n",
          ("LoadFailed", "import of \"child_process\""), ("LoadFailed", "cannot import \"child_process\": Node built-ins are not available")),
    probe("js_dynamic_import", "export default async function () { const fs = await import('fs'); return {output: 1}; }\n",
          ("Exception",), ("LoadFailed", "cannot import \"fs\": Node built-ins are not available")),
    probe("js_process_env", returns("process.env.FLOWSTATE_HOSTILE_SECRET"), ("Exception", "process is not defined")),
    probe("js_constructor_escape", returns("(function(){}).constructor('return process')().env"),
          ("Exception", "process is not defined")),
    typeof("fetch"),
    typeof("XMLHttpRequest"),
    typeof("WebSocket"),
    typeof("WebAssembly"),
    typeof("setTimeout"),
    typeof("setInterval"),
    typeof("Deno"),
    typeof("Bun"),
    typeof("importScripts"),
    typeof("Worker"),
    probe("js_globals", returns("Object.getOwnPropertyNames(globalThis).filter(n => /^(process|require|module|Buffer|fetch|os|fs|global)$/.test(n))"),
          ("ok", [])),
    probe("js_date_is_message_time", returns("[Date.now() === ctx.time, new Date().getTime() === ctx.time]"),
          ("ok", [True, True])),
    probe("js_infinite_loop", returns("(() => { for (;;) {} })()"), ("Timeout", "time limit")),
    probe("js_loop_catching_termination", returns("(() => { for (;;) { try { for (;;) {} } catch (e) {} } })()"),
          ("Timeout", "time limit")),
    probe("js_microtask_loop", "export default async function () { for (;;) await null; }\n", ("Timeout", "time limit")),
    probe("js_regex_backtracking", returns("/(a+)+$/.test('a'.repeat(64) + 'b')"), ("Timeout", "time limit")),
    probe("js_top_level_loop", "for (;;) {}\nexport default function () { return {output: 1}; }\n",
          ("LoadFailed", "time limit")),
    probe("js_unbounded_allocation", returns("(() => { const a = []; for (;;) a.push(new Array(1e7).fill(1.5)); })()"),
          (("ResourceExhausted", "Timeout"),)),
    probe("js_huge_string", returns("'x'.repeat(2 ** 30)"), ("Exception", "Invalid string length")),
    probe("js_huge_array_buffer", returns("new ArrayBuffer(2 ** 40).byteLength"), ("Exception", "RangeError")),
    probe("js_deep_recursion", "function f(n) { return f(n + 1); }\nexport default function () { return {output: f(0)}; }\n",
          ("Exception", "Maximum call stack size exceeded")),
    probe("js_deep_json_output", returns("JSON.parse('['.repeat(1e5) + ']'.repeat(1e5))"), ("Exception",)),
    probe("js_huge_output", returns("'x'.repeat(20 << 20)"), ("ResourceExhausted", "limit")),
    probe("js_log_flood", "export default function () { for (let i = 0; i < 1e5; i++) console.log('line', i); return {output: 'done'}; }\n",
          ("ok", lambda got, r: True if got == "done" and sum(len(l) for l in r["logs"]) < 70 * 1024
           and "more lines dropped" in r["logs"][-1] else f"logs not capped: {len(r['logs'])} lines")),
    probe("js_huge_state", "export default function () { return {state: {blob: 'x'.repeat(2 << 20)}}; }\n",
          ("ResourceExhausted", "state is")),
    probe("js_cycle_output", returns("(() => { const a = {}; a.a = a; return a; })()"), ("Exception", "cycle")),
    probe("js_bigint_output", returns("10n"), ("Exception", "BigInt")),
    probe("js_nan_output", returns("NaN"), ("Exception", "NaN")),
    probe("js_unsettled_promise", "export default function () { return new Promise(() => {}); }\n",
          ("Exception", "did not settle")),
    # Built-ins are frozen: one call cannot leave anything for the next.
    probe("js_prototype_pollution", "export default function () { Object.prototype.polluted = 1; JSON.parse = null; return {output: 'set'}; }\n",
          ("Exception", "Cannot add property polluted, object is not extensible")),
    probe("js_natives_syntax", returns("%GetOptimizationStatus(() => 1)"), ("LoadFailed", "SyntaxError")),
    probe("js_atomics_wait", returns("Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000)"),
          ("Exception", "SharedArrayBuffer is not defined")),
    probe("js_timezone", returns("new Intl.DateTimeFormat().resolvedOptions().timeZone"), ("ok", "UTC")),
]
