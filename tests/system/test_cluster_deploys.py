"""Deploys in a cluster (docs/cluster.md "Deploys"): one etcd and real
`flowstate serve --cluster` processes on loopback, each node serving its
own clone of the project repository (no shared file system: git objects
travel between nodes)."""
import json
import os
import subprocess
import threading
import time

from harness import BIN, Etcd, check, cli, counter_project, git_head, tmpdir
from test_cluster import cluster_node, configure, owner_of, placed, post, start_all, status, wait_for

VERSION_JS = """export default function (input, state = { count: 0 }) {
  const count = state.count + 1;
  return { output: { status: 200, body: { count, v: %d } }, state: { count } };
}
"""


def clone(origin, name):
    path = tmpdir() + "/" + name
    subprocess.run(["git", "clone", "-q", origin, path], check=True)
    return path


def revision_of(node):
    st, projects = node.admin_get("/api/v1/projects")
    check(st == 200, f"projects: {st} {projects}")
    return projects[0]["revision"]


def deploy_version(project_dir, node, version):
    with open(project_dir + "/functions/counter.js", "w") as f:
        f.write(VERSION_JS % version)
    return cli("deploy", "-m", f"version {version}", "--project", project_dir, data=node.data)


def test_a_request_sent_under_a_deploy_its_owner_does_not_run_yet_waits_for_it_and_runs_on_the_new_revision():
    """a request reaching its key's owner stamped with a deploy the owner has not activated (as a node already running the deploy forwards it) is held until the owner runs that deploy, then runs on its revision"""
    etcd = Etcd()
    origin = counter_project(tmpdir() + "/counter", function=VERSION_JS % 1)
    dirs = {n: clone(origin, f"clone-{n}") for n in ("a", "b")}
    a, b = start_all([cluster_node(etcd, n, dirs[n]) for n in ("a", "b")])
    try:
        wait_for("a placement over 2 nodes", lambda: placed(etcd, 2))
        key = next(k for k in (f"r{i}" for i in range(200)) if owner_of(etcd, k) == "b")
        st, _, body = post(b, f"/count/{key}")
        check(st == 200 and json.loads(body)["v"] == 1, f"b runs version 1: {st} {body}")
        answer = {}

        def stamped():  # as node a forwards it; no deploy is recorded yet: the first one is number 1
            answer["got"] = post(b, f"/count/{key}", headers={"flowstate-deploy": "1", "flowstate-forwarded-by": "a"})

        waiting = threading.Thread(target=stamped)
        waiting.start()
        time.sleep(1.5)
        check("got" not in answer, f"held while b runs no deploy 1: {answer}")
        p = deploy_version(dirs["a"], a, 2)
        check(p.returncode == 0, f"the deploy through a succeeds: {p.stdout} {p.stderr}")
        waiting.join(30)
        st, _, body = answer.get("got", (None, None, ""))
        check(st == 200 and json.loads(body) == {"count": 2, "v": 2},
              f"then run once, by version 2: {st} {body}")
    finally:
        a.stop()
        b.stop()


def test_a_deploy_through_one_node_switches_every_node_under_load_and_a_node_that_was_down_catches_up():
    """3 nodes, each on its own clone; a deploy through b under load from all listeners: every node runs the new revision when the deploy answers (a and c fetched it from b), no request fails; c killed, a deploy through a, c restarted: it runs the newest revision before it serves"""
    etcd = Etcd()
    # One copy: c's keys wait for c, so its first answer shows what it runs.
    configure(etcd, "replication=1")
    origin = counter_project(tmpdir() + "/counter", function=VERSION_JS % 1)
    dirs = {n: clone(origin, f"clone-{n}") for n in ("a", "b", "c")}
    nodes = start_all([cluster_node(etcd, n, dirs[n]) for n in ("a", "b", "c")])
    a, b, c = nodes
    try:
        wait_for("a placement over 3 nodes", lambda: placed(etcd, 3, copies=1))
        keys = [f"d{i}" for i in range(24)]
        acked = {k: 0 for k in keys}
        failures, versions_after = [], []
        deployed = threading.Event()
        stop = threading.Event()
        lock = threading.Lock()

        def client(i):
            import random
            rnd = random.Random(i)
            while not stop.is_set():
                key = rnd.choice(keys)
                after = deployed.is_set()
                st, _, body = post(rnd.choice(nodes), f"/count/{key}")
                with lock:
                    if st != 200:
                        failures.append(f"{st} {body[:200]}")
                        continue
                    acked[key] += 1
                    if after:
                        versions_after.append(json.loads(body)["v"])

        threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        try:
            time.sleep(2)
            before = revision_of(b)
            p = deploy_version(dirs["b"], b, 2)
            deployed.set()
            check(p.returncode == 0, f"the deploy through b succeeds: {p.stdout} {p.stderr}")
            time.sleep(2)
        finally:
            stop.set()
            for t in threads:
                t.join()
        check(not failures, f"no request failed during the deploy: {failures[:3]}")
        revisions = [revision_of(n) for n in nodes]
        check(len(set(revisions)) == 1 and revisions[0] != before,
              f"every node runs the new revision: {revisions} (was {before})")
        check(versions_after and set(versions_after) == {2},
              f"every answer after the deploy returned comes from it: {sorted(set(versions_after))}")
        for key in keys:
            st, _, body = post(a, f"/count/{key}")
            check(st == 200 and json.loads(body)["count"] == acked[key] + 1,
                  f"{key}: counted {acked[key]} + 1 through the deploy: {body}")

        # A node that is down misses a deploy and catches up when it starts.
        c_key = next(k for k in (f"e{i}" for i in range(200)) if owner_of(etcd, k) == "c")
        c.kill9()
        wait_for("c's registration to lapse", lambda: len(status(etcd)["nodes"]) == 2)
        # a's clone is behind the deploy made through b: its deploy is refused
        # until it catches up (node a fetched b's revision into that clone).
        p = deploy_version(dirs["a"], a, 3)
        check(p.returncode != 0 and "git merge" in p.stderr, f"a deploy from a clone behind is refused: {p.stderr}")
        subprocess.run(["git", "-C", dirs["a"], "checkout", "-q", "--", "."], check=True)
        subprocess.run(["git", "-C", dirs["a"], "merge", "-q", "--ff-only", revision_of(a)], check=True)
        p = deploy_version(dirs["a"], a, 3)  # the same edit, now on top of b's
        check(p.returncode == 0, f"a deploy while c is down succeeds (c is not waited for): {p.stdout} {p.stderr}")
        c.start()
        st, _, body = wait_for("c serving its keys again", lambda: (lambda r: r if r[0] == 200 else None)(
            post(a, f"/count/{c_key}")), timeout=60)
        check(json.loads(body)["v"] == 3, f"c's first answer comes from the newest revision: {body}")
        check(revision_of(c) == revision_of(a), "c runs the cluster's revision")
    finally:
        for n in nodes:
            n.stop()


def push_to(node, checkout, message):
    """`flowstate deploy --admin NODE` from a checkout no node serves (a remote deploy)."""
    env = {**os.environ, "FLOWSTATE_TOKEN": node.token}
    return subprocess.run([BIN, "deploy", "-m", message, "--project", checkout, "--admin", node.admin,
                           "--data", tmpdir()], capture_output=True, text=True, env=env, timeout=120)


def test_a_project_created_by_a_push_to_one_node_is_created_on_every_node():
    """2 nodes started without projects; `flowstate deploy --admin a` from a checkout neither sees creates the project on the cluster: b creates it too from a's repository (DATA/projects/NAME) before the deploy answers, both serve their keys; a second deploy through b reaches a; b killed -9 and restarted serves it again from its own repository; a second creation of the name from another history is refused"""
    etcd = Etcd()
    a, b = start_all([cluster_node(etcd, n, []) for n in ("a", "b")])
    try:
        wait_for("a placement over 2 nodes", lambda: placed(etcd, 2))
        checkout = counter_project(tmpdir() + "/shop", function=VERSION_JS % 1)
        p = push_to(a, checkout, "first")
        check(p.returncode == 0, f"the first deploy through a creates shop: {p.stdout} {p.stderr}")
        first = git_head(checkout)
        check(git_head(os.path.join(b.data, "projects", "shop")) == first,
              "b keeps its own repository of shop, at the deployed commit")
        check(revision_of(a) == revision_of(b) == first, "both nodes run it")
        keys = {owner_of(etcd, k): k for k in (f"k{i}" for i in range(50))}
        check(set(keys) == {"a", "b"}, f"keys owned by each node: {keys}")
        for node in (a, b):
            for owner, key in keys.items():
                st, _, body = post(node, f"/count/{key}")
                check(st == 200 and json.loads(body)["v"] == 1, f"{key} (on {owner}) through {node.data}: {st} {body}")

        with open(checkout + "/functions/counter.js", "w") as f:
            f.write(VERSION_JS % 2)
        p = push_to(b, checkout, "second")
        check(p.returncode == 0, f"a second deploy through b: {p.stdout} {p.stderr}")
        check(revision_of(a) == revision_of(b) == git_head(checkout), "both run the second revision")
        b.kill9()
        b.start()
        check(revision_of(b) == git_head(checkout), "b serves shop again after its restart, at the last revision")
        # Its keys answer once its copies are in sync again (503 until then, nothing accepted).
        st, _, body = wait_for("b's key answered through a", lambda: (lambda r: r if r[0] != 503 else None)(
            post(a, f"/count/{keys['b']}")), timeout=60)
        check(st == 200 and json.loads(body) == {"count": 3, "v": 2}, f"b's key, through a, after the restart: {body}")

        other = counter_project(tmpdir() + "/elsewhere/shop")  # same name, unrelated history
        p = push_to(b, other, "another shop")
        check(p.returncode != 0 and revision_of(a) == git_head(checkout),
              f"another history under the same name is refused, the cluster keeps what it runs: {p.stdout} {p.stderr}")
    finally:
        a.stop()
        b.stop()


if __name__ == "__main__":
    from harness import run
    run([test_a_project_created_by_a_push_to_one_node_is_created_on_every_node,
         test_a_deploy_through_one_node_switches_every_node_under_load_and_a_node_that_was_down_catches_up,
         test_a_request_sent_under_a_deploy_its_owner_does_not_run_yet_waits_for_it_and_runs_on_the_new_revision])
