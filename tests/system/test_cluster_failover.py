"""Replicas and failover (docs/cluster.md "Replicas and failover"), with one
real etcd and real `flowstate serve --cluster` processes on loopback: a
range's leader killed -9 or paused past its lease under load, its keys
served again by an in-sync follower, and every acknowledged increment kept
exactly once."""
import subprocess
import threading
import time

from harness import BIN, Etcd, check, counter_project, tmpdir
from test_cluster import attempt, cluster_node, key_group, start_all, state_via, status, wait_for

TTL_S = 2


def configure(etcd, *settings):
    p = subprocess.run([BIN, "cluster", "config", "--cluster", etcd.endpoint, "--cluster-name", "t", *settings],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, f"cluster config {settings}: {p.stdout} {p.stderr}")
    return p.stdout


def replicated(etcd, nodes, copies):
    """The status once every range has `copies` members in sync (leader included)."""
    s = status(etcd)
    if len(s["ranges"]) != nodes or s["problem"] is not None:
        return None
    for r in s["ranges"]:
        if len(r.get("inSync", [])) != copies:
            return None
    return s


def three_replicated_nodes():
    """etcd and nodes a, b, c with replication=3 min_in_sync=2, once every range has 3 copies in sync."""
    etcd = Etcd()
    configure(etcd, "replication=3", "min_in_sync=2")
    project = counter_project(tmpdir() + "/counter")
    nodes = start_all([cluster_node(etcd, n, project, ttl=f"{TTL_S}s") for n in ("a", "b", "c")])
    try:
        wait_for("every range with 3 copies in sync", lambda: replicated(etcd, 3, 3), timeout=60)
    except BaseException:
        for n in nodes:
            n.stop()
        raise
    return etcd, nodes, dict(zip(("a", "b", "c"), nodes))


class Load:
    """Clients incrementing keys through the given nodes until stopped. Every
    acknowledged count is recorded per key: two acknowledged answers with the
    same count would mean an acknowledged increment was lost and done again."""

    def __init__(self, nodes, keys, clients=8):
        self.nodes, self.keys = nodes, keys
        self.counts = {k: [] for k in keys}
        self.unknown = {k: 0 for k in keys}
        self.other = []
        self.served_at = {}  # key -> time of the last 200
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(clients)]
        for t in self.threads:
            t.start()

    def client(self, i):
        import json
        import random
        rnd = random.Random(i)
        while not self.stop_flag.is_set():
            key = rnd.choice(self.keys)
            node = rnd.choice(self.nodes)
            code, body = attempt(node, f"/count/{key}", "{}")
            with self.lock:
                if code == 200:
                    self.counts[key].append(json.loads(body)["count"])
                    self.served_at[key] = time.time()
                elif code == "lost" or "OutcomeUnknown" in (body or ""):
                    self.unknown[key] += 1
                elif code not in (503, 504, "refused"):
                    self.other.append(f"{code} {(body or '')[:200]}")
            if code != 200:
                time.sleep(0.05)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join()

    def check_exactly_once(self, read_via):
        check(not self.other, f"no answer other than 200, 503, 504 and OutcomeUnknown: {self.other[:3]}")
        check(sum(len(c) for c in self.counts.values()) > 100, "the load ran")
        for key, counts in self.counts.items():
            if not counts:
                continue
            check(len(set(counts)) == len(counts),
                  f"{key}: no two acknowledged increments got the same count (one was lost): "
                  f"{sorted(c for c in counts if counts.count(c) > 1)[:5]}")
            final = wait_for(f"{key}'s state", lambda: state_via(read_via, key))["count"]
            check(max(counts) <= final <= len(counts) + self.unknown[key],
                  f"{key}: {len(counts)} acknowledged (highest {max(counts)}), {self.unknown[key]} unknown, "
                  f"count {final}")


def test_kill_9_of_a_ranges_leader_under_load_fails_over_to_an_in_sync_follower_and_keeps_every_acknowledged_increment():
    """3 nodes, replication=3 min_in_sync=2; 8 clients increment 24 keys through the two other nodes; the leader of the first key's range is killed -9: its keys are served again (how soon after the kill is printed) by an in-sync follower (epoch + 1), no acknowledged increment is lost or doubled, and the restarted node rejoins as a follower"""
    etcd, nodes, by_name = three_replicated_nodes()
    try:
        s = status(etcd)
        keys = [f"f{i}" for i in range(24)]
        victim_range = next(r for r in s["ranges"] if r["first"] <= key_group(keys[0]) < r["end"])
        victim = by_name[victim_range["node"]]
        others = [n for name, n in by_name.items() if name != victim_range["node"]]
        in_victim = [k for k in keys if victim_range["first"] <= key_group(k) < victim_range["end"]]
        load = Load(others, keys)
        time.sleep(3)
        killed_at = time.time()
        victim.kill9()
        served_again = wait_for(
            "the victim's keys served again",
            lambda: min((load.served_at.get(k, 0) for k in in_victim), default=0) > killed_at and
            max(load.served_at.get(k, 0) for k in in_victim),
            timeout=30)
        took = min(load.served_at[k] for k in in_victim) - killed_at
        print(f"  the range failed over: its keys served again {took:.2f} s after the kill")
        s = status(etcd)
        moved = next(r for r in s["ranges"] if r["first"] == victim_range["first"])
        check(moved["node"] != victim_range["node"] and moved["epoch"] == victim_range["epoch"] + 1,
              f"an in-sync follower leads the range at epoch + 1: {moved}")
        # How soon is a figure for docs/cluster.md, not an assertion (the
        # machine is shared by three nodes, etcd and the clients).
        st, text = by_name[moved["node"]].admin_get("/metrics")
        check(st == 200 and "flowstate_failovers_total 1" in text and "flowstate_replica_lag_entries{" in text,
              f"the new leader's /metrics count the failover and its followers' lag: {text[-600:]}")
        time.sleep(2)
        victim.start()
        wait_for("the old leader back in the in-sync set as a follower", lambda: replicated(etcd, 3, 3), timeout=60)
        time.sleep(2)
        load.stop()
        load.check_exactly_once(others[0])
        s = status(etcd)
        again = next(r for r in s["ranges"] if r["first"] == victim_range["first"])
        check(again["node"] == moved["node"] and victim_range["node"] in [x["node"] for x in again["replicas"]],
              f"the restarted node follows the range it led: {again} ({served_again})")
    finally:
        for n in nodes:
            n.stop()


def test_a_leader_paused_past_its_lease_is_replaced_and_after_sigcont_gets_nothing_acknowledged_and_rejoins_as_a_follower():
    """3 nodes, replication=3 min_in_sync=2; clients on every node, the paused one included; the leader of a range gets SIGSTOP past its lease: an in-sync follower leads at epoch + 1; after SIGCONT, no increment is lost or doubled (what the old leader wrote afterwards was never acknowledged), and it rejoins as a follower"""
    import os
    import signal
    etcd, nodes, by_name = three_replicated_nodes()
    try:
        s = status(etcd)
        keys = [f"p{i}" for i in range(24)]
        victim_range = next(r for r in s["ranges"] if r["first"] <= key_group(keys[0]) < r["end"])
        victim = by_name[victim_range["node"]]
        load = Load(nodes, keys)
        time.sleep(3)
        os.kill(victim.proc.pid, signal.SIGSTOP)
        try:
            moved = wait_for("an in-sync follower leading the paused node's range",
                             lambda: next((r for r in status(etcd)["ranges"]
                                           if r["first"] == victim_range["first"]
                                           and r["node"] != victim_range["node"]), None), timeout=30)
            check(moved["epoch"] == victim_range["epoch"] + 1, f"at epoch + 1: {moved}")
            time.sleep(2)  # served by the new leader meanwhile
        finally:
            os.kill(victim.proc.pid, signal.SIGCONT)
        time.sleep(4)  # the old leader takes requests again and learns it was replaced
        wait_for("the old leader back in the in-sync set as a follower", lambda: replicated(etcd, 3, 3), timeout=60)
        load.stop()
        load.check_exactly_once(nodes[0])
        again = next(r for r in status(etcd)["ranges"] if r["first"] == victim_range["first"])
        check(again["node"] == moved["node"] and victim_range["node"] in [x["node"] for x in again["replicas"]],
              f"the paused node follows the range it led: {again}")
    finally:
        for n in nodes:
            n.stop()


if __name__ == "__main__":
    from harness import run
    run([test_kill_9_of_a_ranges_leader_under_load_fails_over_to_an_in_sync_follower_and_keeps_every_acknowledged_increment,
         test_a_leader_paused_past_its_lease_is_replaced_and_after_sigcont_gets_nothing_acknowledged_and_rejoins_as_a_follower])
