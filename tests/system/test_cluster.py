"""Cluster steps 0 and 1 (docs/cluster.md) with one real etcd and three real
`flowstate serve --cluster` processes on loopback: membership, the
controller's placement, each key answered by its owner only, a node killed
and restarted with its data, a duplicate name refused."""
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from harness import BIN, Etcd, Node, check, counter_project, free_port, run, tmpdir


def cluster_node(etcd, name, project, data=None, ttl="2s"):
    return Node([project], data=data, extra_args=[
        "--cluster", etcd.endpoint, "--node", name, "--peer-listen", f"127.0.0.1:{free_port()}",
        "--cluster-name", "t", "--lease-ttl", ttl, "--cluster-settle", "5s"])


def start_all(nodes):
    """Starts the nodes at once (the first placement waits for a stable node set)."""
    with ThreadPoolExecutor(len(nodes)) as pool:
        return list(pool.map(lambda n: n.start(), nodes))


def status(etcd):
    p = subprocess.run([BIN, "cluster", "status", "--cluster", etcd.endpoint, "--cluster-name", "t", "--json"],
                       capture_output=True, text=True)
    check(p.returncode == 0, f"cluster status: {p.stderr}")
    return json.loads(p.stdout)


def wait_for(what, pred, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def placed(etcd, nodes):
    s = status(etcd)
    return s if len(s["ranges"]) == nodes and s["problem"] is None else None


def increment(nodes_by_http, first, key):
    """POSTs to `first`; on 421 follows Flowstate-Owner; on 503 "cluster not placed" (a node whose watch
    has not seen the placement yet) retries as Retry-After says. (status, body, node that answered)."""
    node = first
    for _ in range(50):
        conn = node.connection()
        conn.request("POST", f"/count/{key}", body="{}", headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        body = r.read().decode()
        conn.close()
        if r.status == 421:
            node = nodes_by_http[r.getheader("Flowstate-Owner")]
        elif r.status == 503 and "cluster not placed" in body:
            time.sleep(0.2)
        else:
            return r.status, body, node
    return r.status, body, node


def test_three_nodes_split_the_keys_and_each_key_is_counted_exactly_by_its_owner():
    """3 nodes: one controller places 4,096 key groups on all three; 64 keys × 5 increments are all counted by their owners"""
    etcd = Etcd()
    project = counter_project(tmpdir() + "/counter")
    nodes = start_all([cluster_node(etcd, n, project) for n in ("a", "b", "c")])
    try:
        s = wait_for("a placement over 3 nodes", lambda: placed(etcd, 3))
        check(sorted(n["name"] for n in s["nodes"]) == ["a", "b", "c"] and s["controller"] in ("a", "b", "c"),
              f"three nodes and a controller: {s}")
        check(all(r["epoch"] == 1 for r in s["ranges"]), f"epoch 1 everywhere: {s['ranges']}")
        by_http = {n.listen: n for n in nodes}
        keys = [f"k{i}" for i in range(64)]

        def client(i):
            answered = {}
            for key in keys[i::8]:
                for _ in range(5):
                    st, body, node = increment(by_http, nodes[i % 3], key)
                    check(st == 200, f"{key}: {st} {body}")
                    answered.setdefault(key, set()).add(node.listen)
            return answered

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(client, range(8)))
        owners = {}
        for r in results:
            for key, where in r.items():
                check(len(where) == 1, f"{key} was answered by one node only: {where}")
                owners[key] = by_http[next(iter(where))]
        check(len({o.listen for o in owners.values()}) == 3, "the keys are spread over all three nodes")
        for key, owner in owners.items():
            check(owner.state("counter", "counter", key) == {"count": 5}, f"{key} counted exactly 5 times")
    finally:
        for n in nodes:
            n.stop()


def test_a_killed_node_leaves_its_keys_unavailable_and_serves_them_again_with_its_data_after_restart():
    """kill -9 of a node: its keys get 503 + Retry-After elsewhere, others are served; restarted with its data it serves them again"""
    etcd = Etcd()
    project = counter_project(tmpdir() + "/counter")
    a, b = start_all([cluster_node(etcd, "a", project), cluster_node(etcd, "b", project)])
    try:
        wait_for("a placement over 2 nodes", lambda: placed(etcd, 2))
        by_http = {a.listen: a, b.listen: b}
        b_keys = []
        for i in range(40):
            st, body, node = increment(by_http, a, f"x{i}")
            check(st == 200, f"x{i}: {st} {body}")
            if node is b:
                b_keys.append(f"x{i}")
        check(b_keys, "some keys are b's")
        b.kill9()
        wait_for("b's registration to lapse", lambda: len(status(etcd)["nodes"]) == 1)
        conn = a.connection()
        conn.request("POST", f"/count/{b_keys[0]}", body="{}", headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        body = r.read().decode()
        conn.close()
        check(r.status == 503 and r.getheader("Retry-After") == "2" and "not in the cluster now" in body,
              f"b's key waits for b: {r.status} {body}")
        a_key = next(f"x{i}" for i in range(40) if f"x{i}" not in b_keys)
        st, _, node = increment(by_http, a, a_key)
        check(st == 200 and node is a, "a's keys are still served")
        b.start()  # same name, same data directory: waits for its old lease, then registers again
        by_http = {a.listen: a, b.listen: b}
        st, body, node = wait_for("b serving again", lambda: (lambda r: r if r[0] == 200 else None)(
            increment(by_http, a, b_keys[0])))
        check(node is b and json.loads(body) == {"count": 2}, f"b answers from its data: {body}")
    finally:
        a.stop()
        b.stop()


def test_projects_get_the_same_ids_on_every_node_whatever_order_they_are_served_in():
    """two nodes serving two projects in opposite orders agree on each project's id (kept in etcd)"""
    etcd = Etcd()
    p1 = counter_project(tmpdir() + "/alpha")
    p2 = counter_project(tmpdir() + "/beta", extra={"drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /beta/{key}\n"})
    a, b = start_all([Node([p1, p2], extra_args=["--cluster", etcd.endpoint, "--node", "a", "--cluster-name", "t"]),
                      Node([p2, p1], extra_args=["--cluster", etcd.endpoint, "--node", "b", "--cluster-name", "t"])])
    try:
        ids = [{p["name"]: p["id"] for p in n.admin_get("/api/v1/projects")[1]} for n in (a, b)]
        check(ids[0] == ids[1] and sorted(ids[0].values()) == [1, 2], f"the same ids on both nodes: {ids}")
    finally:
        a.stop()
        b.stop()


def test_a_second_node_with_a_live_nodes_name_is_refused():
    """a second `serve --node a` while a lives exits with an error naming the holder"""
    etcd = Etcd()
    project = counter_project(tmpdir() + "/counter")
    a = cluster_node(etcd, "a", project, ttl="1s").start()
    try:
        twin = cluster_node(etcd, "a", project, ttl="1s")
        p = subprocess.run([BIN, "serve", "--data", twin.data, "--listen", "127.0.0.1:0", "--admin-listen",
                            "127.0.0.1:0"] + twin.extra_args + [project], capture_output=True, text=True, timeout=60)
        check(p.returncode != 0 and 'a node named "a" is already in cluster "t"' in p.stderr,
              f"refused: {p.returncode} {p.stderr[-500:]}")
    finally:
        a.stop()


if __name__ == "__main__":
    run([test_three_nodes_split_the_keys_and_each_key_is_counted_exactly_by_its_owner,
         test_a_killed_node_leaves_its_keys_unavailable_and_serves_them_again_with_its_data_after_restart,
         test_projects_get_the_same_ids_on_every_node_whatever_order_they_are_served_in,
         test_a_second_node_with_a_live_nodes_name_is_refused])
