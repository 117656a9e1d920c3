"""http.Post (docs/drivers.md "http.Post" and "Sinks"): outputs reach a
real HTTP target after their commit, retried with the same Idempotency-Key
until it takes them, through kill -9; a refusal becomes a SinkFailed error
that can be replayed; a target that is down backs the sink up and then
the sources answer 503; bad configurations are refused at deploy."""
import http.server
import json
import re
import threading
import time

from harness import Node, check, cli, make_project, run, stream_through_kill9, tmpdir, wait_for, write_files

ALERT_JS = """export default function (input) {
  return { outputs: [{ device: input.params.key, level: input.body.level }] };
}
"""


class Target:
    """A webhook receiver on loopback: records every request; fails the
    first `fail_first` tries of each Idempotency-Key with 503; answers 400
    for devices in `refuse`."""

    def __init__(self, fail_first=0, delay=0.0):
        self.requests = []  # (path, headers dict, body)
        self.peers = []  # the client's (address, port) of each request: its connection
        self.fail_first = fail_first
        self.delay = delay
        self.refuse = set()
        self.lock = threading.Lock()
        self.server = None
        self.port = None

    def start(self, port=0):
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real targets do

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                key = self.headers.get("Idempotency-Key")
                with target.lock:
                    target.requests.append((self.path, dict(self.headers), body))
                    target.peers.append(self.client_address)
                    tries = sum(1 for r in target.requests if r[1].get("Idempotency-Key") == key)
                if target.delay:
                    time.sleep(target.delay)
                device = json.loads(body).get("device")
                if device in target.refuse:
                    # Echoes the Authorization header, as some targets do.
                    status, text = 400, json.dumps({"error": f"unknown device {device}",
                                                    "auth": self.headers.get("Authorization")})
                elif tries <= target.fail_first:
                    status, text = 503, "busy"
                else:
                    status, text = 200, "{}"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text.encode())
                except OSError:
                    pass  # the node went away (kill -9)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a kept-alive connection reset by a node killed -9

        self.server = Server(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def taken(self):
        """Idempotency-Key -> body of the requests answered 200 (by key)."""
        with self.lock:
            out = {}
            for path, headers, body in self.requests:
                key = headers.get("Idempotency-Key")
                tries = [r for r in self.requests if r[1].get("Idempotency-Key") == key]
                if len(tries) > self.fail_first and json.loads(body).get("device") not in self.refuse:
                    out[key] = body
            return out


def hook_project(port, retry="{attempts: 6, initial: 100ms, max: 1s}", extra=None):
    files = {
        "flowstate.yaml": "name: hooks\ndurability: sync\n",
        "flows/alerts.yaml": "blocks:\n  - http.Request: in\n  - js.Function: alert\n  - http.Post: notify\n",
        "drivers/in.yaml": "kind: http.Request\nmethod: POST\npath: /alerts/{key}\n",
        "drivers/notify.yaml": f"kind: http.Post\nurl: http://127.0.0.1:{port}/hook/{{{{key}}}}?level={{{{/level}}}}\n"
                               f"headers:\n  X-Device: \"{{{{/device}}}}\"\nretry: {retry}\n",
        "functions/alert.js": ALERT_JS,
    }
    files.update(extra or {})
    return make_project(tmpdir() + "/hooks", files)


def post(node, key, level):
    conn = node.connection()
    conn.request("POST", f"/alerts/{key}", body='{"level": %d}' % level, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status


def metric(node, name, **labels):
    status, text = node.admin_get("/metrics")
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_a_webhook_failing_3_times_then_succeeding_is_delivered_once_with_the_same_idempotency_key_each_try():
    """a target answering 503 three times then 200 gets four tries of the output, all with one Idempotency-Key, the URL and headers rendered from the output; the sink counts 1 delivered and 3 retried"""
    target = Target(fail_first=3).start()
    node = Node([hook_project(target.port)])
    try:
        node.start()
        check(post(node, "dev%201", 42) == 202, "the request is accepted once committed")
        wait_for("the fourth try", lambda: len(target.requests) >= 4)
        time.sleep(0.5)
        check(len(target.requests) == 4, f"exactly four tries: {len(target.requests)}")
        keys = {r[1].get("Idempotency-Key") for r in target.requests}
        check(len(keys) == 1 and re.fullmatch(r"[0-9a-f]{32}", keys.pop() or ""), f"one id for every try: {keys}")
        path, headers, body = target.requests[-1]
        check(path == "/hook/dev%201?level=42", f"the URL template is rendered and encoded: {path}")
        check(headers.get("X-Device") == "dev 1", f"headers from the output: {headers}")
        check(json.loads(body) == {"device": "dev 1", "level": 42}, f"the body is the output: {body}")
        wait_for("the delivered count", lambda: metric(node, "flowstate_sink_deliveries_total", outcome="delivered") == 1)
        check(metric(node, "flowstate_sink_deliveries_total", outcome="retried") == 3, "three retries counted")
        check(metric(node, "flowstate_sink_pending", block="notify") == 0, "nothing pending")
        check(len(set(target.peers)) == 1, f"the four tries share one kept-alive connection: {target.peers}")
    finally:
        node.stop()
        target.stop()


def test_every_acknowledged_output_reaches_the_target_through_kill_9_and_no_id_carries_two_bodies():
    """a stream of alerts with kill -9 of the node in the middle: every output acknowledged to its client reaches the target (by id), repeats of an id carry the same body, and the outbox is empty afterwards"""
    target = Target(delay=0.05).start()
    project = hook_project(target.port)
    node = Node([project])
    try:
        node.start()
        acked = [(f"d{i % 7}", i) for i in stream_through_kill9(node, lambda i: post(node, f"d{i % 7}", i), 30, 400)]

        def delivered_all():
            got = {(json.loads(b)["device"], json.loads(b)["level"]) for b in target.taken().values()}
            return all(a in got for a in acked)
        wait_for("every acknowledged output at the target", delivered_all, timeout=60)
        by_id = {}
        with target.lock:
            for _, headers, body in target.requests:
                by_id.setdefault(headers["Idempotency-Key"], set()).add(body)
        check(all(len(bodies) == 1 for bodies in by_id.values()), "an id always carries the same output")
        check(len(acked) > 30, f"some alerts acknowledged while the stream ran: {len(acked)}")
        wait_for("an empty sink outbox", lambda: metric(node, "flowstate_sink_pending", block="notify") == 0)
    finally:
        node.stop()
        target.stop()


def test_a_refused_delivery_becomes_a_sinkfailed_error_with_the_answer_and_a_replay_delivers_it_after_the_fix():
    """a target answering 400 for one device: no retry, a SinkFailed error record holding the target's answer; other devices are not held up; after the target is fixed, errors replay delivers it with the same id"""
    target = Target().start()
    target.refuse.add("bad")
    node = Node([hook_project(target.port)])
    try:
        node.start()
        check(post(node, "bad", 1) == 202 and post(node, "good", 2) == 202, "both accepted")
        errors = wait_for("the SinkFailed error", lambda: [e for e in node.errors() if e["type"] == "SinkFailed"])
        e = errors[0]
        check(e["block"] == "notify" and e["flow"] == "alerts" and e["key"] == "bad", f"where it failed: {e}")
        check("HTTP 400" in e["message"] and "unknown device bad" in json.dumps(e["details"]),
              f"the target's answer is in the record: {e}")
        wait_for("the good device delivered", lambda: any('"good"' in b for b in target.taken().values()))
        tries = [r for r in target.requests if '"bad"' in r[2]]
        check(len(tries) == 1, f"a refusal is not retried: {len(tries)} tries")
        target.refuse.clear()
        cli("errors", "replay", e["id"], data=node.data, check_rc=0)
        wait_for("the replayed delivery", lambda: any('"bad"' in b for b in target.taken().values()))
        ids = {r[1]["Idempotency-Key"] for r in target.requests if '"bad"' in r[2]}
        check(len(ids) == 1, f"the replay carries the same id: {ids}")
        check(not [x for x in node.errors() if x["type"] == "SinkFailed"], "the error left the queue")
    finally:
        node.stop()
        target.stop()


def test_a_target_that_is_down_backs_the_sink_up_then_sources_get_503_and_everything_lands_once_it_is_back():
    """with --sink-backlog 5 and the target down, deliveries are retried and pile up to the backlog; then new requests get 503 with Retry-After; when the target comes back every accepted output is delivered and requests are accepted again"""
    target = Target()
    from harness import free_port
    port = free_port()
    node = Node([hook_project(port, retry="{attempts: 1000, initial: 100ms, max: 300ms}")],
                extra_args=["--sink-backlog", "5"])
    try:
        node.start()
        statuses = [post(node, f"k{i}", i) for i in range(5)]
        check(statuses == [202] * 5, f"accepted up to the backlog: {statuses}")
        wait_for("five pending", lambda: metric(node, "flowstate_sink_pending", block="notify") == 5)
        conn = node.connection()
        conn.request("POST", "/alerts/k9", body='{"level": 9}', headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        text = r.read().decode()
        check(r.status == 503 and r.getheader("Retry-After") and "sink" in text, f"pushed back: {r.status} {text}")
        wait_for("retries while down", lambda: metric(node, "flowstate_sink_deliveries_total", outcome="retried") >= 5)
        target.start(port)
        wait_for("all five delivered", lambda: len(target.taken()) == 5, timeout=30)
        wait_for("accepting again", lambda: post(node, "k10", 10) == 202)
        check(not node.errors(), "no error records")
    finally:
        node.stop()
        if target.server:
            target.stop()


def test_deliveries_pending_for_a_sink_that_a_deploy_removes_become_undeliverable_errors():
    """with the target down, three outputs of one key wait for their sink; a deploy removing the sink block turns each into an Undeliverable error record, and nothing stays pending"""
    from harness import free_port
    project = hook_project(free_port(), retry="{attempts: 1000, initial: 200ms, max: 500ms}")
    node = Node([project])
    try:
        node.start()
        check([post(node, "same", i) for i in range(3)] == [202] * 3, "accepted")
        wait_for("three pending", lambda: metric(node, "flowstate_sink_pending", block="notify") == 3)
        write_files(project, {"flows/alerts.yaml": "blocks:\n  - http.Request: in\n  - js.Function: alert\n"})
        cli("deploy", "-m", "no more webhook", "--project", project, data=node.data, check_rc=0)
        errors = wait_for("three Undeliverable errors",
                          lambda: [e for e in node.errors() if e["type"] == "Undeliverable"] if len(
                              [e for e in node.errors() if e["type"] == "Undeliverable"]) == 3 else None)
        check(all(e["block"] == "notify" and e["key"] == "same" for e in errors), f"named: {errors}")
        check(metric(node, "flowstate_sink_pending", block="notify") == 0, "nothing pending")
    finally:
        node.stop()


def test_an_http_post_before_any_function_and_a_bad_url_are_refused_at_deploy_naming_the_file():
    """http.Post as a flow's first block and a url without a scheme are refused at deploy with the file named; the running revision keeps serving"""
    target = Target().start()
    project = hook_project(target.port)
    node = Node([project])
    try:
        node.start()
        write_files(project, {"drivers/notify.yaml": "kind: http.Post\nurl: hooks.example.com/x\n"})
        p = cli("deploy", "-m", "bad url", "--project", project, data=node.data)
        out = p.stdout + p.stderr
        check(p.returncode != 0 and "drivers/notify.yaml" in out and "url:" in out, f"bad url refused: {out}")
        write_files(project, {
            "drivers/notify.yaml": "kind: http.Post\nurl: http://127.0.0.1:1/x\n",
            "flows/direct.yaml": "blocks:\n  - http.Post: notify\n  - js.Function: alert\n",
        })
        p = cli("deploy", "-m", "sink first", "--project", project, data=node.data)
        out = p.stdout + p.stderr
        check(p.returncode != 0 and "flows/direct.yaml" in out and "is a sink" in out, f"sink first refused: {out}")
        check(post(node, "x", 1) == 202, "the running revision still serves")
    finally:
        node.stop()
        target.stop()


if __name__ == "__main__":
    run([test_a_webhook_failing_3_times_then_succeeding_is_delivered_once_with_the_same_idempotency_key_each_try,
         test_every_acknowledged_output_reaches_the_target_through_kill_9_and_no_id_carries_two_bodies,
         test_a_refused_delivery_becomes_a_sinkfailed_error_with_the_answer_and_a_replay_delivers_it_after_the_fix,
         test_a_target_that_is_down_backs_the_sink_up_then_sources_get_503_and_everything_lands_once_it_is_back,
         test_deliveries_pending_for_a_sink_that_a_deploy_removes_become_undeliverable_errors,
         test_an_http_post_before_any_function_and_a_bad_url_are_refused_at_deploy_naming_the_file])
