"""GET /metrics on the admin listener: Prometheus text with executions by
outcome, call durations, in-flight work, the state cache, the error queue,
the trace and the workers."""
import http.client
import os
import re
import time

from harness import Node, check, counter_project, run, tmpdir

FLAKY_COUNTER = """export default function (input, state = {count: 0}) {
  if (input.body && input.body.fail) throw new Error('no');
  return {output: {status: 200, body: {count: state.count + 1}}, state: {count: state.count + 1}};
}
"""


def samples(text):
    """{(name, frozenset(labels)): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$', line)
        check(m, f"a malformed metrics line: {line!r}")
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(s, name, **labels):
    return s.get((name, frozenset(labels.items())))


def test_metrics_count_executions_by_outcome():
    """executions by outcome, the duration histogram, errors queued, trace bytes, state cache and workers"""
    root = counter_project(os.path.join(tmpdir(), "metered"), function=FLAKY_COUNTER)
    node = Node([root]).start()
    try:
        for i in range(7):
            status, _ = node.request("POST", f"/count/k{i % 3}", {})
            check(status == 200, f"{status}")
        status, _ = node.request("POST", "/count/k0", {"fail": True})
        check(status == 500, f"{status}")
        node.wait_idle()
        time.sleep(1.5)  # trace byte counts are written every second
        status, text = node.admin_get("/metrics")
        check(status == 200 and isinstance(text, str), f"{status} {str(text)[:200]}")
        s = samples(text)
        at = dict(project="metered", flow="counter", block="counter")
        check(value(s, "flowstate_executions_total", outcome="ok", **at) == 7, f"ok executions:\n{text}")
        check(value(s, "flowstate_executions_total", outcome="Exception", **at) == 1, "one Exception")
        check(value(s, "flowstate_execution_duration_seconds_count", **at) == 8, "every call is in the histogram")
        check(value(s, "flowstate_execution_duration_seconds_bucket", le="+Inf", **at) == 8, "the +Inf bucket")
        check(value(s, "flowstate_execution_duration_seconds_sum", **at) > 0, "a duration sum")
        check(value(s, "flowstate_errors_queued", project="metered") == 1, "one queued error")
        check(value(s, "flowstate_trace_bytes", project="metered") > 1000, "trace bytes are counted")
        check(value(s, "flowstate_state_cache_bytes") > 0, "the state cache holds the three keys")
        check(value(s, "flowstate_in_flight_messages") == 0, "nothing in flight")
        check(value(s, "flowstate_worker_processes", project="metered", language="js") >= 1, "a JS worker")
        check(("flowstate_project_info", frozenset({("project", "metered"), ("revision", node_revision(node))}))
              in s, "the active revision")
        check("# TYPE flowstate_execution_duration_seconds histogram" in text, "typed families")
        host, port = node.admin.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/metrics")
        check(conn.getresponse().status == 401, "metrics need the admin token")
    finally:
        node.stop()


def test_flows_api_shows_blocks_with_live_stats():
    """GET /api/v1/projects/{p}/flows: the flow as a stack of blocks, the function's executions and durations"""
    root = counter_project(os.path.join(tmpdir(), "stacked"), function=FLAKY_COUNTER)
    node = Node([root]).start()
    try:
        for i in range(4):
            node.request("POST", f"/count/k{i}", {})
        node.request("POST", "/count/k0", {"fail": True})
        status, body = node.admin_get("/api/v1/projects/stacked/flows")
        check(status == 200, f"{status} {body}")
        check(body["project"] == "stacked" and len(body["revision"]) == 40, f"{body}")
        flow = body["flows"][0]
        check(flow["name"] == "counter" and flow["onError"] is None, f"{flow}")
        kinds = [(b["kind"], b["id"]) for b in flow["blocks"]]
        check(kinds == [("http.Request", "count"), ("js.Function", "counter"), ("http.Response", "reply")],
              f"the stack, top to bottom: {kinds}")
        stats = flow["blocks"][1]["stats"]
        check(stats["executions"] == {"ok": 4, "Exception": 1}, f"executions by outcome: {stats}")
        check(0 < stats["p50Ms"] <= stats["p99Ms"] and stats["meanMs"] > 0, f"durations: {stats}")
        check("stats" not in flow["blocks"][0], "drivers have no function statistics")
        status, body = node.admin_get("/api/v1/projects/nope/flows")
        check(status == 404, f"an unknown project: {status} {body}")
    finally:
        node.stop()


def node_revision(node):
    status, body = node.admin_get("/api/v1/projects")
    return body[0]["revision"]


if __name__ == "__main__":
    run([test_metrics_count_executions_by_outcome, test_flows_api_shows_blocks_with_live_stats])
