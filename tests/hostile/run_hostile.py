"""The hostile-code suite: functions that try to escape the worker sandbox
(ARCHITECTURE §4), each with its exact expected outcome, run through real
isolated workers (flowstate-worker for JS, flowstate-pyworker for Python) by
probe_runner. After each probe a known-good function must still answer on the
same client. Around the run the host checks that no connection reached its
listeners, no file was created, and the node's secrets never came back.

    run_hostile.py --runner probe_runner --js flowstate-worker --py flowstate-pyworker [-k NAME]
"""
import argparse
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile

from probes_js import JS_PROBES
from probes_py import PY_PROBES

SECRET = "flowstate-hostile-secret-7f3a9c"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runner", required=True)
    parser.add_argument("--js", required=True)
    parser.add_argument("--py", required=True)
    parser.add_argument("-k", default="", help="only probes whose name contains this")
    parser.add_argument("--no-isolation", action="store_true", help="(to see what the sandbox prevents)")
    args = parser.parse_args()
    os.environ["FLOWSTATE_HOSTILE_BINARY_ROOTS"] = ":".join(
        sorted({os.path.realpath(b).split("/")[1] for b in (args.js, args.py)}))

    work = tempfile.mkdtemp(prefix="flowstate-hostile-")
    try:
        return run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args, work):
    # What a function must never reach: listeners of every family, the node's
    # data directory with a key in it, a path it must not create.
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(16)
    tcp6 = None
    try:
        tcp6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        tcp6.bind(("::1", 0))
        tcp6.listen(16)
    except OSError:
        tcp6 = None
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    unix_path = os.path.join(work, "listener.sock")
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(unix_path)
    unix.listen(16)
    abstract_name = "\0flowstate-hostile-%d" % os.getpid()
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind(abstract_name)
    abstract.listen(16)
    data_dir = os.path.join(work, "data")
    os.makedirs(data_dir)
    with open(os.path.join(data_dir, "project.key"), "w") as f:
        f.write(SECRET)
    target = os.path.join(work, "created-by-a-function")
    host = {
        "port": tcp.getsockname()[1],
        "port6": tcp6.getsockname()[1] if tcp6 else 0,
        "udp_port": udp.getsockname()[1],
        "unix_path": unix_path,
        "abstract": "flowstate-hostile-%d" % os.getpid(),
        "data_dir": data_dir,
        "key_file": os.path.join(data_dir, "project.key"),
        "target": target,
        "node_pid": os.getpid(),
        "secret_env": "FLOWSTATE_HOSTILE_SECRET",
    }

    probes = [("js", p) for p in JS_PROBES] + [("py", p) for p in PY_PROBES]
    names = [p["name"] for _, p in probes]
    assert len(names) == len(set(names)), "probe names must be unique"
    probes = [(lang, p) for lang, p in probes if args.k in p["name"]]
    dirs = []
    for lang, probe in probes:
        d = os.path.join(work, "probes", probe["name"])
        os.makedirs(d)
        with open(os.path.join(d, "lang"), "w") as f:
            f.write(lang)
        with open(os.path.join(d, "source"), "w") as f:
            f.write(probe["source"])
        with open(os.path.join(d, "input"), "w") as f:
            f.write(json.dumps(host))
        dirs.append(d)

    env = dict(os.environ)
    env[host["secret_env"]] = SECRET
    cmd = [args.runner, "--js", args.js, "--py", args.py, "--cpu-ms", "1000", "--memory-mb", "256"]
    if args.no_isolation:
        cmd.append("--no-isolation")
    proc = subprocess.run(cmd + dirs, env=env, capture_output=True, text=True, timeout=900)
    results = {}
    for line in proc.stdout.splitlines():
        r = json.loads(line)
        results[os.path.basename(r["dir"])] = r

    failures = []
    for lang, probe in probes:
        name = probe["name"]
        r = results.get(name)
        if r is None:
            failures.append(f"{name}: no result (runner exit {proc.returncode}; stderr: {proc.stderr[-2000:]})")
            continue
        problem = check(probe, r)
        if not problem and not r["alive"]:
            problem = "the worker did not answer the next function afterwards"
        if not problem and SECRET in json.dumps(r):
            problem = "the node's secret came back in the result"
        status = "ok" if not problem else "FAIL"
        print(f"{status:4} {lang} {name}: {r['status']} {summary(r)}")
        if problem:
            failures.append(f"{name}: {problem}\n    got {json.dumps(r)[:1500]}")

    # Nothing may have reached the host.
    for label, sock in (("tcp", tcp), ("tcp6", tcp6), ("unix", unix), ("abstract unix", abstract)):
        if sock is None:
            continue
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            failures.append(f"host: a connection reached the {label} listener")
    readable, _, _ = select.select([udp], [], [], 0)
    if readable:
        failures.append("host: a datagram reached the UDP listener")
    if os.path.exists(target):
        failures.append(f"host: {target} was created")
    if sorted(os.listdir(data_dir)) != ["project.key"]:
        failures.append(f"host: the data directory changed: {os.listdir(data_dir)}")

    js_count = sum(1 for lang, _ in probes if lang == "js")
    print(f"{len(probes)} probes ({js_count} JavaScript, {len(probes) - js_count} Python), {len(failures)} failures")
    if proc.stderr.strip():
        print("runner stderr:\n" + proc.stderr[-3000:])
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


def summary(r):
    if r["status"] == "ok":
        return json.dumps(r["outputs"])[:120]
    return r["error"][:120]


def check(probe, r):
    """Empty when the result is exactly what the probe expects."""
    expect = probe["expect"]
    status = expect[0]
    if r["status"] != status:
        return f"expected status {status}, got {r['status']}: {r['error'][:300]}"
    if status == "ok":
        if len(expect) > 1:
            want = expect[1]
            got = r["outputs"][0] if r["outputs"] else None
            if callable(want):
                verdict = want(got, r)
                if verdict is not True:
                    return f"output check failed: {verdict}"
            elif got != want:
                return f"expected output {json.dumps(want)}, got {json.dumps(got)}"
    else:
        for fragment in expect[1:]:
            if fragment not in r["error"]:
                return f"expected the error to contain {fragment!r}"
    return ""


if __name__ == "__main__":
    sys.exit(main())
