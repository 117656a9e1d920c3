"""kill -9 under load: every acknowledged message's effect is in the state
exactly once, none lost, none applied twice, in both durability modes."""
import threading

from harness import Node, check, make_project, run, tmpdir

TAG_JS = """export default function (input) {
  return { output: { id: input.body.id } };
}
"""

# Keeps every applied id: a lost or doubled effect is visible, not inferred.
APPEND_JS = """export default function (input, state = { ids: [] }) {
  state.ids.push(input.id);
  return { output: { status: 200, body: { n: state.ids.length } }, state };
}
"""


def crash_project(root, durability):
    return make_project(root, {
        "flowstate.yaml": f"name: crash\ndurability: {durability}\n",
        "flows/ids.yaml": "blocks:\n  - http.Request: append\n  - js.Function: tag\n"
                          "  - js.Function: counter\n  - http.Response: reply\n",
        "drivers/append.yaml": "kind: http.Request\nmethod: POST\npath: /append/{key}\n",
        "drivers/reply.yaml": "kind: http.Response\n",
        "functions/tag.js": TAG_JS,
        "functions/counter.js": APPEND_JS,
    })


def load_then_kill(durability):
    project = crash_project(tmpdir() + "/crash", durability)
    node = Node([project]).start()
    acked, sent = set(), set()
    lock = threading.Lock()
    stop = threading.Event()
    enough = threading.Event()

    def client(c):
        conn = node.connection(timeout=10)
        i = 0
        while not stop.is_set():
            key = f"k{(c + i) % 10}"
            mid = f"{c}-{i}"
            with lock:
                sent.add((key, mid))
            try:
                status, _ = node.request("POST", f"/append/{key}", {"id": mid}, conn=conn)
            except Exception:  # the node died under us: this one is in doubt
                return
            if status == 200:
                with lock:
                    acked.add((key, mid))
                    if len(acked) >= 1500:
                        enough.set()
            i += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(20)]
    for t in threads:
        t.start()
    check(enough.wait(120), "the load did not reach 1500 acknowledgements")
    node.kill9()
    stop.set()
    for t in threads:
        t.join()

    node.start()
    try:
        node.wait_idle()
        applied = {}
        for k in range(10):
            key = f"k{k}"
            state = node.state("ids", "counter", key)
            ids = state["ids"] if state else []
            check(len(ids) == len(set(ids)), f"{key}: an id was applied twice: {sorted(ids)[:20]}")
            applied[key] = set(ids)
        lost = [(k, m) for (k, m) in acked if m not in applied[k]]
        check(not lost, f"{len(lost)} acknowledged increments lost, e.g. {lost[:5]}")
        unknown = [(k, m) for k in applied for m in applied[k] if (k, m) not in sent]
        check(not unknown, f"ids applied that were never sent: {unknown[:5]}")
        total = sum(len(v) for v in applied.values())
        print(f"  {durability}: {len(acked)} acknowledged, {total} applied, {len(sent)} sent")
    finally:
        node.stop()


def test_sync():
    """kill -9 under load with durability sync: acknowledged effects are there exactly once"""
    load_then_kill("sync")


def test_relaxed():
    """kill -9 under load with durability relaxed: acknowledged effects are there exactly once"""
    load_then_kill("relaxed")


if __name__ == "__main__":
    run([test_sync, test_relaxed])
