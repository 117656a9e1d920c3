"""Limits: the operator's plan (`serve --plan`) is the ceiling, a project's
flowstate.yaml may only lower it, and exceeding a limit is a typed error."""
import os
import time

from harness import Node, check, cli, make_project, run, tmpdir, write_files

# Busy for input.body.spins iterations, with a state of input.body.state bytes.
SPIN_JS = """export default function (input, state) {
  let x = 0;
  for (let i = 0; i < input.body.spins; i++) x = (x + i * 7) % 1000003;
  return {output: {status: 200, body: {x}}, state: {blob: 'y'.repeat(input.body.state || 0)}};
}
"""

BIG_PY = """def entrypoint(input, state):
    return {"output": {"status": 200, "body": {"text": "x" * input["body"]["output"]}},
            "state": {"blob": "y" * input["body"].get("state", 0)}}
"""


def project(root, manifest_extra="", name=None, language="js"):
    name = name or os.path.basename(root)
    function = ("functions/work.js", SPIN_JS) if language == "js" else ("functions/work.py", BIG_PY)
    return make_project(root, {
        "flowstate.yaml": f"name: {name}\n{manifest_extra}",
        "flows/work.yaml": f"blocks:\n  - http.Request: job\n  - {language}.Function: work\n  - http.Response: reply\n",
        "drivers/job.yaml": "kind: http.Request\nmethod: POST\npath: /work/{key}\n",
        "drivers/reply.yaml": "kind: http.Response\n",
        function[0]: function[1],
    })


def deploy(root, node, message):
    return cli("deploy", "-m", message, "--project", root, data=node.data)


def plan_file(text):
    path = os.path.join(tmpdir("flowstate-plan-"), "plan.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_manifest_limits_lower_output_and_state():
    """a project's limits.output and limits.state make bigger results ResourceExhausted errors, in JS and Python"""
    js = project(os.path.join(tmpdir(), "lowjs"), "limits:\n  output: 1KiB\n  state: 2KiB\n")
    py = project(os.path.join(tmpdir(), "lowpy"), "limits:\n  output: 1KiB\n  state: 2KiB\n", language="py")
    for root, lang in ((js, "js"), (py, "py")):
        node = Node([root]).start()
        try:
            status, body = node.admin_get("/api/v1/projects")
            check(status == 200 and body[0]["limits"]["outputBytes"] == 1024 and body[0]["limits"]["stateBytes"] == 2048,
                  f"{lang}: the API shows the project's limits: {status} {body}")
            small = {"spins": 10, "state": 100} if lang == "js" else {"output": 10, "state": 100}
            status, body = node.request("POST", "/work/a", small)
            check(status == 200, f"{lang}: a small result passes: {status} {body}")
            big_state = {"spins": 10, "state": 4096} if lang == "js" else {"output": 10, "state": 4096}
            status, body = node.request("POST", "/work/a", big_state)
            check(status == 500 and body["title"] == "ResourceExhausted", f"{lang}: a state over limits.state: {status} {body}")
            check("state is" in body["detail"] and "2048" in body["detail"], f"{lang}: the error names the limit: {body}")
            if lang == "py":
                status, body = node.request("POST", "/work/a", {"output": 4096})
                check(status == 500 and body["title"] == "ResourceExhausted" and "outputs are" in body["detail"]
                      and "1024" in body["detail"],
                      f"py: an output over limits.output: {status} {body}")
            node.wait_idle()
            errors = node.errors()
            check(errors and all(e["type"] == "ResourceExhausted" for e in errors),
                  f"{lang}: the error queue holds ResourceExhausted errors: {errors}")
            state = node.state("work", "work", "a")
            check(state == {"blob": "y" * 100}, f"{lang}: the state of the failed call is unchanged: {str(state)[:80]}")
        finally:
            node.stop()


ALLOC_JS = """export default function (input) {
  const a = [];
  for (let i = 0; i < input.body.n; i++) a.push(new Array(1e6).fill(i + 0.5));  // 8 MB each
  return {output: {status: 200, body: {n: a.length}}};
}
"""


def test_manifest_memory_lowers_the_worker_memory():
    """limits.memory: 64MiB makes a 96 MB allocation ResourceExhausted that the plan's 256MiB allows"""
    for memory, expect in (("", 200), ("limits:\n  memory: 64MiB\n", 500)):
        root = project(os.path.join(tmpdir(), "alloc"), memory)
        write_files(root, {"functions/work.js": ALLOC_JS})
        node = Node([root]).start()
        try:
            deploy(root, node, "allocate")
            status, body = node.request("POST", "/work/a", {"n": 12})
            check(status == expect, f"memory {memory or 'of the plan'}: {status} {body}")
            if expect == 500:
                check(body["title"] == "ResourceExhausted" and "64 MiB" in body["detail"], f"{body}")
            status, body = node.request("POST", "/work/b", {"n": 1})
            check(status == 200, f"the worker answers after: {status} {body}")
        finally:
            node.stop()


def test_a_limit_above_the_plan_is_refused_naming_the_line():
    """a project asking for more than the operator's plan is refused at start and at deploy, naming flowstate.yaml:line"""
    plan = plan_file("# the operator's plan\ntimeout: 2s\nmemory: 128MiB\n")
    root = project(os.path.join(tmpdir(), "greedy"), "timeout: 1s\nlimits:\n  memory: 256MiB\n")
    p = cli("serve", "--plan", plan, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", root,
            data=tmpdir("flowstate-data-"))
    check(p.returncode != 0, "the node refuses to serve a project above its plan")
    check("flowstate.yaml:4: limits.memory is 256MiB, above this node's plan of 128MiB" in p.stderr,
          f"the refusal names the line: {p.stderr}")

    root = project(os.path.join(tmpdir(), "modest"), "timeout: 1s\n")
    node = Node([root], extra_args=["--plan", plan]).start()
    try:
        write_files(root, {"flowstate.yaml": "name: modest\ntimeout: 5s\n"})
        p = deploy(root, node, "ask for more time")
        check(p.returncode != 0, "a deploy above the plan fails")
        check("flowstate.yaml:2: timeout is 5s, above this node's plan of 2s" in p.stderr + p.stdout,
              f"the deploy's refusal names the line: {p.stderr} {p.stdout}")
        status, body = node.request("POST", "/work/a", {"spins": 10})
        check(status == 200, f"the old revision keeps serving: {status} {body}")
    finally:
        node.stop()


def test_bad_limits_are_refused_with_their_line():
    """an unknown key or a malformed size under limits: is refused naming the line"""
    root = project(os.path.join(tmpdir(), "typo"), "limits:\n  memroy: 64MiB\n  output: lots\n")
    p = cli("deploy", "-m", "bad limits", "--project", root, data=tmpdir("flowstate-data-"))
    out = p.stderr + p.stdout
    check(p.returncode != 0, "deploy refuses bad limits before reaching a node")
    check("flowstate.yaml:3: limits.unknown key \"memroy\"; expected one of" in out,
          f"the unknown key is named with its line: {out}")
    check("flowstate.yaml:4: expected `limits.output:` to be a positive size like 1MiB, found \"lots\"" in out,
          f"the malformed size is named with its line: {out}")
    bad_plan = plan_file("timeout: 2s\nprojects:\n  web:\n    memory: 1KiB\n")
    p = cli("serve", "--plan", bad_plan, root, data=tmpdir("flowstate-data-"))
    check(p.returncode != 0 and f"{bad_plan}:4: expected `projects.web.memory:` to be at least 32MiB" in p.stderr,
          f"a bad plan file is refused naming its line: {p.stderr}")


def test_a_deploy_that_changes_limits_gets_new_workers():
    """lowering timeout: in a deploy makes a long call time out; raising it back lets it finish, state kept"""
    plan = plan_file("timeout: 10s\nprojects:\n  tight:\n    timeout: 20s\n")
    root = project(os.path.join(tmpdir(), "tight"), "timeout: 10s\n")
    node = Node([root], extra_args=["--plan", plan]).start()
    try:
        spins = 30_000_000  # a few hundred ms of CPU
        status, body = node.request("POST", "/work/a", {"spins": spins, "state": 3})
        check(status == 200, f"within 10s: {status} {body}")
        first_workers = set(node.worker_pids(b"flowstate-worker"))
        check(first_workers, "the first limits run on some worker")
        write_files(root, {"flowstate.yaml": "name: tight\ntimeout: 20ms\n"})
        p = deploy(root, node, "tighten")
        check(p.returncode == 0, f"lowering is allowed: {p.stderr}")
        status, body = node.request("POST", "/work/b", {"spins": spins})
        check(status == 504 and body["title"] == "Timeout" and "20 ms" in body["detail"],
              f"the new limit holds: {status} {body}")
        status, body = node.request("POST", "/work/c", {"spins": 10, "state": 5})
        check(status == 200, f"short calls still pass: {status} {body}")
        write_files(root, {"flowstate.yaml": "name: tight\ntimeout: 15s\n"})
        p = deploy(root, node, "per-project plan allows 15s")
        check(p.returncode == 0, f"the project's own plan (20s) is its ceiling: {p.stderr}")
        status, body = node.request("POST", "/work/a", {"spins": spins, "state": 4})
        check(status == 200, f"after raising the limit: {status} {body}")
        status, body = node.admin_get("/api/v1/projects")
        check(body[0]["limits"]["timeoutMs"] == 15000 and body[0]["limits"]["wallMs"] == 30000,
              f"the API shows the new limits: {body}")
        check(node.state("work", "work", "c") == {"blob": "yyyyy"}, "state written under other limits is kept")
        # Two limit changes later the first workers are stopped (the ones
        # before the active revision's stay for the fence).
        deadline = time.time() + 5
        while time.time() < deadline and first_workers & set(node.worker_pids(b"flowstate-worker")):
            time.sleep(0.1)
        left = first_workers & set(node.worker_pids(b"flowstate-worker"))
        check(not left, f"the first limits' workers are stopped: {left}")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_manifest_limits_lower_output_and_state, test_manifest_memory_lowers_the_worker_memory,
         test_a_limit_above_the_plan_is_refused_naming_the_line,
         test_bad_limits_are_refused_with_their_line, test_a_deploy_that_changes_limits_gets_new_workers])
