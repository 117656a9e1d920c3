"""The execution trace and `flowstate logs`: every execution is recorded with
its input, outputs, new state, console/print lines, timing and error; queries
by flow/block, key, trace id and errors; following; retention."""
import http.client
import json
import os
import subprocess
import time

from harness import BIN, Node, check, cli, make_project, run, tmpdir

STEP_JS = """export default function (input, state = {n: 0}, ctx) {
  console.log('step for', ctx.key, 'n =', state.n);
  if (input.body && input.body.fail) throw new Error('asked to fail');
  return {output: {n: state.n + 1, who: ctx.key}, state: {n: state.n + 1}};
}
"""
REPLY_PY = """def entrypoint(input, state):
    print("replying to", input["who"])
    return {"output": {"status": 200, "body": input}}
"""


def project(root, manifest_extra=""):
    return make_project(root, {
        "flowstate.yaml": f"name: traced\n{manifest_extra}",
        "flows/steps.yaml": "blocks:\n  - http.Request: api\n  - js.Function: step\n  - py.Function: answer\n"
                            "  - http.Response: reply\n",
        "drivers/api.yaml": "kind: http.Request\nmethod: POST\npath: /steps/{key}\n",
        "drivers/reply.yaml": "kind: http.Response\n",
        "functions/step.js": STEP_JS,
        "functions/answer.py": REPLY_PY,
    })


def logs(node, *args):
    p = cli("logs", "--json", *args, data=node.data, check_rc=0)
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def test_every_execution_is_traced_with_its_data():
    """each execution records input, output, new state, logs, timing and revision; logs print them"""
    node = Node([project(os.path.join(tmpdir(), "traced"))]).start()
    try:
        for key in ("a", "a", "b"):
            status, body = node.request("POST", f"/steps/{key}", {"x": 1})
            check(status == 200, f"{status} {body}")
        events = logs(node, "-n", "100")
        check(len(events) == 6, f"two blocks x three requests: {len(events)} events")
        steps = [e for e in events if e["block"] == "step"]
        check([e["key"] for e in steps] == ["a", "a", "b"], f"oldest first: {[e['key'] for e in steps]}")
        second = steps[1]
        check(second["input"]["body"] == {"x": 1}, f"the input: {second['input']}")
        check(second["outputs"] == [{"n": 2, "who": "a"}], f"the outputs: {second['outputs']}")
        check(second["state"] == {"n": 2} and second["stateChange"] == "set", f"the new state: {second}")
        check(second["logs"] == ["step for a n = 1"], f"console.log lines: {second['logs']}")
        check(second["status"] == "ok" and second["durationMs"] >= 0 and len(second["revision"]) == 40, f"{second}")
        answers = [e for e in events if e["block"] == "answer"]
        check(answers[0]["logs"] == ["replying to a"], f"print lines: {answers[0]['logs']}")
        check(answers[0]["traceId"] == steps[0]["traceId"], "one request's executions share a trace id")
        check(answers[0]["stateChange"] == "unchanged" and "state" not in answers[0], f"{answers[0]}")
        human = cli("logs", "--key", "a", "--block", "step", data=node.data, check_rc=0).stdout
        check("steps/step  key=a  ok" in human and "log    step for a n = 1" in human and
              'out    {"n":2,"who":"a"}' in human, f"the human view:\n{human}")
    finally:
        node.stop()


def test_queries_by_key_block_trace_and_errors():
    """logs filter by key, block, trace id (a traceparent header) and errors; errors keep their logs"""
    node = Node([project(os.path.join(tmpdir(), "traced"))]).start()
    try:
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
        status, _ = node.request("POST", "/steps/k1", {}, headers={
            "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01", "Authorization": "Bearer s3cr3t-token",
            "Cookie": "session=abc\"quoted"})
        check(status == 200, f"{status}")
        node.request("POST", "/steps/k2", {})
        status, body = node.request("POST", "/steps/k2", {"fail": True})
        check(status == 500, f"{status} {body}")
        by_trace = logs(node, "--trace", trace_id)
        check([(e["block"], e["key"]) for e in by_trace] == [("step", "k1"), ("answer", "k1")],
              f"one trace, both blocks: {by_trace}")
        headers = by_trace[0]["input"]["headers"]
        check(headers["authorization"] == "(redacted)" and headers["cookie"] == "(redacted)",
              f"credentials are not kept in the trace: {headers}")
        check("s3cr3t" not in json.dumps(by_trace) and "session=abc" not in json.dumps(by_trace), "nowhere")
        by_key = logs(node, "--key", "k2", "--block", "step")
        check(len(by_key) == 2, f"k2 at step: {by_key}")
        errors = logs(node, "--errors")
        check(len(errors) == 1 and errors[0]["status"] == "Exception" and "asked to fail" in errors[0]["error"],
              f"only the failed execution: {errors}")
        check(errors[0]["logs"] == ["step for k2 n = 1"], f"a failed call keeps its logs: {errors[0]}")
        check(errors[0]["errorId"] and "stack" in json.dumps(errors[0].get("details", {})),
              f"the error id and the stack: {errors[0]}")
        newest = logs(node, "-n", "1")
        check(len(newest) == 1 and newest[0]["key"] == "k2" and newest[0]["status"] == "Exception",
              f"-n 1 is the newest: {newest}")
    finally:
        node.stop()


def test_follow_prints_new_executions():
    """logs --follow prints executions as they happen"""
    node = Node([project(os.path.join(tmpdir(), "traced"))]).start()
    follower = subprocess.Popen([BIN, "logs", "--follow", "--json", "--block", "step", "--data", node.data],
                                stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        for i in range(3):
            node.request("POST", f"/steps/f{i}", {})
        seen = []
        deadline = time.time() + 20
        while len(seen) < 3 and time.time() < deadline:
            line = follower.stdout.readline()
            if line.strip():
                seen.append(json.loads(line)["key"])
        check(seen == ["f0", "f1", "f2"], f"followed: {seen}")
    finally:
        follower.kill()
        node.stop()


def test_the_api_streams_new_executions_as_server_sent_events():
    """GET /api/v1/trace?follow=true streams each new execution as an event; SIGTERM still stops the node"""
    node = Node([project(os.path.join(tmpdir(), "traced"))]).start()
    try:
        node.request("POST", "/steps/before", {})
        host, port = node.admin.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=20)
        conn.request("GET", "/api/v1/trace?follow=true&block=step",
                     headers={"Authorization": f"Bearer {node.token}"})
        r = conn.getresponse()
        check(r.status == 200 and r.getheader("Content-Type") == "text/event-stream", f"{r.status} {r.getheaders()}")
        time.sleep(0.3)
        for i in range(3):
            node.request("POST", f"/steps/s{i}", {})
        seen, ids = [], []
        while len(seen) < 3:
            line = r.fp.readline().decode()
            check(line, "the stream ended early")
            if line.startswith("id: "):
                ids.append(line[4:].strip())
            if line.startswith("data: "):
                seen.append(json.loads(line[6:])["key"])
        check(seen == ["s0", "s1", "s2"], f"only what came after, in order: {seen}")
        check(len(set(ids)) == 3 and all(ids), f"each event has its cursor as id: {ids}")
        started = time.time()
        rc = node.terminate(timeout=30)
        check(rc == 0 and time.time() - started < 10, f"exit {rc} after {time.time() - started:.1f}s with a stream open")
        conn.close()
    finally:
        node.stop()


def test_a_stream_whose_client_went_frees_its_place_at_once():
    """32 followers open and then closed by their clients: a 33rd, opened right after, is served (a closed
    stream held its place until the next keep-alive, about 15 s); limit=0, errors=maybe and a bad cursor get 400"""
    import socket
    node = Node([project(os.path.join(tmpdir(), "traced"))]).start()
    try:
        host, port = node.admin.rsplit(":", 1)
        ask = (f"GET /api/v1/trace?follow=true HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {node.token}\r\n\r\n").encode()

        def follow():
            s = socket.create_connection((host, int(port)), timeout=20)
            s.sendall(ask)
            head = s.recv(4096)
            return s, head

        opened = [follow() for _ in range(32)]
        check(all(h.startswith(b"HTTP/1.1 200") for _, h in opened), f"32 served: {[h[:20] for _, h in opened]}")
        s, head = follow()
        check(head.startswith(b"HTTP/1.1 503"), f"a 33rd while they are open: {head[:40]}")
        s.close()
        for s, _ in opened:
            s.close()
        time.sleep(0.5)  # the node reads each close
        s, head = follow()
        check(head.startswith(b"HTTP/1.1 200"), f"a new one right after they closed: {head[:200]}")
        s.close()
        # A query's parameters are checked, not read loosely.
        for query, says in (("limit=0", "limit (at least 1)"), ("errors=maybe", "errors: expected true or false"),
                            ("after=garbage", "is not a cursor")):
            status, body = node.admin_get("/api/v1/trace?" + query)
            check(status == 400 and says in json.dumps(body), f"{query}: {status} {body}")
    finally:
        node.stop()


def test_retention_drops_payloads_then_events():
    """after trace.full only ids and timing remain; after trace.keep nothing"""
    root = project(os.path.join(tmpdir(), "traced"), "trace:\n  full: 2s\n  keep: 5s\n")
    node = Node([root]).start()

    def step_events():
        return {e["key"]: e for e in logs(node, "--block", "step")}

    def wait_for(condition, seconds):
        deadline = time.time() + seconds
        while time.time() < deadline:
            events = step_events()
            if condition(events):
                return events
            time.sleep(0.2)
        return step_events()

    try:
        sent = time.time()
        node.request("POST", "/steps/old", {})
        events = step_events()
        check("input" in events["old"], f"a fresh event is whole: {events['old']}")
        # Retention runs every second: whole seconds past `full`, the payload goes.
        events = wait_for(lambda ev: ev.get("old", {}).get("payload") == "expired", 6)
        waited = time.time() - sent
        old = events.get("old", {})
        check(old.get("payload") == "expired" and "input" not in old and old.get("status") == "ok",
              f"past full: {old}")
        check(waited > 2, f"not before full: {waited:.1f}s")
        node.request("POST", "/steps/new", {})
        events = wait_for(lambda ev: "old" not in ev, 8)
        check("old" not in events and "new" in events, f"past keep, the older event goes, the newer stays: {list(events)}")
        check(time.time() - sent > 5, "not before keep")
    finally:
        node.stop()


def test_quota_drops_the_oldest_events():
    """beyond trace.quota the oldest payloads go first (then the oldest events); the newest stay"""
    root = project(os.path.join(tmpdir(), "traced"), "trace:\n  quota: 768KiB\n")
    node = Node([root]).start()
    try:
        conn = node.connection()
        blob = "x" * 2000
        for i in range(400):  # about 400 x 2 x 4 KB of events
            status, _ = node.request("POST", f"/steps/q{i}", {"blob": blob}, conn=conn)
            check(status == 200, f"{status}")
        time.sleep(2.5)
        events = logs(node, "--block", "step", "-n", "1000")
        keys = [e["key"] for e in events if "input" in e]
        check("q399" in keys, f"the newest event keeps its payload: {keys[-3:]}")
        check("q0" not in keys, f"the oldest payloads are gone: {len(keys)} payloads kept, first {keys[:3]}")
        check(20 < len(keys) < 300, f"what is kept fits the quota: {len(keys)} payloads")
        print(f"    {len(keys)} of 400 payloads kept, {len(events)} events")
    finally:
        node.stop()


def test_trace_settings_are_checked():
    """a malformed trace: setting is refused naming its line"""
    root = project(os.path.join(tmpdir(), "traced"), "trace:\n  full: 1 day\n")
    p = cli("deploy", "-m", "bad trace", "--project", root, data=tmpdir("flowstate-data-"))
    check(p.returncode != 0 and "flowstate.yaml:3: expected `trace.full:` to be a duration like 24h" in p.stderr,
          f"{p.stderr}")


if __name__ == "__main__":
    run([test_every_execution_is_traced_with_its_data, test_queries_by_key_block_trace_and_errors,
         test_follow_prints_new_executions, test_the_api_streams_new_executions_as_server_sent_events,
         test_a_stream_whose_client_went_frees_its_place_at_once,
         test_retention_drops_payloads_then_events,
         test_quota_drops_the_oldest_events,
         test_trace_settings_are_checked])
