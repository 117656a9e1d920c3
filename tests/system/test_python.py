"""py.Function end to end: a Python counter under concurrent clients, a
worker killed under load, Python errors with tracebacks, and modules
imported from functions/ and vendor/."""
import os
import signal
import threading

from harness import Node, check, cli, git_head, make_project, run, tmpdir, write_files

COUNTER_PY = '''def entrypoint(input, state, ctx):
    state = state or {"count": 0, "ids": []}
    state["ids"].append(input["body"]["id"])
    state["count"] = len(state["ids"])
    if input["body"]["id"] == "boom":
        raise ValueError("no boom please")
    return {"output": {"status": 200, "body": {"count": state["count"], "key": ctx["key"]}}, "state": state}
'''


def py_project(root):
    return make_project(root, {
        "flowstate.yaml": "name: pycount\n",
        "flows/counter.yaml": "blocks:\n  - http.Request: count\n  - py.Function: counter\n  - http.Response: reply\n",
        "drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /count/{key}\n",
        "drivers/reply.yaml": "kind: http.Response\n",
        "functions/counter.py": COUNTER_PY,
    })


def python_workers(node):
    return node.worker_pids(b"flowstate-pyworker")


def test_python_counter_is_exact():
    """16 concurrent clients x 100 increments over 8 keys through a Python function: exact"""
    node = Node([py_project(tmpdir() + "/pycount")]).start()
    try:
        sent = [0] * 8
        lock = threading.Lock()
        failures = []

        def client(c):
            conn = node.connection()
            for i in range(100):
                k = (c + i) % 8
                status, body = node.request("POST", f"/count/k{k}", {"id": f"{c}-{i}"}, conn=conn)
                if status != 200 or body["key"] != f"k{k}":
                    failures.append((status, body))
                with lock:
                    sent[k] += 1

        threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(not failures, f"{len(failures)} failed: {failures[:3]}")
        for k in range(8):
            state = node.state("counter", "counter", f"k{k}")
            check(state["count"] == sent[k] and len(set(state["ids"])) == sent[k], f"k{k}: {state['count']} != {sent[k]}")
    finally:
        node.stop()


def test_killed_worker_loses_and_doubles_nothing():
    """kill -9 of the Python worker under load: every acknowledged increment is applied exactly once"""
    node = Node([py_project(tmpdir() + "/pycount")]).start()
    try:
        acked, sent = set(), set()
        lock = threading.Lock()
        stop = threading.Event()
        halfway = threading.Event()
        errors = []

        def client(c):
            conn = node.connection()
            i = 0
            while not stop.is_set():
                key, mid = f"k{(c + i) % 8}", f"{c}-{i}"
                with lock:
                    sent.add((key, mid))
                status, body = node.request("POST", f"/count/{key}", {"id": mid}, conn=conn)
                if status == 200:
                    with lock:
                        acked.add((key, mid))
                        if len(acked) >= 300:
                            halfway.set()
                else:
                    errors.append((status, body))
                i += 1

        threads = [threading.Thread(target=client, args=(c,)) for c in range(16)]
        for t in threads:
            t.start()
        check(halfway.wait(120), "no load")
        killed = python_workers(node)
        check(killed, "found no Python worker to kill")
        for pid in killed:
            os.kill(pid, signal.SIGKILL)
        target = len(acked) + 600
        while len(acked) < target and not errors:
            threads[0].join(0.05)
        stop.set()
        for t in threads:
            t.join()
        check(not errors, f"requests failed after the kill: {errors[:3]}")
        node.wait_idle()
        for k in range(8):
            state = node.state("counter", "counter", f"k{k}")
            ids = state["ids"]
            check(len(ids) == len(set(ids)), f"k{k}: an increment was applied twice")
            mine = {m for (key, m) in acked if key == f"k{k}"}
            check(mine <= set(ids), f"k{k}: acknowledged increments lost: {sorted(mine - set(ids))[:5]}")
        check(set(python_workers(node)) - set(killed), "a fresh worker replaced the killed one")
    finally:
        node.stop()


def test_python_exception_carries_the_traceback():
    """a Python exception is an Exception error with its traceback in the details"""
    node = Node([py_project(tmpdir() + "/pycount")]).start()
    try:
        status, body = node.request("POST", "/count/x", {"id": "boom"})
        check(status == 500 and "no boom please" in body["detail"], f"{status} {body}")
        error = node.errors()[0]
        check("functions/counter.py" in error["details"]["traceback"], f"traceback: {error['details']}")
        check(node.state("counter", "counter", "x") is None, "the failed call changed no state")
    finally:
        node.stop()


GREET_PY = '''import json
import helpers
from textfmt import shout
from textfmt.util import suffix


def entrypoint(input, state, ctx):
    body = input["body"]
    if body.get("explode"):
        from textfmt import bomb
        bomb.go()
    return {"output": {"status": 200, "body": {"text": shout(helpers.greeting(body["name"])) + suffix(),
                                               "json": json.dumps([1, 2])}}}
'''

MODULE_FILES = {
    "flowstate.yaml": "name: greet\n",
    "flows/greet.yaml": "blocks:\n  - http.Request: hello\n  - py.Function: greet\n  - http.Response: reply\n",
    "drivers/hello.yaml": "kind: http.Request\nmethod: POST\npath: /greet/{key}\n",
    "drivers/reply.yaml": "kind: http.Response\n",
    "functions/greet.py": GREET_PY,
    "functions/helpers.py": "def greeting(name):\n    return \"hello \" + name\n",
    "vendor/textfmt/__init__.py": "from .core import shout\n",
    "vendor/textfmt/core.py": "def shout(text):\n    return text.upper()\n",
    "vendor/textfmt/util.py": "from .core import shout\n\n\ndef suffix():\n    return shout(\"?\")\n",
    "vendor/textfmt/bomb.py": "def go():\n    raise RuntimeError(\"vendored code failed\")\n",
    "vendor/textfmt-1.0.dist-info/METADATA": "Name: textfmt\n",
    "vendor/json.py": "raise ImportError(\"the vendored json.py was imported instead of the standard library\")\n",
}


def modules_project():
    return make_project(tmpdir() + "/greet", MODULE_FILES)


def deploy(project, node, message):
    return cli("deploy", "-m", message, "--project", project, data=node.data)


def greet(node, body):
    return node.request("POST", "/greet/k", body)


def test_functions_import_helpers_and_vendored_packages():
    """a function importing a helper in functions/ and a vendored package (submodule, relative import) answers"""
    node = Node([modules_project()]).start()
    try:
        status, body = greet(node, {"name": "ada"})
        check(status == 200 and body["text"] == "HELLO ADA?", f"{status} {body}")
    finally:
        node.stop()


def test_a_deploy_changing_only_a_helper_changes_the_answer():
    """a deploy that changes only a helper in functions/ re-imports it: the answer changes"""
    project = modules_project()
    node = Node([project]).start()
    try:
        check(greet(node, {"name": "ada"})[1]["text"] == "HELLO ADA?", "before the deploy")
        write_files(project, {"functions/helpers.py": "def greeting(name):\n    return \"hi \" + name\n"})
        p = deploy(project, node, "hi instead of hello")
        check(p.returncode == 0, f"deploy failed: {p.stderr}")
        status, body = greet(node, {"name": "ada"})
        check(status == 200 and body["text"] == "HI ADA?", f"after the deploy: {status} {body}")
    finally:
        node.stop()


def test_a_vendored_syntax_error_is_refused_at_deploy():
    """a syntax error in a vendored module or in a helper in functions/ is refused at deploy, naming the file and line"""
    project = modules_project()
    node = Node([project]).start()
    try:
        head = git_head(project)
        write_files(project, {"vendor/textfmt/core.py": "def shout(text):\n    return text.upper()\ndef (:\n"})
        p = deploy(project, node, "broken vendored module")
        check(p.returncode != 0, "the deploy was accepted")
        check("vendor/textfmt/core.py:3: SyntaxError" in p.stderr, f"the refusal names no file and line: {p.stderr}")
        check(git_head(project) == head, "something was committed")
        check(greet(node, {"name": "ada"})[1]["text"] == "HELLO ADA?", "the running revision stopped serving")
        write_files(project, {"vendor/textfmt/core.py": MODULE_FILES["vendor/textfmt/core.py"],
                              "functions/lib/unused.py": "x = 1\nx = (\n"})
        p = deploy(project, node, "broken helper nobody imports")
        check(p.returncode != 0 and "functions/lib/unused.py:2: SyntaxError" in p.stderr, f"helper: {p.stderr}")
        check(git_head(project) == head, "something was committed")
    finally:
        node.stop()


def test_an_exception_in_vendored_code_names_the_vendored_file():
    """an exception raised inside vendored code is an Exception whose traceback names the vendored file and line"""
    node = Node([modules_project()]).start()
    try:
        status, body = greet(node, {"name": "ada", "explode": True})
        check(status == 500 and "vendored code failed" in body["detail"], f"{status} {body}")
        error = node.errors()[0]
        check(error["type"] == "Exception", f"type: {error}")
        traceback = error["details"]["traceback"]
        check('File "vendor/textfmt/bomb.py", line 2, in go' in traceback, f"traceback: {traceback}")
        check('raise RuntimeError("vendored code failed")' in traceback, f"no source line: {traceback}")
    finally:
        node.stop()


def test_a_vendored_module_does_not_shadow_the_standard_library():
    """a vendored module named like a standard library module (vendor/json.py) does not shadow it"""
    node = Node([modules_project()]).start()
    try:
        status, body = greet(node, {"name": "ada"})
        check(status == 200 and body["json"] == "[1, 2]", f"{status} {body}")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_python_counter_is_exact, test_killed_worker_loses_and_doubles_nothing,
         test_python_exception_carries_the_traceback, test_functions_import_helpers_and_vendored_packages,
         test_a_deploy_changing_only_a_helper_changes_the_answer, test_a_vendored_syntax_error_is_refused_at_deploy,
         test_an_exception_in_vendored_code_names_the_vendored_file,
         test_a_vendored_module_does_not_shadow_the_standard_library])
