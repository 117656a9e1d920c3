"""Metering in a cluster (docs/hosted.md "Metering and quotas"): two hosted
nodes of one cluster (real etcd, real `flowstate manager` on PostgreSQL)
serve one free team's project; each holds a lease of the team's executions
from the control plane, so the cap holds across both: the team runs its
2,000 executions and then gets 429 QuotaExceeded from either node, and the
control plane's count equals the executions the functions kept."""
import threading
import time

from harness import Etcd, Postgres, check, counter_project, run, tmpdir, wait_for
from test_cluster import cluster_node, owner_of, placed, post, start_all, state_via
from test_manager import Manager, invited_by_operator, sign_up
from test_metering import month_of, usage_of

NODE_SECRET = "node-secret-cluster-metering-0123"
CAP = 2000


def test_two_nodes_of_a_cluster_keep_one_teams_cap_between_them_and_count_every_execution_once():
    """a free team capped at 2,000 executions, four clients sending to both nodes of a cluster, then to one only (the idle node gives back its lease): the team is refused with 429 QuotaExceeded once the cap is used, from either node; the executions answered 200 are between 2,000 and 2,000 plus what was in flight; the control plane counts exactly the executions in the keys' states"""
    etcd = Etcd()
    pg = Postgres()
    m = Manager(pg, ["--operator-email", "op@example.com", "--node-secret", NODE_SECRET]).start()
    nodes = []
    try:
        operator = sign_up(m, "op@example.com", team="ops")
        bob = invited_by_operator(m, operator, "bob@example.com", "globex")
        check(operator.call("PUT", "/api/v1/operator/plans/free", {"executionsPerMonth": CAP})[0] == 200, "the cap")
        project = counter_project(tmpdir() + "/globex.store")
        hosted = {"FLOWSTATE_NODE_SECRET": NODE_SECRET}
        nodes = [cluster_node(etcd, n, project, env=hosted) for n in ("a", "b")]
        for n in nodes:
            n.extra_args += ["--control-plane", m.addr]
        start_all(nodes)
        wait_for("a placement over 2 nodes", lambda: placed(etcd, 2))
        keys = [f"k{i}" for i in range(32)]
        a_keys = [k for k in keys if owner_of(etcd, k) == "a"]
        check(a_keys and len(a_keys) < len(keys), f"node a owns some keys, not all: {a_keys}")
        lock = threading.Lock()
        answered, refused, other = [0], [], []

        def client(i):
            j = 0
            deadline = time.time() + 120
            while time.time() < deadline:
                # Every key on both nodes at first, then node a's keys only: node b, idle (it
                # runs none of them), must give back what it holds of the team's executions.
                first = answered[0] < CAP // 2
                key = keys[(i * 8 + j) % len(keys)] if first else a_keys[(i + j) % len(a_keys)]
                node = nodes[(i + j) % 2]
                st, headers, body = post(node, f"/globex/store/count/{key}",
                                         headers={"Idempotency-Key": f"c{i}-{j}"})
                if st == 200:
                    with lock:
                        answered[0] += 1
                    j += 1
                elif st == 429 and "used every execution" in body:
                    with lock:
                        refused.append((headers.get("Retry-After"), body))
                    return
                elif st == 429:  # the rest is leased to the other node for now: its next report gives it back
                    time.sleep(0.3)
                else:
                    with lock:
                        other.append(f"{st} {body[:200]}")
                    return
            with lock:
                other.append(f"client {i} still refused for want of a lease after 120 s")

        pool = [threading.Thread(target=client, args=(i,)) for i in range(4)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(timeout=300)
        check(not other, f"only 200 and 429: {other[:3]}")
        check(len(refused) == 4 and all(r and int(r) >= 1 for r, _ in refused),
              f"every client ends at the cap, with Retry-After: {refused[:2]}")
        print(f"  ({answered[0]} executions answered for a cap of {CAP}: {answered[0] - CAP} over, in flight)")
        check(CAP <= answered[0] <= CAP + 8, f"the cap held across both nodes: {answered[0]} answered")
        total = sum((state_via(nodes[0], k) or {}).get("count", 0) for k in keys)
        check(total == answered[0], f"every answered execution is in the state: {total} vs {answered[0]}")
        wait_for("the count reported", lambda: month_of(usage_of(bob, "globex"))["executions"] == total, timeout=20)
    finally:
        for n in nodes:
            n.stop()
        m.stop()


if __name__ == "__main__":
    run([test_two_nodes_of_a_cluster_keep_one_teams_cap_between_them_and_count_every_execution_once])
