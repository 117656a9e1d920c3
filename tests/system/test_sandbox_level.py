"""The workers' sandbox level, as an operator sees it: the start-up log,
/readyz and /metrics say which level runs; FLOWSTATE_SANDBOX=off runs
functions unisolated only when spelled so, and says it loudly; any other
spelling runs no function at all (docs/security.md). The levels themselves,
and a node where they are refused, are tested by tests/hostile/."""
import os
import time

from harness import Node, check, counter_project, run, tmpdir

PY_COUNTER = {
    "functions/pyadd.py": "def entrypoint(input, state):\n"
                            "    n = (state or {'n': 0})['n'] + 1\n"
                            "    return {'output': {'status': 200, 'body': {'n': n}}, 'state': {'n': n}}\n",
    "flows/pycount.yaml": "blocks:\n  - http.Request: pycount\n  - py.Function: pyadd\n  - http.Response: reply\n",
    "drivers/pycount.yaml": "kind: http.Request\nmethod: POST\npath: /pycount/{key}\n",
}


def project():
    return counter_project(os.path.join(tmpdir(), "levels"), extra=PY_COUNTER)


def gauge(node, level):
    status, text = node.admin_get("/metrics")
    check(status == 200, f"/metrics: {status} {text}")
    for line in str(text).splitlines():
        if line.startswith(f'flowstate_sandbox_level{{level="{level}"}} '):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"/metrics has no flowstate_sandbox_level for {level}: {str(text)[:800]}")


def test_default_level_is_shown():
    """unset, the node takes the best level the machine allows, logs it, and shows it in /readyz and /metrics"""
    node = Node([project()]).start()
    try:
        status, body = node.admin_get("/readyz")
        check(status == 200 and body["sandbox"] in ("namespaces", "landlock"),
              f"/readyz names an isolating level: {status} {body}")
        level = body["sandbox"]
        check(body["sandboxDetail"].startswith(level + ":"), f"/readyz says what the level is: {body}")
        check(f"flowstate: sandbox {level}:" in node.log(), f"the start-up log names the level: {node.log()[-1500:]}")
        check(gauge(node, level) == 1 and gauge(node, "none") == 0 and gauge(node, "off") == 0,
              "/metrics shows the level in force")
        for path in ("/count/a", "/pycount/a"):
            status, body = node.request("POST", path, {})
            check(status == 200, f"{path} runs isolated: {status} {body}")
    finally:
        node.stop()


def test_off_is_loud():
    """FLOWSTATE_SANDBOX=off runs functions unisolated and says so in the log, /readyz and /metrics"""
    node = Node([project()], env={"FLOWSTATE_SANDBOX": "off"}).start()
    try:
        check("flowstate: WARNING: sandbox OFF" in node.log(), f"a WARNING at start-up: {node.log()[-1500:]}")
        status, body = node.admin_get("/readyz")
        check(status == 200 and body["sandbox"] == "off" and "UNISOLATED" in body["sandboxDetail"],
              f"/readyz says off: {status} {body}")
        check(gauge(node, "off") == 1, "/metrics shows off")
        status, body = node.request("POST", "/pycount/a", {})
        check(status == 200 and body == {"n": 1}, f"functions run: {status} {body}")
    finally:
        node.stop()


def test_misspelled_off_runs_nothing():
    """any other spelling of FLOWSTATE_SANDBOX (OFF, disabled) runs no function: /readyz 503 says why"""
    for spelling in ("OFF", "disabled"):
        node = Node([project()], env={"FLOWSTATE_SANDBOX": spelling}).start(ready=False)
        try:
            status, body = node.admin_get("/readyz")
            check(status == 503 and body["status"] == "sandbox unavailable" and body["sandbox"] == "none",
                  f"{spelling}: /readyz 503: {status} {body}")
            check(f'FLOWSTATE_SANDBOX="{spelling}": expected namespaces, landlock or off' in body["sandboxDetail"],
                  f"{spelling}: /readyz names the value and the spellings: {body}")
            check("flowstate: ERROR: sandbox UNAVAILABLE" in node.log(), f"{spelling}: logged: {node.log()[-1500:]}")
            check(gauge(node, "none") == 1, f"{spelling}: /metrics shows none")
            for path in ("/count/a", "/pycount/a"):
                status, body = node.request("POST", path, {})
                check(status == 503 and body["title"] == "sandbox unavailable",
                      f"{spelling}: {path} refused: {status} {body}")
            check(node.worker_pids() == [], f"{spelling}: no worker process started: {node.worker_pids()}")
        finally:
            node.stop()


def uid_of(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(f.read().split("Uid:")[1].split()[0])


def test_landlock_workers_have_own_uids_and_die_with_the_node():
    """at the landlock level each worker (JS and Python) runs as a uid of its own, and dies when the node is killed"""
    node = Node([project()], env={"FLOWSTATE_SANDBOX": "landlock"}).start()
    try:
        for path in ("/count/a", "/pycount/a"):
            status, body = node.request("POST", path, {})
            check(status == 200, f"{path}: {status} {body}")
        pids = node.worker_pids()
        check(len(pids) >= 2, f"a JS and a Python worker: {pids}")
        uids = {pid: uid_of(pid) for pid in pids}
        check(all(uid == (1 << 30) + pid for pid, uid in uids.items()), f"uid = 2^30 + pid: {uids}")
    finally:
        node.kill9()
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.exists(f"/proc/{p}") for p in pids):
        time.sleep(0.05)
    left = [p for p in pids if os.path.exists(f"/proc/{p}")]
    check(not left, f"workers outlived the node: {left}")


if __name__ == "__main__":
    run([test_default_level_is_shown, test_off_is_loud, test_misspelled_off_runs_nothing,
         test_landlock_workers_have_own_uids_and_die_with_the_node])
