"""The cluster (docs/cluster.md) with one real etcd and real `flowstate serve
--cluster` processes on loopback: membership, the controller's placement,
any node answering any key (requests forwarded to the key's owner over CAF's
middleman), a node killed and restarted with its data, an owner dying with a
forwarded request in flight, project ids, a duplicate name refused."""
import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from harness import BIN, Etcd, Node, TestFailure, check, cli, counter_project, make_project, run, tmpdir, wait_for

SECRET = "test-cluster-secret-0123456789"


def function_project(name, js, manifest_extra=""):
    """A project whose POST /count/{key} runs `js` and replies with its output."""
    return make_project(tmpdir() + "/" + name, {
        "flowstate.yaml": f"name: {name}\n{manifest_extra}",
        "flows/counter.yaml": "blocks:\n  - http.Request: count\n  - js.Function: counter\n  - http.Response: reply\n",
        "drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /count/{key}\n",
        "drivers/reply.yaml": "kind: http.Response\n",
        "functions/counter.js": js,
    })


def cluster_node(etcd, name, projects, ttl="2s", peers=True, env=None):
    args = ["--cluster", etcd.endpoint, "--node", name, "--cluster-name", "t", "--lease-ttl", ttl,
            "--cluster-settle", "5s"]
    if peers:
        args += ["--peer-listen", "127.0.0.1:0"]
    return Node(projects if isinstance(projects, list) else [projects], extra_args=args,
                env={"FLOWSTATE_CLUSTER_SECRET": SECRET, **(env or {})})


def start_all(nodes):
    """Starts the nodes at once (the first placement waits for a stable node set)."""
    with ThreadPoolExecutor(len(nodes)) as pool:
        return list(pool.map(lambda n: n.start(), nodes))


def status(etcd):
    p = subprocess.run([BIN, "cluster", "status", "--cluster", etcd.endpoint, "--cluster-name", "t", "--json"],
                       capture_output=True, text=True)
    check(p.returncode == 0, f"cluster status: {p.stderr}")
    return json.loads(p.stdout)


def configure(etcd, *settings):
    """`flowstate cluster config SETTINGS` (before the nodes start, or while they run)."""
    p = subprocess.run([BIN, "cluster", "config", "--cluster", etcd.endpoint, "--cluster-name", "t", *settings],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, f"cluster config {settings}: {p.stdout} {p.stderr}")
    return p.stdout


def placed(etcd, nodes, copies=None):
    """The status once the groups are placed in `nodes` ranges, each with `copies` members in sync (the
    default replication: 3 from three nodes, 2 with two; pass 1 for a cluster configured with one copy)."""
    s = status(etcd)
    if len(s["ranges"]) != nodes or s["problem"] is not None:
        return None
    copies = min(3, nodes) if copies is None else copies
    if copies > 1 and any(len(r.get("inSync", [])) != copies for r in s["ranges"]):
        return None
    return s


def post(node, path, headers=None, retry_unplaced=True, body="{}"):
    """(status, headers, body). Retries while the node has not seen the placement or not connected to the owner
    yet (503s that say nothing was accepted)."""
    request_body = body
    for _ in range(100):
        conn = node.connection(timeout=60)
        conn.request("POST", path, body=request_body, headers={"Content-Type": "application/json", **(headers or {})})
        r = conn.getresponse()
        body = r.read().decode()
        conn.close()
        if retry_unplaced and r.status == 503 and ("cluster not placed" in body or "not connected" in body):
            time.sleep(0.2)
            continue
        return r.status, dict(r.getheaders()), body
    return r.status, dict(r.getheaders()), body


def attempt(node, path, body, headers_out=None):
    """POSTs body to node: (status, text); ("refused", None) when the node could not be reached (nothing was
    accepted); ("lost", None) when the connection broke once the request was sent (it may have run). The
    answer's headers go into `headers_out` (a dict), if given."""
    import http.client
    conn = node.connection(timeout=30)
    try:
        conn.connect()
    except OSError:
        return "refused", None
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        if headers_out is not None:
            headers_out.update({k.lower(): v for k, v in r.getheaders()})
        return r.status, r.read().decode()
    except (OSError, http.client.HTTPException):
        return "lost", None
    finally:
        conn.close()


def may_have_run(code, body):
    """An answer that does not say whether the request ran: the connection broke once it was sent, the owner or
    the range's replicas did not answer (OutcomeUnknown), the route's timeout passed (504: accepted, still
    processed), or the store failed after some of its steps were committed (they run again)."""
    body = body or ""
    return code == "lost" or "OutcomeUnknown" in body or code == 504 or "run again" in body


class Outcomes:
    """The answers to requests sent while nodes die, per key: acknowledged, unknown outcomes (the node died with
    the request, or its owner did: it may have run), and any other answer than 503 (nothing accepted)."""

    def __init__(self, keys):
        self.acked = {k: 0 for k in keys}
        self.unknown = {k: 0 for k in keys}
        self.other = []
        self.lock = threading.Lock()

    def record(self, key, code, body, ok):
        with self.lock:
            if code == ok:
                self.acked[key] += 1
            elif may_have_run(code, body):
                self.unknown[key] += 1
            elif code not in (503, "refused"):
                self.other.append(f"{code} {(body or '')[:200]}")


def key_group(key):
    """The key's group, as runtime/src/keys.cpp computes it (FNV-1a 64, high half folded in, mod 4,096)."""
    h = 14695981039346656037
    for c in key.encode():
        h = ((h ^ c) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return (h ^ (h >> 32)) % 4096


def owner_of(etcd, key):
    """The name of the node the placement gives the key to."""
    g = key_group(key)
    return next(r["node"] for r in status(etcd)["ranges"] if r["first"] <= g < r["end"])


def state_via(node, key):
    """The key's committed state, asked of `node` (which asks the owner), or None."""
    p = cli("state", "get", "counter", "counter", key, "--json", data=node.data)
    if p.returncode != 0 or not p.stdout.strip() or p.stdout.strip() == "null":
        return None
    return json.loads(p.stdout)


def test_any_node_answers_any_key_and_each_key_is_counted_exactly_once_by_its_owner():
    """3 nodes: every key group placed; 32 clients × 100 increments over 64 keys sent to all three listeners, forwarded to the owners in batches; every count exact, and every node's flows statistics add up all three nodes' executions"""
    etcd = Etcd()
    project = counter_project(tmpdir() + "/counter")
    nodes = start_all([cluster_node(etcd, n, project) for n in ("a", "b", "c")])
    try:
        s = wait_for("a placement over 3 nodes", lambda: placed(etcd, 3))
        check(sorted(n["name"] for n in s["nodes"]) == ["a", "b", "c"] and s["controller"] in ("a", "b", "c"),
              f"three nodes and a controller: {s}")
        check(all(r["epoch"] == 1 for r in s["ranges"]), f"epoch 1 everywhere: {s['ranges']}")
        keys = [f"k{i}" for i in range(64)]
        failures = []

        def client(i):
            for j in range(100):  # client i: keys 2i and 2i+1, 50 increments each
                key = keys[2 * i + j % 2]
                st, _, body = post(nodes[(i + j) % 3], f"/count/{key}")
                if st != 200:
                    failures.append(f"{key}: {st} {body}")

        with ThreadPoolExecutor(32) as pool:
            list(pool.map(client, range(32)))
        check(not failures, f"every request answered 200: {failures[:3]}")
        for key in keys:
            seen = [state_via(n, key) for n in nodes]
            check(seen == [{"count": 50}] * 3, f"{key} counted 50 times, as every node reports it: {seen}")
        requests = batches = 0
        for n in nodes:
            st, text = n.admin_get("/metrics")
            for line in text.splitlines():
                if line.startswith("flowstate_forwarded_requests_total"):
                    requests += float(line.split()[-1])
                if line.startswith("flowstate_forwarded_batches_total"):
                    batches += float(line.split()[-1])
        check(1000 < requests < 3200 and 0 < batches < requests,
              f"about two thirds of the requests forwarded, requests arriving together sent as one message: "
              f"{requests:.0f} requests in {batches:.0f} messages")
        check(len({owner_of(etcd, k) for k in keys}) == 3, "the keys are spread over all three nodes")
        for name, n in zip("abc", nodes):  # the UI's statistics: every node's executions, added up by the node asked
            st, flows = n.admin_get("/api/v1/projects/counter/flows")
            fn = [b for f in flows["flows"] for b in f["blocks"] if b["kind"] == "js.Function"]
            check(st == 200 and flows["statsNodes"] == 3 and flows["statsMissing"] == []
                  and [b["stats"]["executions"] for b in fn] == [{"ok": 3200}],
                  f"node {name}'s flows answer counts the function's 3200 executions on all 3 nodes: "
                  f"{st} {flows.get('statsNodes')} {[b.get('stats') for b in fn]}")
        st, view = nodes[0].admin_get("/api/v1/cluster")
        check(st == 200 and view["self"] == "a" and len(view["ranges"]) == 3 and view["controller"] in ("a", "b", "c")
              and sorted(n["name"] for n in view["nodes"]) == ["a", "b", "c"]
              and all(n["connected"] for n in view["nodes"]),
              f"GET /api/v1/cluster shows the nodes (connected), the controller and the ranges: {st} {view}")
    finally:
        for n in nodes:
            n.stop()


def test_a_killed_node_leaves_its_keys_unavailable_and_serves_them_again_with_its_data_after_restart():
    """kill -9 of a node: its keys get 503 + Retry-After on the others, which serve their own; restarted with its data it serves them again"""
    etcd = Etcd()
    configure(etcd, "replication=1")  # one copy: the owner's keys wait for it
    project = counter_project(tmpdir() + "/counter")
    a, b = start_all([cluster_node(etcd, "a", project), cluster_node(etcd, "b", project)])
    try:
        wait_for("a placement over 2 nodes", lambda: placed(etcd, 2, copies=1))
        for i in range(40):
            st, _, body = post(a, f"/count/x{i}")
            check(st == 200, f"x{i}: {st} {body}")
        b_keys = [f"x{i}" for i in range(40) if owner_of(etcd, f"x{i}") == "b"]
        a_keys = [f"x{i}" for i in range(40) if owner_of(etcd, f"x{i}") == "a"]
        check(b_keys and a_keys, f"the keys are split: {a_keys} {b_keys}")
        b.kill9()
        wait_for("b's registration to lapse", lambda: len(status(etcd)["nodes"]) == 1)
        st, headers, body = post(a, f"/count/{b_keys[0]}")
        check(st == 503 and headers.get("Retry-After") == "2" and "not in the cluster now" in body,
              f"b's key waits for b: {st} {body}")
        st, _, body = post(a, f"/count/{a_keys[0]}")
        check(st == 200 and json.loads(body) == {"count": 2}, f"a's keys are still served: {st} {body}")
        p = cli("state", "get", "counter", "counter", b_keys[0], "--json", data=a.data)
        check(p.returncode != 0 and "not in the cluster now" in p.stderr,
              f"b's state cannot be read while b is down, and says why: {p.returncode} {p.stderr}")
        b.start()  # same name, same data directory: waits for its old lease, then registers again
        st, _, body = wait_for("b serving again", lambda: (lambda r: r if r[0] == 200 else None)(
            post(a, f"/count/{b_keys[0]}")))
        check(json.loads(body) == {"count": 2}, f"b answers from its data: {body}")
    finally:
        a.stop()
        b.stop()


SLOW_JS = """export default function (input, state = { count: 0 }) {
  // Seconds of work: the test kills the node while this runs.
  if (input.body.slow) { let x = 0; for (let i = 0; i < 1e10; i++) { x += i; } }
  const count = state.count + 1;
  return { output: { status: 200, body: { count } }, state: { count } };
}
"""


def test_an_owner_that_dies_with_a_forwarded_request_gives_outcome_unknown_and_a_retry_runs_it_once():
    """the owner killed while running a forwarded request: the client gets OutcomeUnknown (not 'not accepted'); the retry with its Idempotency-Key, once the owner is back, runs it once"""
    etcd = Etcd()
    configure(etcd, "replication=1")  # one copy: the owner's keys wait for it
    project = function_project("slow", SLOW_JS, "timeout: 30s\n")
    a, b = start_all([cluster_node(etcd, "a", project), cluster_node(etcd, "b", project)])
    try:
        wait_for("a placement over 2 nodes", lambda: placed(etcd, 2, copies=1))
        for i in range(40):
            check(post(a, f"/count/y{i}")[0] == 200, f"y{i}")
        key = next(f"y{i}" for i in range(40) if owner_of(etcd, f"y{i}") == "b")
        answer = {}

        def slow_request():
            conn = a.connection(timeout=120)
            conn.request("POST", f"/count/{key}", body=json.dumps({"slow": True}),
                         headers={"Content-Type": "application/json", "Idempotency-Key": "slow-1"})
            r = conn.getresponse()
            answer["status"], answer["body"] = r.status, r.read().decode()

        t = threading.Thread(target=slow_request)
        t.start()
        time.sleep(1.0)  # the request is on b, in its function
        b.kill9()
        t.join(120)
        check(answer.get("status") == 503 and "OutcomeUnknown" in answer.get("body", ""),
              f"the client learns the outcome is unknown: {answer}")
        b.start()
        st, headers, body = wait_for("the retry answered", lambda: (lambda r: r if r[0] == 200 else None)(
            post(a, f"/count/{key}", headers={"Idempotency-Key": "slow-1"})))
        check(json.loads(body) == {"count": 2}, f"the retry ran the request once (1 before + 1): {body}")
        st, headers, body = post(a, f"/count/{key}", headers={"Idempotency-Key": "slow-1"})
        check(st == 200 and headers.get("Idempotent-Replayed") == "true" and json.loads(body) == {"count": 2},
              f"and a repeat gets the stored response from the owner: {st} {headers} {body}")
    finally:
        a.stop()
        b.stop()


def test_kill_9_of_each_node_in_turn_under_load_keeps_every_acknowledged_increment_exactly_once():
    """3 nodes under load from 12 clients on all listeners; each node killed -9 in turn and restarted: every key's count is its acknowledged increments, plus at most its unknown outcomes"""
    etcd = Etcd()
    project = counter_project(tmpdir() + "/counter")
    nodes = start_all([cluster_node(etcd, n, project) for n in ("a", "b", "c")])
    try:
        wait_for("a placement over 3 nodes", lambda: placed(etcd, 3))
        keys = [f"c{i}" for i in range(24)]
        out = Outcomes(keys)
        acked, unknown, other = out.acked, out.unknown, out.other
        stop_load = threading.Event()

        def client(i):
            import random
            rnd = random.Random(i)
            while not stop_load.is_set():
                key = rnd.choice(keys)
                out.record(key, *attempt(nodes[rnd.randrange(3)], f"/count/{key}", "{}"), ok=200)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for victim in nodes:
            time.sleep(2)
            victim.kill9()
            time.sleep(1)
            victim.start()
        time.sleep(2)
        stop_load.set()
        for t in threads:
            t.join()
        check(not other, f"no answer other than 200, 503 and OutcomeUnknown: {other[:3]}")
        check(sum(acked.values()) > 100, f"the load ran: {sum(acked.values())} acknowledged")
        for key in keys:
            if acked[key] == 0:
                continue  # (a key with only unknown outcomes may rightly have no state)
            # Read through node a, once it is connected to the key's owner again.
            count = wait_for(f"{key}'s state", lambda: state_via(nodes[0], key))["count"]
            check(acked[key] <= count <= acked[key] + unknown[key],
                  f"{key}: {acked[key]} acknowledged, {unknown[key]} unknown, count {count}")
    finally:
        for n in nodes:
            n.stop()


BOOM_JS = """export default function (input, state = { count: 0 }) {
  if (input.body.boom) throw new Error("boom " + input.params.key);
  const count = state.count + 1;
  return { output: { status: 200, body: { count } }, state: { count } };
}
"""


def test_any_node_lists_shows_discards_and_replays_the_errors_every_node_keeps():
    """errors kept by each key's owner are listed, shown, discarded and replayed through any node"""
    etcd = Etcd()
    project = function_project("boom", BOOM_JS)
    a, b = start_all([cluster_node(etcd, "a", project), cluster_node(etcd, "b", project)])
    try:
        wait_for("a placement over 2 nodes", lambda: placed(etcd, 2))
        keys, per_owner, ranges = [], {"a": 0, "b": 0}, status(etcd)["ranges"]
        for key in (f"e{i}" for i in range(1000)):
            owner = next(r["node"] for r in ranges if r["first"] <= key_group(key) < r["end"])
            if per_owner[owner] < 5:
                per_owner[owner] += 1
                keys.append(key)
            if len(keys) == 10:
                break
        for key in keys:
            conn = a.connection()
            for _ in range(100):
                conn.request("POST", f"/count/{key}", body='{"boom":true}', headers={"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status != 503:
                    break
                time.sleep(0.2)
            check(r.status == 500, f"{key} fails: {r.status}")
        owners = {owner_of(etcd, k) for k in keys}
        check(owners == {"a", "b"}, f"the failing keys are on both nodes: {owners}")
        for node in (a, b):
            listed = wait_for("every node's errors", lambda: (lambda e: e if len(e) == 10 else None)(node.errors()))
            check(sorted(e["key"] for e in listed) == sorted(keys), f"all ten errors, on {node.listen}: {listed}")
        # show, discard and replay through a of errors that b keeps
        on_b = [e for e in a.errors() if owner_of(etcd, e["key"]) == "b"]
        check(len(on_b) >= 2, f"two errors kept by b: {on_b}")
        shown = json.loads(cli("errors", "show", on_b[0]["id"], data=a.data, check_rc=0).stdout)
        check(shown["id"] == on_b[0]["id"] and shown["key"] == on_b[0]["key"], f"a shows b's error: {shown}")
        cli("errors", "discard", on_b[0]["id"], data=a.data, check_rc=0)
        cli("errors", "replay", on_b[1]["id"], data=a.data, check_rc=0)  # fails again: a new error at b
        gone = cli("errors", "show", on_b[0]["id"], data=a.data)
        check(gone.returncode != 0, f"a discarded error is gone: {gone.stdout} {gone.stderr}")

        def settled():
            e = b.errors()
            return e if len(e) == 9 and on_b[1]["id"] not in [x["id"] for x in e] else None
        listed = wait_for("the replayed error recorded again", settled)
        check(sorted(e["key"] for e in listed) == sorted(k for k in keys if k != on_b[0]["key"]),
              f"nine errors, the replayed key's under a new id: {listed}")
    finally:
        a.stop()
        b.stop()


def test_projects_get_the_same_ids_on_every_node_whatever_order_they_are_served_in():
    """two nodes serving two projects in opposite orders agree on each project's id (kept in etcd); without --peer-listen a node sends clients to the owner (421)"""
    etcd = Etcd()
    p1 = counter_project(tmpdir() + "/alpha")
    p2 = counter_project(tmpdir() + "/beta",
                         extra={"drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /beta/{key}\n"})
    a, b = start_all([cluster_node(etcd, "a", [p1, p2], peers=False), cluster_node(etcd, "b", [p2, p1], peers=False)])
    try:
        ids = [{p["name"]: p["id"] for p in n.admin_get("/api/v1/projects")[1]} for n in (a, b)]
        check(ids[0] == ids[1] and sorted(ids[0].values()) == [1, 2], f"the same ids on both nodes: {ids}")
        # No peer links: one copy (followers are fed over them).
        wait_for("a placement over 2 nodes", lambda: placed(etcd, 2, copies=1))
        codes = set()
        for i in range(20):
            st, headers, _ = post(a, f"/count/z{i}")
            codes.add(st)
            if st == 421:
                check(headers.get("Flowstate-Owner") == b.listen, f"421 names b's listener: {headers}")
        check(codes == {200, 421}, f"a answers its keys and points to b for the others: {codes}")
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
                            "127.0.0.1:0"] + twin.extra_args + [project], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "FLOWSTATE_CLUSTER_SECRET": SECRET})
        check(p.returncode != 0 and 'a node named "a" is already in cluster "t"' in p.stderr,
              f"refused: {p.returncode} {p.stderr[-500:]}")
    finally:
        a.stop()


REKEY_FLOW = "blocks:\n  - http.Request: in\n  - js.Function: first\n  - js.Function: second\n    key: /group\n"
# Each block counts what it sees and remembers every message's uid, so a
# message run twice at either block shows as a repeat.
REKEY_FIRST = """export default function (input, state = { count: 0, repeats: 0, seen: {} }) {
  const uid = input.body.uid;
  if (state.seen[uid]) state.repeats += 1; else { state.seen[uid] = 1; state.count += 1; }
  return { output: { uid, group: input.body.group }, state };
}
"""
REKEY_SECOND = """export default function (input, state = { count: 0, repeats: 0, seen: {} }) {
  if (state.seen[input.uid]) state.repeats += 1; else { state.seen[input.uid] = 1; state.count += 1; }
  return { state };
}
"""


def rekey_project(extra_flow=None):
    return make_project(tmpdir() + "/rekey", {
        "flowstate.yaml": "name: rekey\n",
        "flows/f.yaml": extra_flow or REKEY_FLOW,
        "drivers/in.yaml": "kind: http.Request\nmethod: POST\npath: /in/{key}\n",
        "drivers/reply.yaml": "kind: http.Response\n",
        "functions/first.js": REKEY_FIRST,
        "functions/second.js": REKEY_SECOND,
    })


def block_state(node, block, key):
    p = cli("state", "get", "f", block, key, "--json", data=node.data)
    if p.returncode != 0 or not p.stdout.strip() or p.stdout.strip() == "null":
        return None
    return json.loads(p.stdout)


def test_a_flow_that_re_keys_sends_messages_across_nodes_exactly_once_through_kill_9_of_each_node_in_turn():
    """a flow whose second function re-keys (`key: /group`) on 3 nodes, each killed -9 in turn under load and restarted: every acknowledged message runs once at the first block and once at the second, on whichever nodes own their keys"""
    etcd = Etcd()
    project = rekey_project()
    nodes = start_all([cluster_node(etcd, n, project) for n in ("a", "b", "c")])
    try:
        wait_for("a placement over 3 nodes", lambda: placed(etcd, 3))
        devices = [f"d{i}" for i in range(16)]
        groups = [f"g{i}" for i in range(8)]
        check(len({owner_of(etcd, g) for g in groups}) == 3, "the second block's keys are on all three nodes")
        out = Outcomes(devices)
        acked, unknown, other = out.acked, out.unknown, out.other
        stop_load = threading.Event()

        def client(i):
            import random
            rnd = random.Random(i)
            n = 0
            while not stop_load.is_set():
                n += 1
                device = rnd.choice(devices)
                body = json.dumps({"uid": f"{i}-{n}", "group": rnd.choice(groups)})
                out.record(device, *attempt(rnd.choice(nodes), f"/in/{device}", body), ok=202)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        time.sleep(2)
        for victim in nodes:
            victim.kill9()
            time.sleep(1)
            victim.start()
            time.sleep(2)
        stop_load.set()
        for t in threads:
            t.join()
        check(not other, f"no answer other than 202, 503 and OutcomeUnknown: {other[:3]}")
        check(sum(acked.values()) > 100, f"the load ran: {sum(acked.values())} acknowledged")

        def first_counts():
            out = {}
            for d in devices:
                s = block_state(nodes[0], "first", d)
                if s is None and acked[d]:
                    return None
                out[d] = s or {"count": 0, "repeats": 0}
            return out

        def settled():
            # Nothing in flight and no outbox entry waiting, on every node.
            for n in nodes:
                st, ready = n.admin_get("/readyz")
                st, text = n.admin_get("/metrics")
                pending = [l for l in text.splitlines() if l.startswith("flowstate_outbox_pending")]
                if ready.get("in_flight") != 0 or not pending or float(pending[0].split()[-1]) != 0:
                    return False
            return True

        wait_for("every node idle with an empty outbox", settled, timeout=120)
        firsts = wait_for("every device's state", first_counts, timeout=60)
        for d in devices:
            check(firsts[d]["repeats"] == 0, f"{d}: no message ran twice at the first block: {firsts[d]['repeats']}")
            check(acked[d] <= firsts[d]["count"] <= acked[d] + unknown[d],
                  f"{d}: {acked[d]} acknowledged, {unknown[d]} unknown, first block counted {firsts[d]['count']}")
        total = sum(f["count"] for f in firsts.values())

        def second_counts():
            states = [block_state(nodes[0], "second", g) or {"count": 0, "repeats": 0} for g in groups]
            return states if sum(s["count"] for s in states) >= total else None

        try:
            seconds = wait_for("every message at the second block", second_counts, timeout=90)
        except AssertionError:
            # Name what is missing, and where each node's log is, to look at.
            ran = set().union(*(set(f.get("seen", {})) for f in firsts.values()))
            states = [block_state(nodes[0], "second", g) or {} for g in groups]
            arrived = set().union(*(set(s.get("seen", {})) for s in states))
            raise TestFailure(f"{len(ran - arrived)} of {len(ran)} messages never ran at the second block: "
                              f"{sorted(ran - arrived)[:10]}; logs: {[n.log_path for n in nodes]}")
        check(sum(s["count"] for s in seconds) == total and all(s["repeats"] == 0 for s in seconds),
              f"the second block ran each of the {total} messages once: "
              f"{[(s['count'], s['repeats']) for s in seconds]}")
        crossed = 0
        for n in nodes:
            st, text = n.admin_get("/metrics")
            for line in text.splitlines():
                if line.startswith("flowstate_inbox_accepted_total"):
                    crossed += float(line.split()[-1])
        check(crossed > 0, "messages crossed between nodes (flowstate_inbox_accepted_total)")
    finally:
        for n in nodes:
            n.stop()


def test_a_message_for_another_range_led_by_the_same_node_goes_through_its_outbox_and_runs_once():
    """a node leading two ranges (its peer stopped, min_in_sync=1) puts a message re-keyed into the other range in its outbox, not in that range's queue within the producing commit (each range has its own replication log and may fail over apart from the other); every message runs once at the second block"""
    etcd = Etcd()
    configure(etcd, "replication=2", "min_in_sync=1")
    project = rekey_project()
    nodes = start_all([cluster_node(etcd, n, project) for n in ("a", "b")])
    try:
        wait_for("a placement over 2 nodes, each range in sync on both", lambda: placed(etcd, 2))
        a, b = nodes
        b.stop()
        s = wait_for("a leading both ranges", lambda: (lambda st: st if all(
            r["node"] == "a" for r in st["ranges"]) else None)(status(etcd)), timeout=30)
        first, second = s["ranges"][0], s["ranges"][1]
        devices = [d for d in (f"d{i}" for i in range(200)) if first["first"] <= key_group(d) < first["end"]][:4]
        groups = [g for g in (f"g{i}" for i in range(200)) if second["first"] <= key_group(g) < second["end"]][:4]
        check(len(devices) == 4 and len(groups) == 4, f"keys in each range: {devices} {groups}")
        for i in range(20):
            st, _, body = post(a, f"/in/{devices[i % 4]}", body=json.dumps({"uid": f"u{i}", "group": groups[i % 4]}))
            check(st == 202, f"message {i}: {st} {body}")

        def second_counts():
            states = [block_state(a, "second", g) or {"count": 0, "repeats": 0} for g in groups]
            return states if sum(x["count"] for x in states) >= 20 else None

        seconds = wait_for("every message at the second block", second_counts, timeout=30)
        check([x["count"] for x in seconds] == [5, 5, 5, 5] and all(x["repeats"] == 0 for x in seconds),
              f"each message once at the second block: {seconds}")
        st, text = a.admin_get("/metrics")
        accepted = sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("flowstate_inbox_accepted_total"))
        check(accepted >= 20, f"the messages went through the outbox (flowstate_inbox_accepted_total {accepted})")
    finally:
        for n in nodes:
            n.stop()


def test_the_trace_of_a_request_that_crossed_nodes_is_answered_whole_by_any_node():
    """a request whose second block runs on another node: its trace, asked of a third node by trace id, shows both blocks' events, and the actor graph shows the message between the two nodes"""
    etcd = Etcd()
    project = rekey_project()
    nodes = start_all([cluster_node(etcd, n, project) for n in ("a", "b", "c")])
    try:
        wait_for("a placement over 3 nodes", lambda: placed(etcd, 3))
        device = next(d for d in (f"t{i}" for i in range(200)) if owner_of(etcd, d) == "a")
        group = next(g for g in (f"h{i}" for i in range(200)) if owner_of(etcd, g) == "b")
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        st, _, body = post(nodes[0], f"/in/{device}", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
                           body=json.dumps({"uid": "u1", "group": group}))
        check(st == 202, f"accepted: {st} {body}")

        def both():
            st, events = nodes[2].admin_get(f"/api/v1/trace?project=rekey&trace={trace_id}")
            return events if st == 200 and {e["block"] for e in events} == {"first", "second"} else None

        events = wait_for("both blocks' events, asked of c", both)
        check(len(events) == 2 and events[0]["block"] == "first" and events[1]["block"] == "second",
              f"oldest first, one event per block: {[(e['block'], e['timeMs']) for e in events]}")
        st, graph = nodes[2].admin_get("/api/v1/cluster/graph")
        by_name = {n["name"]: n for n in graph["nodes"]} if st == 200 else {}
        check(sorted(by_name) == ["a", "b", "c"] and all(n["shards"] for n in by_name.values())
              and by_name["a"]["workers"] and by_name["b"]["workers"] and not graph["unreachable"],
              f"the actor graph, asked of c, has every node with its shards, and workers where functions ran: "
              f"{st} {str(graph)[:400]}")
        check(any(e["from"] == "a" and e["to"] == "b" and e["messages"] >= 1 for e in graph["edges"]),
              f"and the message a's outbox delivered to b as an edge: {graph['edges']}")
    finally:
        for n in nodes:
            n.stop()


def test_logs_follow_on_one_node_prints_every_nodes_events_and_a_cursor_resumes_after_the_last_one_seen():
    """`logs -f` on node a prints the executions a and b run, and the cursor of the last event seen gives exactly the later ones of both nodes"""
    etcd = Etcd()
    project = counter_project(tmpdir() + "/counter")
    a, b = start_all([cluster_node(etcd, "a", project), cluster_node(etcd, "b", project)])
    follower = None
    try:
        wait_for("a placement over 2 nodes", lambda: placed(etcd, 2))
        on_a = next(k for k in (f"f{i}" for i in range(200)) if owner_of(etcd, k) == "a")
        on_b = next(k for k in (f"f{i}" for i in range(200)) if owner_of(etcd, k) == "b")
        follower = subprocess.Popen([BIN, "logs", "-f", "--json", "--data", a.data], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        time.sleep(1)  # the stream starts "from now"
        for key in (on_a, on_b, on_a, on_b):
            st, _, body = post(a, f"/count/{key}")
            check(st == 200, f"{key}: {st} {body}")
        printed = []
        reader = threading.Thread(target=lambda: [printed.append(json.loads(line)) for line in follower.stdout],
                                  daemon=True)
        reader.start()
        wait_for("four executions followed through a", lambda: len(printed) >= 4 or None, timeout=30)
        check(sorted(e["key"] for e in printed) == sorted([on_a, on_b, on_a, on_b]),
              f"both nodes' executions, each once: {[(e['key'], e.get('cursor')) for e in printed]}")
        cursor = printed[-1]["cursor"]
        for key in (on_b, on_a):
            post(a, f"/count/{key}")
        st, later = b.admin_get(f"/api/v1/trace?after={cursor}&limit=100")
        check(st == 200 and sorted(e["key"] for e in later) == sorted([on_a, on_b]),
              f"after the last cursor a printed, b answers the two later executions only: {st} {later}")
        wait_for("the follower printing them too", lambda: len(printed) >= 6 or None, timeout=30)
        check(len(printed) == 6, f"nothing printed twice: {[(e['key'], e['cursor']) for e in printed]}")
    finally:
        if follower:
            follower.kill()
        a.stop()
        b.stop()


def test_a_cluster_refuses_an_http_response_after_a_re_keying_block():
    """a flow that re-keys a later block and answers with http.Response after it is refused by a cluster node, naming the block and what to do"""
    etcd = Etcd()
    project = rekey_project(REKEY_FLOW + "  - http.Response: reply\n")
    node = cluster_node(etcd, "a", project)
    p = subprocess.run([BIN, "serve", "--data", node.data, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
                       + node.extra_args + [project], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "FLOWSTATE_CLUSTER_SECRET": SECRET})
    check(p.returncode != 0 and "flows/f.yaml:" in p.stderr and "re-keys its messages" in p.stderr
          and "Put the http.Response before this block" in p.stderr,
          f"refused, naming the block: {p.returncode} {p.stderr[-500:]}")


def test_cluster_up_starts_etcd_and_three_nodes_that_answer_every_key_and_ctrl_c_stops_them():
    """`flowstate cluster up --nodes 3` starts etcd and three nodes on loopback; any node answers any key; SIGINT stops all"""
    import re
    import signal
    project = counter_project(tmpdir() + "/counter")
    data = tmpdir("flowstate-up-")
    proc = subprocess.Popen([BIN, "cluster", "up", "--nodes", "3", "--data", data, project],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.time() + 90
        while time.time() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops the cluster" in line:
                break
        text = "".join(lines)
        flows = re.findall(r"flows on http://(\S+)", text)
        etcd = re.search(r"etcd (http://\S+)", text)
        check(len(flows) == 3 and etcd, f"it prints the nodes and etcd: {text}")

        class At:
            def __init__(self, addr):
                self.listen = addr

            def connection(self, timeout=30):
                import http.client
                host, port = self.listen.rsplit(":", 1)
                return http.client.HTTPConnection(host, int(port), timeout=timeout)

        def placed3():
            """Placed over the 3 nodes, each range with its 3 copies in sync (the default replication)."""
            p = subprocess.run([BIN, "cluster", "status", "--cluster", etcd.group(1), "--json"],
                               capture_output=True, text=True)
            ranges = json.loads(p.stdout)["ranges"] if p.returncode == 0 else []
            return len(ranges) == 3 and all(len(r.get("inSync", [])) == 3 for r in ranges)

        wait_for("the placement", placed3, timeout=60)
        for i in range(12):
            st, _, body = post(At(flows[i % 3]), f"/count/u{i}")
            check(st == 200 and json.loads(body) == {"count": 1}, f"u{i} via node {i % 3 + 1}: {st} {body}")
        proc.send_signal(signal.SIGINT)
        check(proc.wait(timeout=60) == 0, "Ctrl-C stops the cluster and it exits 0")
        left = subprocess.run(["pgrep", "-f", data], capture_output=True, text=True).stdout.split()
        check(not left, f"etcd and the nodes are stopped too: {left}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_peer_listen_without_a_cluster_secret_is_refused():
    """--peer-listen without a cluster secret of 16+ characters is refused at start, saying how to give one"""
    etcd = Etcd()
    project = counter_project(tmpdir() + "/counter")
    node = Node([project], extra_args=["--cluster", etcd.endpoint, "--node", "a", "--peer-listen", "127.0.0.1:0"])
    env = {k: v for k, v in os.environ.items() if k != "FLOWSTATE_CLUSTER_SECRET"}
    p = subprocess.run([BIN, "serve", "--data", node.data, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
                       + node.extra_args + [project], capture_output=True, text=True, timeout=60, env=env)
    check(p.returncode == 2 and "--cluster-secret-file FILE or FLOWSTATE_CLUSTER_SECRET" in p.stderr,
          f"refused: {p.returncode} {p.stderr[-300:]}")


if __name__ == "__main__":
    run([test_any_node_answers_any_key_and_each_key_is_counted_exactly_once_by_its_owner,
         test_a_killed_node_leaves_its_keys_unavailable_and_serves_them_again_with_its_data_after_restart,
         test_an_owner_that_dies_with_a_forwarded_request_gives_outcome_unknown_and_a_retry_runs_it_once,
         test_kill_9_of_each_node_in_turn_under_load_keeps_every_acknowledged_increment_exactly_once,
         test_any_node_lists_shows_discards_and_replays_the_errors_every_node_keeps,
         test_projects_get_the_same_ids_on_every_node_whatever_order_they_are_served_in,
         test_a_second_node_with_a_live_nodes_name_is_refused,
         test_a_flow_that_re_keys_sends_messages_across_nodes_exactly_once_through_kill_9_of_each_node_in_turn,
         test_a_message_for_another_range_led_by_the_same_node_goes_through_its_outbox_and_runs_once,
         test_the_trace_of_a_request_that_crossed_nodes_is_answered_whole_by_any_node,
         test_logs_follow_on_one_node_prints_every_nodes_events_and_a_cursor_resumes_after_the_last_one_seen,
         test_a_cluster_refuses_an_http_response_after_a_re_keying_block,
         test_cluster_up_starts_etcd_and_three_nodes_that_answer_every_key_and_ctrl_c_stops_them,
         test_peer_listen_without_a_cluster_secret_is_refused])
