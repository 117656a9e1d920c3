"""The hostile-code suite: functions that try to escape the worker sandbox
(docs/security.md), each with its exact expected outcome, run through real
isolated workers (flowstate-worker for JS, flowstate-pyworker for Python) by
probe_runner. After each probe a known-good function must still answer on the
same client. Around the run the host checks that no connection reached its
listeners, no file was created, and the node's secrets never came back.

    run_hostile.py --runner probe_runner --js flowstate-worker --py flowstate-pyworker
                   [--level namespaces|landlock] [-k NAME]

The level is forced (FLOWSTATE_SANDBOX=LEVEL): where the machine cannot
provide it the workers do not start and the suite fails.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

from host_traps import LEVELS, SECRET, HostTraps, check, expected, level_in_force, summary
from probes_js import JS_PROBES
from probes_py import PY_PROBES



def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runner", required=True)
    parser.add_argument("--js", required=True)
    parser.add_argument("--py", required=True)
    parser.add_argument("-k", default="", help="only probes whose name contains this")
    parser.add_argument("--level", choices=LEVELS, default="namespaces", help="the sandbox level under test")
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
    traps = HostTraps(work, node_pid=os.getpid())
    host = traps.host()

    probes = [("js", p) for p in JS_PROBES] + [("py", p) for p in PY_PROBES]
    probes = [(lang, dict(p, expect=expected(p, args.level))) for lang, p in probes]
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
    env["FLOWSTATE_SANDBOX"] = args.level
    cmd = [args.runner, "--js", args.js, "--py", args.py, "--cpu-ms", "1000", "--wall-ms", "5000", "--memory-mb", "128"]
    if args.no_isolation:
        cmd.append("--no-isolation")
    proc = subprocess.run(cmd + dirs, env=env, capture_output=True, text=True, timeout=900)
    results = {}
    for line in proc.stdout.splitlines():
        r = json.loads(line)
        results[os.path.basename(r["dir"])] = r

    failures = []
    if not args.no_isolation and "sandbox UNAVAILABLE" in proc.stderr:
        # This machine cannot provide the forced level (a chroot or a
        # container refusing namespaces): the guarantee to check is that no
        # probe ran at all (fail closed). CI machines provide both levels.
        ran = [name for name, r in results.items() if r.get("status") == "ok"]
        if ran:
            failures.append(f"the {args.level} level is unavailable, yet these probes ran: {ran}")
        failures += traps.violations()
        print(f"the {args.level} level is unavailable on this machine; {len(probes)} probes, none may run: "
              f"{len(failures)} failures")
        for f in failures:
            print("FAIL " + f)
        return 1 if failures else 0
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
    failures += traps.violations()
    if not args.no_isolation and (problem := level_in_force(proc.stderr, args.level)):
        failures.append("sandbox: " + problem)

    js_count = sum(1 for lang, _ in probes if lang == "js")
    print(f"{len(probes)} probes ({js_count} JavaScript, {len(probes) - js_count} Python) at the {args.level} level, "
          f"{len(failures)} failures")
    if proc.stderr.strip():
        print("runner stderr:\n" + proc.stderr[-3000:])
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
