"""influxdb.Write against a real InfluxDB 1.x (docs/drivers.md
"influxdb.Write"): every acknowledged reading lands as exactly one point
through kill -9 of the node; with InfluxDB down for 10 s the writes back up
and then land, none lost; a point InfluxDB refuses fails alone."""
import json
import time

from harness import Influxd, Node, check, cli, make_project, run, stream_through_kill9, tmpdir, wait_for

READING_JS = """export default function (input) {
  return { outputs: [{ device: input.params.key, seq: input.body.seq, temperature: input.body.t }] };
}
"""


def influx_project(influx, extra=""):
    return make_project(tmpdir() + "/telemetry", {
        "flowstate.yaml": "name: telemetry\ndurability: sync\n",
        "flows/readings.yaml": "blocks:\n  - http.Request: in\n  - js.Function: reading\n  - influxdb.Write: store\n",
        "drivers/in.yaml": "kind: http.Request\nmethod: POST\npath: /readings/{key}\n",
        "drivers/store.yaml": f"kind: influxdb.Write\nurl: {influx.url}\ndatabase: iot\nmeasurement: readings\n"
                              "tags: {device: \"{{key}}\"}\nfields: {temperature: /temperature, seq: /seq}\n"
                              "batch: {size: 100, every: 50ms}\nretry: {attempts: 1000, initial: 100ms, max: 1s}\n"
                              + extra,
        "functions/reading.js": READING_JS,
    })


def post(node, key, seq, t=20.5):
    conn = node.connection()
    conn.request("POST", f"/readings/{key}", body='{"seq": %d, "t": %s}' % (seq, t),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status


def points(influx):
    """(device, seq) of every point, repeats included."""
    result = influx.query('SELECT "seq" FROM "readings" GROUP BY "device"', db="iot")
    out = []
    for series in result.get("series", []):
        device = series["tags"]["device"]
        out += [(device, int(row[1])) for row in series["values"]]
    return out


def test_every_acknowledged_reading_lands_in_influxdb_exactly_once_through_kill_9():
    """readings posted over 5 devices while the node is killed -9 and restarted: each acknowledged one is one point in InfluxDB, none twice (a repeated delivery writes the same series and time)"""
    influx = Influxd()
    influx.query("CREATE DATABASE iot")
    node = Node([influx_project(influx)])
    try:
        node.start()
        acked = [(f"dev{i % 5}", i) for i in stream_through_kill9(node, lambda i: post(node, f"dev{i % 5}", i), 50, 600,
                                                                    kill_after=0.7)]
        wait_for("every acknowledged reading in InfluxDB", lambda: set(acked) <= set(points(influx)), timeout=60)
        got = points(influx)
        check(len(got) == len(set(got)), f"no reading twice: {len(got)} points, {len(set(got))} distinct")
        check(len(acked) > 50, f"readings acknowledged while the stream ran: {len(acked)}")
    finally:
        node.stop()
        influx.stop()


def test_influxdb_down_for_10_seconds_backs_the_writes_up_and_then_they_all_land():
    """InfluxDB killed: readings are still accepted and pile up in the sink's outbox (flowstate_sink_pending); 10 s later InfluxDB is back and every one of them lands, once"""
    influx = Influxd()
    influx.query("CREATE DATABASE iot")
    node = Node([influx_project(influx)])
    try:
        node.start()
        check(all(post(node, "a", i) == 202 for i in range(10)), "accepted while InfluxDB is up")
        wait_for("the first ten", lambda: len(points(influx)) == 10)
        influx.stop()
        check(all(post(node, "a", i) == 202 for i in range(10, 60)), "accepted while InfluxDB is down")
        status, text = node.admin_get("/metrics")
        pending = [line for line in text.splitlines() if line.startswith("flowstate_sink_pending{")]
        check(pending and float(pending[0].rsplit(" ", 1)[1]) > 0, f"pending shows in /metrics: {pending}")
        time.sleep(10)
        influx.start()
        wait_for("all sixty", lambda: len(points(influx)) >= 60, timeout=60)
        got = points(influx)
        check(sorted(got) == sorted(("a", i) for i in range(60)), f"each once: {len(got)} points")
    finally:
        node.stop()
        influx.stop()


def test_a_point_influxdb_refuses_fails_alone_as_a_sinkfailed_error():
    """a reading whose temperature is a string, after the field is a float: InfluxDB refuses that point (400, a field type conflict); it becomes a SinkFailed error with InfluxDB's answer, and the points batched with it land"""
    influx = Influxd()
    influx.query("CREATE DATABASE iot")
    node = Node([influx_project(influx)])
    try:
        node.start()
        check(post(node, "a", 0) == 202, "first")
        wait_for("the first point", lambda: len(points(influx)) == 1)
        statuses = [post(node, "a", 1), post(node, "b", 2, t='"hot"'), post(node, "c", 3)]
        check(statuses == [202] * 3, f"accepted: {statuses}")
        errors = wait_for("the SinkFailed error", lambda: [e for e in node.errors() if e["type"] == "SinkFailed"])
        check(errors[0]["key"] == "b" and "field type conflict" in str(errors[0]["details"]),
              f"InfluxDB's answer in the record: {errors[0]}")
        wait_for("the good points", lambda: {("a", 1), ("c", 3)} <= set(points(influx)))
    finally:
        node.stop()
        influx.stop()


ASK_JS = """export default function (input) {
  return { outputs: [{ device: input.params.key }] };
}
"""
SHOW_JS = """export default function (input) {
  const series = input.series[0] || { values: [] };
  return { outputs: [{ status: 200, body: { device: input.input.device, points: series.values.length,
                                            seqs: series.values.map((v) => v[1]) } }] };
}
"""


def test_a_request_flow_answers_from_an_influxdb_query_with_bound_parameters():
    """GET /devices/{key}/history runs an InfluxQL query with the device bound as $device; its answer is committed as the next function's input, which answers the client; a query InfluxDB refuses answers the client with the SinkFailed error"""
    influx = Influxd()
    influx.query("CREATE DATABASE iot")
    server = f"url: {influx.url}\ndatabase: iot\n"
    project = make_project(tmpdir() + "/history", {
        "flowstate.yaml": "name: history\ndurability: sync\n",
        "flows/readings.yaml": "blocks:\n  - http.Request: in\n  - js.Function: reading\n  - influxdb.Write: store\n",
        "flows/history.yaml": "blocks:\n  - http.Request: question\n  - js.Function: ask\n  - influxdb.Query: recent\n"
                              "  - js.Function: show\n  - http.Response: answer\n",
        "drivers/in.yaml": "kind: http.Request\nmethod: POST\npath: /readings/{key}\n",
        "drivers/question.yaml": "kind: http.Request\nmethod: GET\npath: /devices/{key}/history\n",
        "drivers/answer.yaml": "kind: http.Response\n",
        "drivers/store.yaml": "kind: influxdb.Write\n" + server + "measurement: readings\n"
                              "tags: {device: \"{{key}}\"}\nfields: {temperature: /temperature, seq: /seq}\n",
        "drivers/recent.yaml": "kind: influxdb.Query\n" + server +
                               "query: SELECT seq FROM readings WHERE device = $device ORDER BY time\n"
                               "params: {device: /device}\n",
        "functions/reading.js": READING_JS,
        "functions/ask.js": ASK_JS,
        "functions/show.js": SHOW_JS,
    })
    node = Node([project])
    try:
        node.start()
        check(all(post(node, "d%201", i) == 202 for i in range(5)) and post(node, "other", 9) == 202, "readings in")
        wait_for("six points", lambda: len(points(influx)) == 6)
        status, body = node.request("GET", "/devices/d%201/history")
        check(status == 200 and body == {"device": "d 1", "points": 5, "seqs": [0, 1, 2, 3, 4]},
              f"answered from InfluxDB: {status} {body}")
        from harness import write_files
        write_files(project, {"drivers/recent.yaml": "kind: influxdb.Query\n" + server +
                              "query: SELECT seq FROM readings WHERE device = $device GROUP BY nonsense(\n"
                              "params: {device: /device}\n"})
        cli("deploy", "-m", "a bad query", "--project", project, data=node.data, check_rc=0)
        status, body = node.request("GET", "/devices/d%201/history")
        check(status >= 400 and "SinkFailed" in json.dumps(body), f"the error answers the client: {status} {body}")
    finally:
        node.stop()
        influx.stop()


if __name__ == "__main__":
    run([test_every_acknowledged_reading_lands_in_influxdb_exactly_once_through_kill_9,
         test_influxdb_down_for_10_seconds_backs_the_writes_up_and_then_they_all_land,
         test_a_point_influxdb_refuses_fails_alone_as_a_sinkfailed_error,
         test_a_request_flow_answers_from_an_influxdb_query_with_bound_parameters])
