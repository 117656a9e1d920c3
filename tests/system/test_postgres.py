"""postgres.Insert, postgres.Upsert and postgres.Query against a real
PostgreSQL 15 (docs/drivers.md "PostgreSQL"): every acknowledged reading
is one row through kill -9 (ON CONFLICT on the delivery id drops a
repeat), an upsert keeps each device's latest, a request flow answers from
a query, a refused row is a SinkFailed error with the SQLSTATE, and
PostgreSQL down backs the rows up until it is back."""
import time

from harness import Node, Postgres, check, make_project, run, stream_through_kill9, tmpdir, wait_for

READING_JS = """export default function (input) {
  return { outputs: [{ seq: input.body.seq, temperature: input.body.t ?? null }] };
}
"""
ASK_JS = """export default function (input) {
  return { outputs: [{ device: input.params.key }] };
}
"""
SHOW_JS = """export default function (input) {
  const row = input.rows[0];
  return { outputs: [{ status: 200, body: { device: input.input.device, readings: row.n, last: row.last } }] };
}
"""


def pg_project(pg):
    conn = f"connection: \"{pg.conninfo}\"\n"
    return make_project(tmpdir() + "/pgiot", {
        "flowstate.yaml": "name: pgiot\ndurability: sync\n",
        "flows/readings.yaml": "blocks:\n  - http.Request: in\n  - js.Function: reading\n  - postgres.Insert: rows\n"
                               "  - postgres.Upsert: latest\n",
        "flows/summary.yaml": "blocks:\n  - http.Request: question\n  - js.Function: ask\n  - postgres.Query: count\n"
                              "  - js.Function: show\n  - http.Response: reply\n",
        "drivers/in.yaml": "kind: http.Request\nmethod: POST\npath: /readings/{key}\n",
        "drivers/question.yaml": "kind: http.Request\nmethod: GET\npath: /devices/{key}/summary\n",
        "drivers/reply.yaml": "kind: http.Response\n",
        "drivers/rows.yaml": "kind: postgres.Insert\n" + conn + "table: readings\n"
                             "columns: {id: $id, device: $key, seq: /seq, temperature: /temperature, at: $time}\n"
                             "onConflict: [id]\nretry: {attempts: 1000, initial: 100ms, max: 1s}\n",
        "drivers/latest.yaml": "kind: postgres.Upsert\n" + conn + "table: latest\n"
                               "columns: {device: $key, seq: /seq}\nkey: [device]\n"
                               "retry: {attempts: 1000, initial: 100ms, max: 1s}\n",
        "drivers/count.yaml": "kind: postgres.Query\n" + conn +
                              "query: SELECT count(*)::int AS n, max(seq) AS last FROM readings WHERE device = $1\n"
                              "params: [/device]\n",
        "functions/reading.js": READING_JS,
        "functions/ask.js": ASK_JS,
        "functions/show.js": SHOW_JS,
    })


def setup(pg):
    pg.sql("CREATE TABLE readings (id text PRIMARY KEY, device text NOT NULL, seq int NOT NULL, "
           "temperature float8 NOT NULL, at timestamptz NOT NULL)")
    pg.sql("CREATE TABLE latest (device text PRIMARY KEY, seq int NOT NULL)")


def post(node, key, seq, t="20.5"):
    conn = node.connection()
    conn.request("POST", f"/readings/{key}", body='{"seq": %d, "t": %s}' % (seq, t),
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    conn.close()
    return r.status


def rows(pg):
    return [(d, int(s)) for d, s in pg.sql("SELECT device, seq FROM readings")]


def test_every_acknowledged_reading_is_one_row_through_kill_9_and_the_upsert_keeps_the_latest():
    """readings over 4 devices with kill -9 of the node mid-stream: each acknowledged reading is one row (a repeated delivery hits ON CONFLICT on its id), and latest holds each device's highest sequence"""
    pg = Postgres()
    setup(pg)
    node = Node([pg_project(pg)])
    try:
        node.start()
        acked = [(f"d{i % 4}", i) for i in stream_through_kill9(node, lambda i: post(node, f"d{i % 4}", i), 40, 500)]
        wait_for("every acknowledged reading in PostgreSQL", lambda: set(acked) <= set(rows(pg)), timeout=60)
        got = rows(pg)
        check(len(got) == len(set(got)), f"no reading twice: {len(got)} rows, {len(set(got))} distinct")
        check(len(acked) > 40, f"readings acknowledged while the stream ran: {len(acked)}")
        highest = {}
        for d, s in got:
            highest[d] = max(highest.get(d, -1), s)
        wait_for("latest per device", lambda: {d: int(s) for d, s in pg.sql("SELECT device, seq FROM latest")} == highest)
        check(not node.errors(), f"a repeated row is dropped by ON CONFLICT, not an error: {node.errors()[:2]}")
    finally:
        node.stop()
        pg.stop()


def test_a_request_flow_answers_from_a_postgres_query_and_a_refused_row_is_a_sinkfailed_error():
    """GET /devices/{key}/summary binds the device as $1 and answers from the rows; a reading without a temperature violates NOT NULL: a SinkFailed error with SQLSTATE 23502, the rows batched with it land"""
    pg = Postgres()
    setup(pg)
    node = Node([pg_project(pg)])
    try:
        node.start()
        check(all(post(node, "d%201", i) == 202 for i in range(3)), "readings in")
        wait_for("three rows", lambda: len(rows(pg)) == 3)
        status, body = node.request("GET", "/devices/d%201/summary")
        check(status == 200 and body == {"device": "d 1", "readings": 3, "last": 2}, f"answered: {status} {body}")
        check([post(node, "x", 10, t="null"), post(node, "y", 11)] == [202, 202], "accepted")
        errors = wait_for("the SinkFailed error", lambda: [e for e in node.errors() if e["type"] == "SinkFailed"])
        check(errors[0]["key"] == "x" and "23502" in errors[0]["message"], f"the SQLSTATE is named: {errors[0]}")
        wait_for("the good row", lambda: ("y", 11) in rows(pg))
    finally:
        node.stop()
        pg.stop()


def test_postgres_down_backs_the_rows_up_and_they_land_when_it_is_back():
    """PostgreSQL stopped: readings are still accepted and wait in the sink's outbox; when it is back every one of them is a row, once"""
    pg = Postgres()
    setup(pg)
    node = Node([pg_project(pg)])
    try:
        node.start()
        check(post(node, "a", 0) == 202, "first")
        wait_for("the first row", lambda: len(rows(pg)) == 1)
        pg.stop()
        check(all(post(node, "a", i) == 202 for i in range(1, 21)), "accepted while PostgreSQL is down")
        time.sleep(3)
        pg.start()
        wait_for("all twenty-one rows", lambda: len(rows(pg)) == 21, timeout=60)
        check(sorted(rows(pg)) == [("a", i) for i in range(21)], "each once")
    finally:
        node.stop()
        pg.stop()


if __name__ == "__main__":
    run([test_every_acknowledged_reading_is_one_row_through_kill_9_and_the_upsert_keeps_the_latest,
         test_a_request_flow_answers_from_a_postgres_query_and_a_refused_row_is_a_sinkfailed_error,
         test_postgres_down_backs_the_rows_up_and_they_land_when_it_is_back])
