"""flowstate invoke and flowstate test: a function of the working tree runs
in a real worker, without a node and without committing anything."""
import json
import os
import shutil

from harness import check, cli, counter_project, git_head, make_project, run, tmpdir, write_files

FIXTURE_PACKAGE = os.path.join(os.path.dirname(__file__), "..", "..", "sandbox", "tests", "fixtures", "npm_project",
                               "node_modules", "tiny-pad")

DETERMINISTIC_JS = """export default function (input, state, ctx) {
  console.log('called with', input);
  if (input.fail) throw new Error('asked to fail');
  if (input.forget) return { state: null };
  return { outputs: [{ now: Date.now(), r: Math.random(), key: ctx.key, flow: ctx.flow, block: ctx.block,
                       revision: ctx.revision, id: ctx.messageId }], state: { seen: (state ? state.seen : 0) + 1 } };
}
"""


def project_with(function):
    root = tmpdir() + "/proj"
    return counter_project(root, function=function)


def invoke(project, *args):
    p = cli("invoke", "counter", "counter", "--project", project, *args)
    return p.returncode, (json.loads(p.stdout) if p.stdout.strip() else None), p.stderr


def test_invoke_prints_outputs_state_and_logs():
    """invoke prints outputs, the new state, its change and the logs; ctx is fixed by the options"""
    project = project_with(DETERMINISTIC_JS)
    head = git_head(project)
    rc, out, err = invoke(project, "--key", "k1", "--input", '{"a": 1}', "--state", '{"seen": 4}',
                          "--time", "1700000000000", "--message-id", "m-1")
    check(rc == 0, f"rc {rc}: {err}")
    check(out["stateChange"] == "set" and out["state"] == {"seen": 5}, f"state: {out}")
    o = out["outputs"][0]
    check(o["now"] == 1700000000000 and o["key"] == "k1" and o["flow"] == "counter" and o["block"] == "counter"
          and o["revision"] == "worktree" and o["id"] == "m-1", f"ctx: {o}")
    check(out["logs"] == ['called with {"a":1}'], f"logs: {out['logs']}")
    # The same message id and time give the same result, byte for byte.
    rc2, again, _ = invoke(project, "--key", "k1", "--input", '{"a": 1}', "--state", '{"seen": 4}',
                           "--time", "1700000000000", "--message-id", "m-1")
    check(rc2 == 0 and again == out, f"a re-run differs: {again} vs {out}")
    check(git_head(project) == head, "invoke committed something")


def test_invoke_reports_deleted_state_and_errors():
    """a null state is reported as deleted; a throw is an Exception error with exit code 1"""
    project = project_with(DETERMINISTIC_JS)
    rc, out, err = invoke(project, "--key", "k", "--input", '{"forget": true}', "--state", '{"seen": 1}')
    check(rc == 0 and out["stateChange"] == "deleted" and out["state"] is None and out["outputs"] == [],
          f"deleted: {rc} {out} {err}")
    rc, out, err = invoke(project, "--key", "k", "--input", '{"fail": true}')
    check(rc == 1, f"a throw exits 1, got {rc}")
    check(out["error"]["type"] == "Exception" and "asked to fail" in out["error"]["message"]
          and "stack" in out["error"]["details"], f"error: {out}")


def test_invoke_bundles_npm_packages_and_refuses_fs():
    """a function importing a package from node_modules runs; one importing fs is refused naming it"""
    project = project_with("import pad from 'tiny-pad';\n"
                           "export default function (input) { return { output: pad(input.n, 4, '0') }; }\n")
    shutil.copytree(FIXTURE_PACKAGE, os.path.join(project, "node_modules", "tiny-pad"))
    rc, out, err = invoke(project, "--key", "k", "--input", '{"n": 7}')
    check(rc == 0 and out["outputs"] == ["0007"], f"bundled: {rc} {out} {err}")
    write_files(project, {"functions/counter.js": "import fs from 'fs';\nexport default function () { return {}; }\n"})
    rc, out, err = invoke(project, "--key", "k", "--input", "{}")
    check(rc != 0 and 'functions/counter.js: cannot import "fs": Node built-ins are not available' in err,
          f"fs: {rc} {out} {err}")


def test_test_command_prints_a_table_and_fails_on_a_difference():
    """flowstate test runs tests/<function>/*.yaml and exits 1 naming the first difference"""
    project = project_with(DETERMINISTIC_JS)
    write_files(project, {
        "tests/counter/counts.yaml": "key: k\ninput: {a: 1}\nstate: {seen: 1}\n"
                                     "ctx: {time: 5, messageId: m}\n"
                                     "expect:\n  outputs:\n    - {now: 5, r: %s, key: k, flow: counter, block: counter,"
                                     " revision: worktree, id: m}\n  state: {seen: 2}\n",
        "tests/counter/forgets.yaml": "input: {forget: true}\nstate: {seen: 3}\nexpect:\n  state: null\n",
        "tests/counter/fails.yaml": "input: {fail: true}\nexpect:\n  error: Exception\n",
    })
    # The expected random number is whatever the function gives for messageId m.
    rc, out, err = invoke(project, "--key", "k", "--input", '{"a": 1}', "--state", '{"seen": 1}',
                          "--time", "5", "--message-id", "m")
    check(rc == 0, err)
    path = os.path.join(project, "tests/counter/counts.yaml")
    text = open(path).read() % json.dumps(out["outputs"][0]["r"])
    open(path, "w").write(text)
    p = cli("test", "--project", project)
    check(p.returncode == 0, f"all pass: {p.returncode}\n{p.stdout}{p.stderr}")
    check("tests/counter/counts.yaml" in p.stdout and "3 passed, 0 failed" in p.stdout, p.stdout)

    write_files(project, {"tests/counter/wrong.yaml": "input: {a: 1}\nexpect:\n  state: {seen: 7}\n"})
    p = cli("test", "--project", project, "counter")
    check(p.returncode == 1, f"a failing case exits 1: {p.returncode}\n{p.stdout}")
    line = next((l for l in p.stdout.splitlines() if "wrong.yaml" in l), "")
    check("FAIL" in line and "state.seen: expected 7, got 1" in line, f"the first difference: {p.stdout}")


def test_every_template_s_own_test_cases_pass():
    """flowstate init --template T, then flowstate test in it: every case of every template passes (the counter
    template's cases were not valid YAML)"""
    for template in ("todomvc", "counter", "sensors", "iot"):
        project = tmpdir() + "/tpl-" + template
        p = cli("init", "--template", template, "--skip-npm", project)
        check(p.returncode == 0, f"init {template}: {p.stdout} {p.stderr}")
        p = cli("test", "--project", project)
        check(p.returncode == 0 and " 0 failed" in p.stdout and "FAIL" not in p.stdout,
              f"{template}'s cases: {p.stdout} {p.stderr}")


def test_a_case_file_s_mistake_fails_that_case_naming_its_line():
    """a wrong type, an unknown key (a typo would check nothing), an unknown error type or an endless alias in
    a case file fails that case with its line; the command itself does not crash and the other cases run"""
    project = project_with(DETERMINISTIC_JS)
    write_files(project, {
        "tests/counter/a-key-map.yaml": "key: {a: 1}\ninput: {a: 1}\n",
        "tests/counter/b-time.yaml": "input: {a: 1}\nctx: {time: abc}\n",
        "tests/counter/c-typo.yaml": "input: {a: 1}\nexpect:\n  outptu: 1\n",
        "tests/counter/d-error.yaml": "input: {fail: true}\nexpect:\n  error: Exceptoin\n",
        "tests/counter/e-alias.yaml": "input: &a {body: *a}\n",
        "tests/counter/f-good.yaml": "input: {fail: true}\nexpect:\n  error: Exception\n",
    })
    p = cli("test", "--project", project)
    check(p.returncode == 1 and "1 passed, 5 failed" in p.stdout, f"one case passes: {p.returncode}\n{p.stdout}{p.stderr}")
    lines = {l.split()[0].rsplit("/", 1)[1]: l for l in p.stdout.splitlines() if l.startswith("tests/")}
    check("line 1" in lines["a-key-map.yaml"], lines["a-key-map.yaml"])
    check("line 2" in lines["b-time.yaml"], lines["b-time.yaml"])
    check("line 3: unknown key expect.outptu" in lines["c-typo.yaml"], lines["c-typo.yaml"])
    check("line 3: error: Exceptoin is not an error" in lines["d-error.yaml"], lines["d-error.yaml"])
    check("nests deeper than 64 levels" in lines["e-alias.yaml"], lines["e-alias.yaml"])


def test_invoke_of_a_python_function_imports_helpers_from_the_working_tree():
    """invoke of a Python function imports functions/ and vendor/ modules as they are in the working tree"""
    project = make_project(tmpdir() + "/pyproj", {
        "flowstate.yaml": "name: pyproj\n",
        "flows/counter.yaml": "blocks:\n  - http.Request: count\n  - py.Function: counter\n  - http.Response: reply\n",
        "drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /count/{key}\n",
        "drivers/reply.yaml": "kind: http.Response\n",
        "functions/counter.py": "from lib.words import greeting\nimport tinypkg\n\n\ndef entrypoint(input, state):\n"
                                "    return {\"output\": tinypkg.wrap(greeting(input[\"name\"]))}\n",
        "functions/lib/words.py": "def greeting(name):\n    return \"hello \" + name\n",
        "vendor/tinypkg/__init__.py": "from ._impl import wrap\n",
        "vendor/tinypkg/_impl.py": "def wrap(text):\n    return \"[\" + text + \"]\"\n",
    })
    rc, out, err = invoke(project, "--key", "k", "--input", '{"name": "ada"}')
    check(rc == 0 and out["outputs"] == ["[hello ada]"], f"with helpers: {rc} {out} {err}")
    # Uncommitted edits count: invoke runs the working tree.
    write_files(project, {"functions/lib/words.py": "def greeting(name):\n    return \"hi \" + name\n"})
    rc, out, err = invoke(project, "--key", "k", "--input", '{"name": "ada"}')
    check(rc == 0 and out["outputs"] == ["[hi ada]"], f"after an edit: {rc} {out} {err}")


def test_a_mistyped_command_an_empty_message_and_a_linked_function_file_are_named():
    """the CLI names an unknown command and lists the real ones, refuses an empty deploy message, and refuses a
    function file that is a symbolic link as the node would (it reads the commit, where git keeps the link)"""
    p = cli("bogus")
    check(p.returncode != 0 and 'unknown command "bogus"' in p.stderr and "deploy" in p.stderr, f"bogus: {p.stderr}")
    p = cli("state", "bogus")
    check(p.returncode != 0 and 'unknown command "bogus" after "state"' in p.stderr and "get" in p.stderr,
          f"state bogus: {p.stderr}")
    project = project_with(DETERMINISTIC_JS)
    p = cli("deploy", "--project", project, "-m", " ")
    check(p.returncode != 0 and "the commit message is empty" in p.stderr, f"empty message: {p.returncode} {p.stderr}")
    real = os.path.join(project, "elsewhere.js")
    os.rename(os.path.join(project, "functions", "counter.js"), real)
    os.symlink(real, os.path.join(project, "functions", "counter.js"))
    rc, out, err = invoke(project, "--key", "k", "--input", "{}")
    check(rc != 0 and "functions/counter.js" in err, f"a linked file: {rc} {out} {err}")


if __name__ == "__main__":
    run([test_invoke_prints_outputs_state_and_logs, test_invoke_reports_deleted_state_and_errors,
         test_invoke_bundles_npm_packages_and_refuses_fs, test_test_command_prints_a_table_and_fails_on_a_difference,
         test_invoke_of_a_python_function_imports_helpers_from_the_working_tree,
         test_every_template_s_own_test_cases_pass, test_a_case_file_s_mistake_fails_that_case_naming_its_line,
         test_a_mistyped_command_an_empty_message_and_a_linked_function_file_are_named])
