"""Moving key groups between live nodes (docs/cluster.md "Moving key groups"),
with one real etcd and real `flowstate serve --cluster` processes on
loopback, under load from clients on every node's listener."""
import json
import re
import subprocess
import threading
import time

from harness import BIN, Etcd, check, counter_project, tmpdir
from test_cluster import cluster_node, placed, start_all, state_via, status, wait_for


class Load:
    """Clients incrementing keys through every node until stopped; every
    answer recorded: acknowledged increments per key, failures, the longest
    time one request took."""

    def __init__(self, nodes, keys, clients):
        self.nodes, self.keys = nodes, keys
        self.acked = {k: 0 for k in keys}
        self.failures = []
        self.longest = 0.0
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(clients)]
        for t in self.threads:
            t.start()

    def client(self, i):
        import random
        rnd = random.Random(i)
        while not self.stop_flag.is_set():
            key = rnd.choice(self.keys)
            node = self.nodes[rnd.randrange(len(self.nodes))]
            started = time.time()
            conn = node.connection(timeout=60)
            conn.request("POST", f"/count/{key}", body="{}", headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            body = r.read().decode()
            conn.close()
            took = time.time() - started
            with self.lock:
                self.longest = max(self.longest, took)
                if r.status == 200:
                    self.acked[key] += 1
                else:
                    self.failures.append(f"{key} via {node.listen}: {r.status} {body[:200]}")

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join()


def move(etcd, groups, to):
    p = subprocess.run([BIN, "cluster", "move", "--cluster", etcd.endpoint, "--cluster-name", "t", "--groups", groups,
                        "--to", to], capture_output=True, text=True, timeout=300)
    check(p.returncode == 0, f"cluster move --groups {groups} --to {to}: {p.stdout} {p.stderr}")
    pause = re.search(r"longest pause ([0-9.]+) ms", p.stdout)
    check(pause, f"it reports the longest pause: {p.stdout}")
    return p.stdout.strip(), float(pause.group(1))


def test_every_key_group_moved_a_to_b_then_b_to_c_under_load_keeps_every_count_exact_and_fails_no_request():
    """3 nodes, 32 clients incrementing 64 keys through all listeners; a's groups moved to b, then all of b's to c: no request fails, every count exact, the placement ends on c with raised epochs"""
    etcd = Etcd()
    project = counter_project(tmpdir() + "/counter")
    nodes = start_all([cluster_node(etcd, n, project) for n in ("a", "b", "c")])
    try:
        s = wait_for("a placement over 3 nodes", lambda: placed(etcd, 3))
        a_range = next(r for r in s["ranges"] if r["node"] == "a")
        b_range = next(r for r in s["ranges"] if r["node"] == "b")
        keys = [f"m{i}" for i in range(64)]
        for key in keys:  # every key has state before the moves
            conn = nodes[0].connection()
            for _ in range(100):
                conn.request("POST", f"/count/{key}", body="{}", headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status == 200:
                    break
                time.sleep(0.2)
            check(r.status == 200, f"{key} counted once before the load")
        load = Load(nodes, keys, 32)
        try:
            time.sleep(2)
            first, pause1 = move(etcd, f"{a_range['first']}-{a_range['end']}", "b")
            time.sleep(2)
            second, pause2 = move(etcd, f"0-{b_range['end']}", "c")
            time.sleep(2)
        finally:
            load.stop()
        check(not load.failures, f"no request failed ({len(load.failures)} did): {load.failures[:3]}")
        check(sum(load.acked.values()) > 200, f"the load ran: {sum(load.acked.values())} acknowledged")
        s = status(etcd)
        owners = {(r["first"], r["end"], r["node"], r["epoch"]) for r in s["ranges"]}
        check(all(r["node"] == "c" for r in s["ranges"] if r["end"] <= b_range["end"]),
              f"every group of a and b is on c now: {owners}")
        check(all(r["epoch"] >= 2 for r in s["ranges"] if r["end"] <= b_range["end"]),
              f"moved ranges have a raised epoch: {owners}")
        check(s["problem"] is None, f"the ranges still cover every group once: {s['problem']}")
        for key in keys:
            seen = [state_via(n, key) for n in nodes]
            want = {"count": 1 + load.acked[key]}
            check(seen == [want] * 3, f"{key}: 1 + {load.acked[key]} acknowledged, every node reports {seen}")
        print(f"    {first}; {second}; longest request during the moves {load.longest * 1000:.0f} ms")
    finally:
        for n in nodes:
            n.stop()


def test_a_move_to_a_node_that_is_not_in_the_cluster_fails_and_changes_nothing():
    """`cluster move --to` a node that is not registered fails naming it, and the placement is unchanged"""
    etcd = Etcd()
    project = counter_project(tmpdir() + "/counter")
    nodes = start_all([cluster_node(etcd, n, project) for n in ("a", "b")])
    try:
        before = wait_for("a placement over 2 nodes", lambda: placed(etcd, 2))
        p = subprocess.run([BIN, "cluster", "move", "--cluster", etcd.endpoint, "--cluster-name", "t", "--groups",
                            "0-10", "--to", "zz"], capture_output=True, text=True, timeout=60)
        check(p.returncode != 0 and '"zz"' in p.stderr, f"refused, naming the node: {p.returncode} {p.stderr}")
        p = subprocess.run([BIN, "cluster", "move", "--cluster", etcd.endpoint, "--cluster-name", "t", "--groups",
                            "10-5", "--to", "b"], capture_output=True, text=True, timeout=60)
        check(p.returncode != 0 and "--groups A-B" in p.stderr, f"bad groups refused: {p.returncode} {p.stderr}")
        check(status(etcd)["ranges"] == before["ranges"], "the placement did not change")
    finally:
        for n in nodes:
            n.stop()


if __name__ == "__main__":
    from harness import run
    run([test_every_key_group_moved_a_to_b_then_b_to_c_under_load_keeps_every_count_exact_and_fails_no_request,
         test_a_move_to_a_node_that_is_not_in_the_cluster_fails_and_changes_nothing])
