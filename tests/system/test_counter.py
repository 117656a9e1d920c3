"""http.Request -> js.Function -> http.Response under concurrent clients."""
import threading

from harness import Node, check, counter_project, run, tmpdir


def test_concurrent_increments_are_exact():
    """20 concurrent clients x 200 increments over 10 keys: every key's count is exact"""
    project = counter_project(tmpdir() + "/counter")
    node = Node([project]).start()
    try:
        sent = [0] * 10
        lock = threading.Lock()
        failures = []

        def client(c):
            conn = node.connection()
            for i in range(200):
                k = (c + i) % 10
                status, body = node.request("POST", f"/count/k{k}", {"by": 1}, conn=conn)
                if status != 200:
                    failures.append((status, body))
                with lock:
                    sent[k] += 1
            conn.close()

        threads = [threading.Thread(target=client, args=(c,)) for c in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(not failures, f"{len(failures)} requests failed, first: {failures[:3]}")
        for k in range(10):
            state = node.state("counter", "counter", f"k{k}")
            check(state == {"count": sent[k]}, f"k{k}: state {state}, expected count {sent[k]}")
    finally:
        node.stop()


def test_response_carries_the_new_count():
    """each response carries the count after its own increment"""
    project = counter_project(tmpdir() + "/counter")
    node = Node([project]).start()
    try:
        for expected in range(1, 6):
            status, body = node.request("POST", "/count/solo", {"by": 1})
            check(status == 200 and body == {"count": expected}, f"got {status} {body}, expected count {expected}")
        status, body = node.request("POST", "/count/other", {"by": 5})
        check(body == {"count": 5}, f"another key starts from its own state, got {body}")
        status, _ = node.request("GET", "/count/solo")
        check(status == 404, f"an unknown route answers 404, got {status}")
        status, _ = node.request("POST", "/count/solo", "{not json")
        check(status == 400, f"a malformed JSON body answers 400 without reaching the function, got {status}")
        check(node.state("counter", "counter", "solo") == {"count": 5}, "the malformed request changed nothing")
    finally:
        node.stop()


PADDED_COUNTER = """export default function (input, state = {count: 0}) {
  const count = state.count + 1;
  return {output: {status: 200, body: {count}}, state: {count, pad: 'p'.repeat(1000)}};
}
"""


def test_counts_stay_exact_when_states_outgrow_the_cache():
    """with a 1 MiB state cache and 3 MB of states, every key's count is exact"""
    project = counter_project(tmpdir() + "/counter", function=PADDED_COUNTER)
    node = Node([project], extra_args=["--state-cache-mb", "1"]).start()
    try:
        keys = 2500
        failures = []

        def client(c):
            conn = node.connection()
            for rnd in range(3):
                for k in range(c, keys, 4):
                    status, body = node.request("POST", f"/count/k{k}", {}, conn=conn)
                    if status != 200 or body["count"] != rnd + 1:
                        failures.append((k, rnd, status, body))
            conn.close()

        threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(not failures, f"{len(failures)} wrong answers, first: {failures[:3]}")
        for k in (0, 1, 777, keys - 1):
            state = node.state("counter", "counter", f"k{k}")
            check(state["count"] == 3, f"k{k}: {state}")
    finally:
        node.stop()


def test_sigterm_drains_and_exits_cleanly():
    """SIGTERM finishes in-flight work, exits 0, and the state survives a restart"""
    project = counter_project(tmpdir() + "/counter")
    node = Node([project]).start()
    for _ in range(10):
        node.request("POST", "/count/a", {"by": 1})
    rc = node.terminate()
    check(rc == 0, f"exit code {rc} after SIGTERM\n{node.log()}")
    node.start()
    try:
        status, body = node.request("POST", "/count/a", {"by": 1})
        check(body == {"count": 11}, f"after restart got {body}")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_concurrent_increments_are_exact, test_response_carries_the_new_count,
         test_counts_stay_exact_when_states_outgrow_the_cache, test_sigterm_drains_and_exits_cleanly])
