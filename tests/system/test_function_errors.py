"""A function that throws or loops forever becomes a typed error in the
error queue; other keys keep being served."""
import threading

from harness import Node, check, counter_project, run, tmpdir

FAULTY_JS = """export default function (input, state = { count: 0 }, ctx) {
  if (ctx.key === "bad") throw new Error("no bad keys here");
  if (ctx.key === "loop") { while (true) {} }
  if (ctx.key === "shape") return { output: 1, extra: 2 };
  const count = state.count + 1;
  return { output: { status: 200, body: { count } }, state: { count } };
}
"""


def test_throw_and_timeout_become_typed_errors():
    """a throw gives Exception (500), an endless loop gives Timeout (504), both in the error queue"""
    root = tmpdir() + "/faulty"
    project = counter_project(root, function=FAULTY_JS,
                              extra={"flowstate.yaml": "name: faulty\ntimeout: 300ms\n"})
    node = Node([project]).start()
    try:
        status, body = node.request("POST", "/count/bad", {})
        check(status == 500 and body["title"] == "Exception" and "no bad keys here" in body["detail"],
              f"throw: {status} {body}")
        status, body = node.request("POST", "/count/loop", {})
        check(status == 504 and body["title"] == "Timeout" and body["type"] == "urn:flowstate:error:Timeout",
              f"loop: {status} {body}")
        status, body = node.request("POST", "/count/shape", {})
        check(status == 500 and "extra" in body["detail"], f"a wrong return shape: {status} {body}")
        errors = node.errors()
        types = [(e["type"], e["key"], e["flow"], e["block"]) for e in errors]
        check(("Exception", "bad", "counter", "counter") in types, f"errors: {types}")
        check(("Timeout", "loop", "counter", "counter") in types, f"errors: {types}")
        bad = next(e for e in errors if e["key"] == "bad")
        check(bad["input"]["params"]["key"] == "bad" and "stack" in bad["details"], f"the record keeps the input: {bad}")
        check(node.state("counter", "counter", "bad") is None, "a failed call changed no state")
    finally:
        node.stop()


def test_other_keys_keep_running_while_one_loops():
    """while calls loop until their time limit, other keys are answered"""
    root = tmpdir() + "/faulty"
    project = counter_project(root, function=FAULTY_JS,
                              extra={"flowstate.yaml": "name: faulty\ntimeout: 1s\n"})
    node = Node([project]).start()
    try:
        results = []

        def looper():
            results.append(node.request("POST", "/count/loop", {})[0])

        loops = [threading.Thread(target=looper) for _ in range(2)]
        for t in loops:
            t.start()
        for i in range(1, 21):
            status, body = node.request("POST", "/count/good", {})
            check(status == 200 and body["count"] == i, f"good key: {status} {body}")
        for t in loops:
            t.join()
        check(results == [504, 504], f"the loops ended in Timeout: {results}")
        status, body = node.request("POST", "/count/good", {})
        check(status == 200 and body["count"] == 21, f"after the timeouts: {status} {body}")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_throw_and_timeout_become_typed_errors, test_other_keys_keep_running_while_one_loops])
