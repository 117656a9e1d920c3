"""The hostile-code suite through a real node: every probe of probes_js.py and
probes_py.py is a function of one project, served by `flowstate serve` with
isolation on and a plan of 1 s per call, and called over HTTP, while other
clients keep calling a counter in another project and counters on other keys
of the hostile project itself. Each probe must end as it does in
run_hostile.py (the error type and message, or the value); every counter
call must succeed and every count be exact; nothing may reach the host.
Probes refused at load (`LoadFailed`) are deployed one by one instead: each
deploy must be refused naming the probe's file, and the node keeps serving.

    run_hostile_node.py [--level namespaces|landlock]  (FLOWSTATE_BIN: the flowstate binary)
    run_hostile_node.py --deny namespaces|all --launcher deny_namespaces

--level forces the sandbox level (FLOWSTATE_SANDBOX=LEVEL): the node's log
must say it runs at that level. --deny runs the node under a launcher whose
seccomp filter refuses user namespaces (as a chroot or a container does),
with FLOWSTATE_SANDBOX=auto: with `namespaces` the node must fall back to
the landlock level by itself and hold every probe there; with `all` (Landlock
refused too) it must refuse to run functions: /readyz 503 naming both
reasons, the level `none` in /metrics, every probe's call 503, no worker
process started, nothing reached on the host.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))

from harness import BIN, GIT, Node, cli, make_project  # noqa: E402
from host_traps import (LEVELS, SECRET, SECRET_ENV, HostTraps, check, expected, level_in_force,  # noqa: E402
                        summary)
from probes_js import JS_PROBES  # noqa: E402
from probes_py import PY_PROBES  # noqa: E402

UNWRAP = "export default function (input) { return {output: input.body}; }\n"
WRAP = ("export default function (input) {\n"
        "  return {output: {status: 200, body: {value: input === undefined ? null : input}}};\n"
        "}\n")
COUNTER_JS = ("export default function (input, state = {n: 0}) {\n"
              "  return {output: {status: 200, body: {n: state.n + 1}}, state: {n: state.n + 1}};\n"
              "}\n")
COUNTER_PY = ("def entrypoint(input, state):\n"
              "    n = (state or {'n': 0})['n'] + 1\n"
              "    return {'output': {'status': 200, 'body': {'n': n}}, 'state': {'n': n}}\n")
ROUTE = "kind: http.Request\nmethod: POST\npath: /{path}/{{key}}\n"


def counter_files(name, language):
    ext = "js" if language == "js" else "py"
    return {
        f"functions/{name}.{ext}": COUNTER_JS if language == "js" else COUNTER_PY,
        f"drivers/in_{name}.yaml": ROUTE.format(path=name),
        f"flows/{name}.yaml": f"blocks:\n  - http.Request: in_{name}\n  - {language}.Function: {name}\n"
                              "  - http.Response: reply\n",
    }


def probe_files(lang, probe):
    name = probe["name"]
    return {
        f"functions/{name}.{lang}": probe["source"],
        f"drivers/in_{name}.yaml": ROUTE.format(path="p/" + name),
        f"flows/{name}.yaml": (f"blocks:\n  - http.Request: in_{name}\n  - js.Function: unwrap\n"
                               f"  - {lang}.Function: {name}\n  - js.Function: wrap\n  - http.Response: reply\n"),
    }


class Load:
    """Clients calling counters throughout; every call must succeed."""

    def __init__(self, node, targets):
        self.node, self.targets = node, targets  # [(path prefix, key)]
        self.sent = {t: 0 for t in targets}
        self.failures = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(targets[i::2],)) for i in range(2)]

    def run(self, targets):
        conn = self.node.connection(timeout=60)
        i = 0
        while not self.stop.is_set():
            target = targets[i % len(targets)]
            i += 1
            try:
                status, body = self.node.request("POST", f"{target[0]}/{target[1]}", {}, conn=conn)
            except Exception as e:  # noqa: BLE001 - any failure counts
                self.failures.append(f"{target}: {type(e).__name__}: {e}")
                conn = self.node.connection(timeout=60)
                continue
            if status != 200:
                self.failures.append(f"{target}: {status} {body}")
            else:
                self.sent[target] += 1
            time.sleep(0.01)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join()


def http_result(status, body):
    """The node's answer in the shape run_hostile.py's checks read."""
    if status == 200 and isinstance(body, dict) and "value" in body:
        return {"status": "ok", "outputs": [body["value"]], "error": "", "logs": None}
    if status == 204:
        return {"status": "ok", "outputs": [], "error": "", "logs": None}
    if isinstance(body, dict) and "title" in body:
        error = body.get("detail", "") + " " + json.dumps(body.get("details", {}))
        return {"status": body["title"], "outputs": [], "error": error, "logs": None}
    return {"status": f"HTTP {status}", "outputs": [], "error": str(body)[:500], "logs": None}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--level", choices=LEVELS, default="namespaces", help="the sandbox level under test")
    parser.add_argument("--deny", choices=("namespaces", "all"), help="run the node where these are refused")
    parser.add_argument("--launcher", help="tests/hostile/deny_namespaces (for --deny)")
    args = parser.parse_args()
    if args.deny and not args.launcher:
        parser.error("--deny needs --launcher")
    # The workers' binaries are bound into their root under their own path
    # (e.g. /tmp/... in a CI checkout): that top folder is expected there.
    os.environ["FLOWSTATE_HOSTILE_BINARY_ROOTS"] = os.path.realpath(BIN).split("/")[1]
    work = tempfile.mkdtemp(prefix="flowstate-hostile-node-")
    try:
        if args.deny == "all":
            return run_refused(work, [args.launcher, "--landlock-too", "--"])
        if args.deny == "namespaces":
            return run(work, "landlock", {"FLOWSTATE_SANDBOX": "auto"}, [args.launcher, "--"])
        if not level_available(work, args.level):
            # Where this machine cannot provide the forced level (a chroot or
            # a container refusing namespaces), the guarantee to check is that
            # the node fails closed: it runs no probe at all. CI machines
            # provide both levels, so there every probe runs.
            print(f"the {args.level} level is unavailable on this machine: checking that the node fails closed")
            return run_refused(work, [], sandbox=args.level, reasons=(f"{args.level}: ", "FLOWSTATE_SANDBOX=off"))
        return run(work, args.level, {"FLOWSTATE_SANDBOX": args.level}, [])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def all_probes(level):
    probes = [("js", p) for p in JS_PROBES] + [("py", p) for p in PY_PROBES]
    return [(lang, dict(p, expect=expected(p, level, through_node=True))) for lang, p in probes]


def hostile_project(work, served):
    hostile = {"flowstate.yaml": "name: hostile\nhttp:\n  prefix: /hostile\n",
               "drivers/reply.yaml": "kind: http.Response\n",
               "functions/unwrap.js": UNWRAP, "functions/wrap.js": WRAP}
    hostile.update(counter_files("calm_js", "js"))
    hostile.update(counter_files("calm_py", "py"))
    for lang, probe in served:
        hostile.update(probe_files(lang, probe))
    return make_project(os.path.join(work, "hostile"), hostile)


def level_available(work, level):
    """Whether a node forced to `level` can set it up on this machine."""
    data = os.path.join(work, "probe-level")
    os.makedirs(data)
    node = Node([], data=data, env={"FLOWSTATE_SANDBOX": level}).start(ready=False)
    try:
        _, body = node.admin_get("/readyz")
        return not (isinstance(body, dict) and body.get("sandbox") == "none")
    finally:
        node.stop()


def run_refused(work, wrapper, sandbox="auto", reasons=("namespaces: ", "landlock: ", "FLOWSTATE_SANDBOX=off")):
    """No level can be set up: the node must not run a single function."""
    probes = all_probes("landlock")
    served = [(lang, p) for lang, p in probes if p["expect"][0] != "LoadFailed"]
    hostile_dir = hostile_project(work, served)
    os.makedirs(os.path.join(work, "data"))
    node = Node([hostile_dir], data=os.path.join(work, "data"), env={SECRET_ENV: SECRET, "FLOWSTATE_SANDBOX": sandbox},
                wrapper=wrapper).start(ready=False)
    failures = []
    try:
        traps = HostTraps(work, node_pid=node.proc.pid, data_dir=node.data,
                          key_file=os.path.join(node.data, "admin.token"))
        host = traps.host()
        status, body = node.admin_get("/readyz")
        detail = body.get("sandboxDetail", "") if isinstance(body, dict) else ""
        if status != 503 or body.get("status") != "sandbox unavailable" or body.get("sandbox") != "none":
            failures.append(f"/readyz: expected 503 sandbox unavailable, level none; got {status} {body}")
        for reason in reasons:
            if reason not in detail:
                failures.append(f"/readyz: expected the reason to name {reason!r}, got {detail!r}")
        status, metrics = node.admin_get("/metrics")
        if 'flowstate_sandbox_level{level="none"} 1' not in str(metrics):
            failures.append(f"/metrics: expected flowstate_sandbox_level{{level=\"none\"}} 1, got {str(metrics)[:600]}")
        if "flowstate: ERROR: sandbox UNAVAILABLE" not in node.log():
            failures.append(f"the start-up log does not say the sandbox is unavailable: {node.log()[-1500:]}")
        for i, (lang, probe) in enumerate(served):
            try:
                status, body = node.request("POST", f"/hostile/p/{probe['name']}/k{i}", host)
            except Exception as e:  # noqa: BLE001 - e.g. a probe that killed an unisolated node
                status, body = "no answer", f"{type(e).__name__}: {e}"
            ok = status == 503 and isinstance(body, dict) and body.get("title") == "sandbox unavailable"
            if not ok:
                failures.append(f"{probe['name']}: expected 503 sandbox unavailable, got {status} {str(body)[:300]}")
        if node.worker_pids():
            failures.append(f"worker processes were started: {node.worker_pids()}")
        failures += traps.violations()
        if node.proc.poll() is not None:
            failures.append(f"the node exited with {node.proc.returncode}")
    finally:
        node.stop()
    print(f"{len(served)} probes refused by a node that cannot isolate them; {len(failures)} failures")
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


def run(work, level, env, wrapper):
    probes = all_probes(level)
    served = [(lang, p) for lang, p in probes if p["expect"][0] != "LoadFailed"]
    refused = [(lang, p) for lang, p in probes if p["expect"][0] == "LoadFailed"]

    victim = {"flowstate.yaml": "name: victim\nhttp:\n  prefix: /victim\n",
              "drivers/reply.yaml": "kind: http.Response\n"}
    victim.update(counter_files("count", "js"))
    hostile_dir = hostile_project(work, served)
    victim_dir = make_project(os.path.join(work, "victim"), victim)
    os.makedirs(os.path.join(work, "data"))
    plan = os.path.join(work, "plan.yaml")
    with open(plan, "w") as f:
        # CPU time decides; the wall-clock backstop is loose so that a loaded machine gives no false Timeout.
        f.write("timeout: 1s\nwall: 5s\nmemory: 128MiB\n")

    node = Node([hostile_dir, victim_dir], data=os.path.join(work, "data"), env=dict(env, **{SECRET_ENV: SECRET}),
                extra_args=["--plan", plan], wrapper=wrapper).start()
    failures = []
    try:
        if problem := level_in_force(node.log(), level):
            failures.append("sandbox: " + problem)
        traps = HostTraps(work, node_pid=node.proc.pid, data_dir=node.data,
                          key_file=os.path.join(node.data, "admin.token"))
        host = traps.host()
        token = node.token
        targets = [("/victim/count", f"k{i}") for i in range(3)] + \
                  [("/hostile/calm_js", "a"), ("/hostile/calm_py", "b"), ("/hostile/calm_py", "c")]
        with Load(node, targets) as load:
            for i, (lang, probe) in enumerate(served):
                name = probe["name"]
                try:
                    status, body = node.request("POST", f"/hostile/p/{name}/k{i}", host)
                    r = http_result(status, body)
                except Exception as e:  # noqa: BLE001
                    r = {"status": "no answer", "outputs": [], "error": f"{type(e).__name__}: {e}", "logs": None}
                try:
                    problem = check(probe, r)
                except (TypeError, KeyError, IndexError):
                    problem = ""  # a check of the call's logs: the node keeps them, HTTP does not show them
                text = json.dumps(r)
                if not problem and (SECRET in text or token in text):
                    problem = "a secret of the node came back"
                print(f"{'ok' if not problem else 'FAIL':4} {lang} {name}: {r['status']} {summary(r)}", flush=True)
                if problem:
                    failures.append(f"{name}: {problem}")
            # The refused ones: a deploy adding each is refused; the node keeps serving.
            for lang, probe in refused:
                name = probe["name"]
                files = probe_files(lang, probe)
                for rel, text in files.items():
                    os.makedirs(os.path.dirname(os.path.join(hostile_dir, rel)), exist_ok=True)
                    with open(os.path.join(hostile_dir, rel), "w") as f:
                        f.write(text)
                p = cli("deploy", "-m", "add " + name, "--project", hostile_dir, data=node.data)
                out = p.stdout + p.stderr
                ok = p.returncode != 0 and f"functions/{name}.{lang}" in out and \
                    all(fragment in out for fragment in probe["expect"][1:])
                print(f"{'ok' if ok else 'FAIL':4} {lang} {name}: deploy refused: {out.strip().splitlines()[0][:120] if out.strip() else ''}", flush=True)
                if not ok:
                    failures.append(f"{name}: expected the deploy to be refused naming the file and "
                                    f"{probe['expect'][1:]}, got exit {p.returncode}: {out[-800:]}")
                for rel in files:
                    os.remove(os.path.join(hostile_dir, rel))
                subprocess.run(GIT + ["-C", hostile_dir, "checkout", "-q", "--", "."], check=False)
            time.sleep(0.5)
        failures += [f"counter call failed: {f}" for f in load.failures[:10]]
        node.wait_idle()
        for (prefix, key), sent in load.sent.items():
            flow = prefix.rsplit("/", 1)[1]
            project = "victim" if prefix.startswith("/victim") else "hostile"
            state = node.state(flow, flow, key, project=project)
            if not state or state.get("n") != sent:
                failures.append(f"{prefix}/{key}: {sent} calls succeeded, the state says {state}")
        calls = sum(load.sent.values())
        failures += traps.violations()
        if node.proc.poll() is not None:
            failures.append(f"the node exited with {node.proc.returncode}")
    finally:
        node.stop()
    js = sum(1 for lang, _ in probes if lang == "js")
    print(f"{len(probes)} probes through a node at the {level} level ({js} JavaScript, {len(probes) - js} Python; "
          f"{len(refused)} refused at deploy); {calls} counter calls alongside; {len(failures)} failures")
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
