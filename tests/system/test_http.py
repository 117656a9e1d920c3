"""HTTP semantics (docs/http.md): reply rules, problem+json statuses,
route timeouts, Idempotency-Key, backpressure, public/ files, projects
sharing the listener."""
import http.client
import json
import os
import threading
import time

from harness import Node, check, cli, make_project, run, tmpdir

# Slower than the route timeout of the test below by far (a sleep, not a
# loop, so that a loaded machine does not bring it near the call limit).
SLOW_PY = """import time
def entrypoint(input, state, ctx):
    state = state or {"runs": 0}
    time.sleep(1.5)
    state["runs"] += 1
    return {"output": {"status": 201, "body": {"runs": state["runs"]}}, "state": state}
"""

DISPATCH_JS = """export default function (input, state = { n: 0 }, ctx) {
  const n = state.n + 1;
  switch (input.params.what) {
    case "reply": return { output: { status: 201, headers: { "x-n": String(n) }, body: { n } }, state: { n } };
    case "text": return { output: { status: 200, body: "plain " + n } };
    case "filter": return { state: { n } };
    case "badstatus": return { output: { status: 700, body: { n } }, state: { n } };
    case "nothing": return undefined;
    case "throw": throw new Error("boom");
    case "slow": { const end = Date.now(); let x = 0; for (let i = 0; i < 3e8; i++) x += i; return { output: { status: 200, body: { x } }, state: { n } }; }
    default: return { output: { status: 200, body: { n } }, state: { n } };
  }
}
"""


def http_project(root, name="web", manifest_extra="", route_timeout=None, files=None):
    timeout = f"timeout: {route_timeout}\n" if route_timeout else ""
    f = {
        "flowstate.yaml": f"name: {name}\n{manifest_extra}",
        "flows/api.yaml": "blocks:\n  - http.Request: api\n  - js.Function: dispatch\n  - http.Response: reply\n",
        "flows/sink.yaml": "blocks:\n  - http.Request: sink\n  - js.Function: dispatch\n",
        "drivers/api.yaml": f"kind: http.Request\n{timeout}routes:\n  - POST /do/{{what}}/{{key}}\n  - GET /do/{{what}}/{{key}}\n",
        "drivers/sink.yaml": "kind: http.Request\nmethod: POST\npath: /sink/{what}/{key}\n",
        "drivers/reply.yaml": "kind: http.Response\n",
        "functions/dispatch.js": DISPATCH_JS,
        "public/index.html": "<h1>hello</h1>\n",
        "public/css/site.css": "h1 { color: red }\n",
    }
    f.update(files or {})
    return make_project(root, f)


def raw(node, method, path, body=None, headers=None, host=None):
    conn = node.connection()
    h = dict(headers or {})
    if host:
        h["Host"] = host
    conn.request(method, path, body=body, headers=h)
    r = conn.getresponse()
    data = r.read().decode()
    conn.close()
    return r.status, dict(r.getheaders()), data


def oversized_status(node):
    """Announces a 2 MiB body: the node answers 413 from the headers alone
    (sending the body would race the node closing the connection)."""
    import socket
    host, port = node.listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(b"POST /do/x/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n")
        head = s.recv(4096).decode(errors="replace")
    return int(head.split(" ", 2)[1])


def test_reply_rules():
    """first response wins, 202 without a response, 204 for a filter, problem+json for errors"""
    node = Node([http_project(tmpdir() + "/web")]).start()
    try:
        status, headers, body = raw(node, "POST", "/do/reply/a", "{}", {"Content-Type": "application/json"})
        check(status == 201 and headers.get("x-n") == "1" and '"n":1' in body, f"reply: {status} {headers} {body}")
        check(headers.get("Content-Type") == "application/json", f"JSON body type: {headers}")
        status, headers, body = raw(node, "POST", "/do/text/a", "{}")
        check(status == 200 and body == "plain 2" and headers["Content-Type"].startswith("text/plain"),
              f"a string body is sent as text: {status} {headers} {body}")
        status, _, body = raw(node, "POST", "/do/filter/a", "{}")
        check(status == 204 and body == "", f"a filter answers 204: {status} {body}")
        status, _, _ = raw(node, "POST", "/do/nothing/a", "{}")
        check(status == 204, f"undefined is a filter: {status}")
        status, _, _ = raw(node, "POST", "/sink/any/a", "{}")
        check(status == 202, f"a path without http.Response answers 202 once accepted: {status}")
        status, headers, body = raw(node, "POST", "/do/throw/a", "{}")
        check(status == 500 and headers["Content-Type"] == "application/problem+json" and '"Exception"' in body,
              f"throw: {status} {headers} {body}")
        status, _, body = raw(node, "POST", "/do/x/a", "{bad json", {"Content-Type": "application/json"})
        check(status == 400, f"malformed JSON: {status} {body}")
        check(oversized_status(node) == 413, "an oversized body answers 413")
        status, _, _ = raw(node, "DELETE", "/do/x/a")
        check(status == 404, f"no route: {status}")
        check(node.state("api", "dispatch", "a") == {"n": 2}, "only returned states were kept")
    finally:
        node.stop()


def test_route_timeout_answers_504_and_the_message_still_completes():
    """a response slower than the route's timeout gets 504; the message is still processed"""
    node = Node([http_project(tmpdir() + "/web", route_timeout="50ms")]).start()
    try:
        status, headers, body = raw(node, "POST", "/do/slow/k", "{}")
        problem = json.loads(body)
        check(status == 504 and problem["type"] == "urn:flowstate:problem:route-timeout" and
              problem["title"] == "route timeout" and "errorId" not in problem, f"slow: {status} {body}")
        node.wait_idle()
        check(node.state("api", "dispatch", "k") == {"n": 1}, "the slow message was still processed")
    finally:
        node.stop()


def test_a_retry_after_a_route_timeout_runs_the_function_once():
    """a repeat of an Idempotency-Key after a route-timeout 504 waits for the first run and runs nothing"""
    root = make_project(tmpdir() + "/slow", {
        "flowstate.yaml": "name: slow\ntimeout: 30s\n",
        "flows/slow.yaml": "blocks:\n  - http.Request: api\n  - py.Function: slow\n  - http.Response: reply\n",
        "drivers/api.yaml": "kind: http.Request\ntimeout: 100ms\nmethod: POST\npath: /slow/{key}\n",
        "drivers/reply.yaml": "kind: http.Response\n",
        "functions/slow.py": SLOW_PY,
    })
    node = Node([root]).start()
    try:
        h = {"Idempotency-Key": "pay-7"}
        status, _, body = raw(node, "POST", "/slow/k", "{}", h)
        check(status == 504 and "route-timeout" in body, f"the first request outlives its route: {status} {body}")
        answers = []
        for _ in range(600):  # each repeat waits up to the route's timeout
            answers.append(raw(node, "POST", "/slow/k", "{}", h))
            if answers[-1][0] != 504:
                break
        status, headers, body = answers[-1]
        check(status == 201 and json.loads(body) == {"runs": 1} and headers.get("Idempotent-Replayed") == "true",
              f"the repeat gets the first run's response: {status} {headers} {body}")
        check(all(a[0] == 504 and "route-timeout" in a[2] for a in answers[:-1]),
              f"repeats before it got route timeouts: {[a[0] for a in answers]}")
        node.wait_idle()
        check(node.state("slow", "slow", "k") == {"runs": 1}, f"one run: {node.state('slow', 'slow', 'k')}")
        events = [line for line in cli("logs", "--json", "--block", "slow", "-n", "100", data=node.data,
                                       check_rc=0).stdout.splitlines() if line.strip()]
        check(len(events) == 1, f"one execution in the trace: {events}")
    finally:
        node.stop()


def test_a_bad_status_is_an_exception_error():
    """an output whose status is not 100-599 is an Exception: state unchanged, error queued and traced"""
    node = Node([http_project(tmpdir() + "/web")]).start()
    try:
        status, _, _ = raw(node, "POST", "/do/count/b", "{}")
        check(status == 200, f"a first count: {status}")
        status, headers, body = raw(node, "POST", "/do/badstatus/b", "{}")
        problem = json.loads(body)
        check(status == 500 and problem["title"] == "Exception" and "`status` must be an integer" in problem["detail"]
              and "got 700" in problem["detail"] and problem.get("errorId"), f"{status} {body}")
        check(node.state("api", "dispatch", "b") == {"n": 1}, f"state unchanged: {node.state('api', 'dispatch', 'b')}")
        errors = [e for e in node.errors() if e["key"] == "b"]
        check(len(errors) == 1 and errors[0]["type"] == "Exception" and errors[0]["id"] == problem["errorId"],
              f"the error is queued: {errors}")
        events = [json.loads(line) for line in cli("logs", "--json", "--key", "b", "--errors", data=node.data,
                                                   check_rc=0).stdout.splitlines() if line.strip()]
        check(len(events) == 1 and events[0]["status"] == "Exception", f"and traced: {events}")
    finally:
        node.stop()


def test_a_flow_without_http_response_answers_202_at_acceptance():
    """without http.Response a request gets 202 once queued, whatever its function does; a repeat runs nothing"""
    node = Node([http_project(tmpdir() + "/web")]).start()
    try:
        for what in ("nothing", "throw", "filter", "count"):
            status, headers, body = raw(node, "POST", f"/sink/{what}/s-{what}", "{}")
            check(status == 202 and body == "", f"{what}: {status} {body}")
        h = {"Idempotency-Key": "sink-1"}
        first = raw(node, "POST", "/sink/count/once", "{}", h)
        again = raw(node, "POST", "/sink/count/once", "{}", h)
        check(first[0] == 202 and again[0] == 202 and again[1].get("Idempotent-Replayed") == "true",
              f"the 202 is the stored response: {first} {again}")
        node.wait_idle()
        check(node.state("sink", "dispatch", "once") == {"n": 1}, "the repeat ran nothing")
        check(node.state("sink", "dispatch", "s-count") == {"n": 1}, "the function ran after the 202")
        check([e["key"] for e in node.errors()] == ["s-throw"], f"its error is queued: {node.errors()}")
        node.stop()
        node.start()  # the 202s were durable: nothing runs twice after a restart
        node.wait_idle()
        check(node.state("sink", "dispatch", "once") == {"n": 1}, "nothing ran again at the restart")
    finally:
        node.stop()


def test_idempotency_key_deduplicates():
    """a repeated Idempotency-Key gets the first response and changes no state again"""
    node = Node([http_project(tmpdir() + "/web")]).start()
    try:
        h = {"Idempotency-Key": "order-42"}
        first = raw(node, "POST", "/do/count/k", "{}", h)
        again = raw(node, "POST", "/do/count/k", "{}", h)
        check(first[0] == 200 and first[2] == again[2], f"{first} vs {again}")
        check(again[1].get("Idempotent-Replayed") == "true", f"the replay is marked: {again[1]}")
        other = raw(node, "POST", "/do/count/k", "{}", {"Idempotency-Key": "order-43"})
        check('"n":2' in other[2], f"another key is a new message: {other}")
        # Concurrent repeats: one execution.
        results = []

        def send():
            results.append(raw(node, "POST", "/do/count/c", "{}", {"Idempotency-Key": "burst"})[2])

        threads = [threading.Thread(target=send) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check(len(set(results)) == 1, f"all repeats got one response: {set(results)}")
        check(node.state("api", "dispatch", "c") == {"n": 1}, "ten repeats ran once")
        node.stop()
        node.start()
        again = raw(node, "POST", "/do/count/k", "{}", h)
        check(again[2] == first[2], f"the key survives a restart: {again}")
    finally:
        node.stop()


def test_idempotency_keys_expire_after_the_ttl():
    """after --idempotency-ttl a repeated Idempotency-Key runs again; a bad TTL is refused"""
    node = Node([http_project(tmpdir() + "/web")], extra_args=["--idempotency-ttl", "2s"]).start()
    try:
        h = {"Idempotency-Key": "order-1"}
        first = raw(node, "POST", "/do/count/k", "{}", h)
        again = raw(node, "POST", "/do/count/k", "{}", h)
        check(again[2] == first[2] and again[1].get("Idempotent-Replayed") == "true", f"{first} vs {again}")
        time.sleep(2.5)
        later = raw(node, "POST", "/do/count/k", "{}", h)
        check('"n":2' in later[2] and "Idempotent-Replayed" not in later[1], f"past the TTL it runs again: {later}")
        replay = raw(node, "POST", "/do/count/k", "{}", h)
        check(replay[2] == later[2], f"and the new response is the one repeats get: {replay}")
    finally:
        node.stop()
    p = cli("serve", "--idempotency-ttl", "soon", data=tmpdir("flowstate-data-"))
    check(p.returncode == 2 and "expected --idempotency-ttl like 24h" in p.stderr, f"{p.returncode} {p.stderr}")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_backpressure_answers_503_and_memory_stays_bounded():
    """at the in-flight bound sources get 503 with Retry-After, and memory stays bounded under a flood"""
    node = Node([http_project(tmpdir() + "/web")], extra_args=["--max-in-flight", "4", "--shards", "1"]).start()
    try:
        statuses = []
        lock = threading.Lock()

        def flood(c):
            conn = node.connection(timeout=120)
            for i in range(8):
                conn.request("POST", f"/do/slow/k{c}", body="{}")
                r = conn.getresponse()
                r.read()
                with lock:
                    statuses.append((r.status, r.getheader("Retry-After")))

        threads = [threading.Thread(target=flood, args=(c,)) for c in range(32)]
        for t in threads:
            t.start()
        peak = 0
        while any(t.is_alive() for t in threads):
            peak = max(peak, rss_kib(node.proc.pid))
            threads[0].join(0.05)
        for t in threads:
            t.join()
        rejected = [s for s in statuses if s[0] == 503]
        check(rejected, "the flood met no backpressure")
        check(all(r == "1" for _, r in rejected), f"503s carry Retry-After: {rejected[:3]}")
        check(all(s in (200, 503) for s, _ in statuses), f"only 200 or 503: {set(statuses)}")
        check(peak < 400 * 1024, f"node RSS peaked at {peak} KiB")
        status, _, _ = raw(node, "POST", "/do/count/after", "{}")
        check(status == 200, "the node serves after the flood")
    finally:
        node.stop()


def test_public_files_are_served():
    """public/ files are served from the active revision with types and ETags"""
    root = tmpdir() + "/web"
    node = Node([http_project(root)]).start()
    try:
        status, headers, body = raw(node, "GET", "/")
        check(status == 200 and "hello" in body and headers["Content-Type"].startswith("text/html"), f"{status} {body}")
        status, headers, body = raw(node, "GET", "/css/site.css")
        check(status == 200 and headers["Content-Type"].startswith("text/css"), f"css: {status} {headers}")
        status, _, _ = raw(node, "GET", "/css/site.css", headers={"If-None-Match": headers["ETag"]})
        check(status == 304, f"If-None-Match: {status}")
        status, _, _ = raw(node, "GET", "/missing.html")
        check(status == 404, f"missing: {status}")
        status, _, _ = raw(node, "GET", "/../flowstate.yaml")
        check(status == 404, f"no escape from public/: {status}")
        with open(os.path.join(root, "public/index.html"), "w") as f:
            f.write("edited but not deployed")
        status, _, body = raw(node, "GET", "/index.html")
        check("hello" in body, "files come from the deployed revision, not the working tree")
    finally:
        node.stop()


def test_two_projects_share_the_listener():
    """two projects share one listener by host name and by path prefix; a colliding route is refused"""
    base = tmpdir()
    a = http_project(base + "/a", name="alpha", manifest_extra="http:\n  prefix: /alpha\n")
    b = http_project(base + "/b", name="beta", manifest_extra="http:\n  host: beta.localhost\n")
    c = http_project(base + "/c", name="gamma")
    node = Node([a, b, c]).start()
    try:
        status, _, body = raw(node, "POST", "/alpha/do/count/k", "{}")
        check(status == 200 and '"n":1' in body, f"alpha by prefix: {status} {body}")
        status, _, body = raw(node, "POST", "/do/count/k", "{}", host="beta.localhost:80")
        check(status == 200 and '"n":1' in body, f"beta by host: {status} {body}")
        status, _, body = raw(node, "POST", "/do/count/k", "{}")
        check(status == 200 and '"n":1' in body, f"gamma as the default: {status} {body}")
        status, _, body = raw(node, "POST", "/alpha/do/count/k", "{}")
        check('"n":2' in body, f"alpha keeps its own state: {body}")
        check(node.state("api", "dispatch", "k", project="beta") == {"n": 1}, "beta's state is its own")
        status, _, body = raw(node, "GET", "/alpha/")
        check(status == 200 and "hello" in body, f"alpha's public/ under its prefix: {status}")
    finally:
        node.stop()
    # Two projects on the same host and prefix with the same route.
    d = http_project(base + "/d", name="delta")
    node = Node([c, d])
    try:
        node.start()
        raise AssertionError("a colliding route was accepted")
    except Exception as e:  # noqa: BLE001
        check("collides" in str(e), f"refused for the collision: {e}")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_reply_rules, test_route_timeout_answers_504_and_the_message_still_completes,
         test_a_retry_after_a_route_timeout_runs_the_function_once, test_a_bad_status_is_an_exception_error,
         test_a_flow_without_http_response_answers_202_at_acceptance,
         test_idempotency_key_deduplicates, test_idempotency_keys_expire_after_the_ttl,
         test_backpressure_answers_503_and_memory_stays_bounded,
         test_public_files_are_served, test_two_projects_share_the_listener])
