"""A data directory written by an older storage format (docs/operations.md
"Upgrading a data directory") is upgraded at start and keeps everything it
had accepted: state, the error queue (under new ids), stored Idempotency-Key
responses and the counters."""
import json
import os
import re
import shutil
import subprocess

from harness import Node, check, cli, run

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "format1-typed.tar.gz")
ROOT = "/tmp/flowstate-format1-fixture"  # where fixtures/make_format1.py wrote it


def unpack():
    shutil.rmtree(ROOT, ignore_errors=True)
    subprocess.run(["tar", "xzf", FIXTURE, "-C", "/"], check=True)
    return make_node()


def make_node():
    # The fixture's stored response was recorded on 2026-12-01: a lifetime
    # long enough that it still answers whenever the test runs.
    return Node([ROOT + "/typed"], data=ROOT + "/data", extra_args=["--idempotency-ttl", "36500d"])


def post(node, key, f, headers=None):
    conn = node.connection()
    conn.request("POST", f"/add/{key}", body=json.dumps({"f": f}),
                 headers={"Content-Type": "application/json", **(headers or {})})
    r = conn.getresponse()
    body = r.read().decode()
    conn.close()
    return r.status, dict(r.getheaders()), json.loads(body) if body else None


def test_a_format1_directory_is_upgraded_and_keeps_what_it_accepted():
    """a format-1 data directory upgrades at start: state, errors, stored responses and counters are all kept"""
    node = unpack().start()
    try:
        check(re.search(r"upgraded from format 1 to 2 \(1 error records and 1 counters moved", node.log()),
              f"the node says what it upgraded:\n{node.log()}")
        check(node.state("sum", "sum", "a") == {"total": 1}, "a's state survives")
        errors = node.errors()
        check(len(errors) == 1 and errors[0]["type"] == "Exception" and errors[0]["key"] == "b",
              f"b's error is still queued: {errors}")
        check(re.fullmatch(r"\d+-\d+", errors[0]["id"]), f"its id names key group and sequence: {errors[0]['id']}")
        status, headers, body = post(node, "c", 2, {"Idempotency-Key": "upgrade-c"})
        check(status == 200 and body == {"total": 2} and headers.get("Idempotent-Replayed") == "true",
              f"the stored response answers the repeat: {status} {headers} {body}")
        status, _, body = post(node, "c", 2)
        check(status == 200 and body == {"total": 4}, f"the repeat ran nothing: c is 2 + 2 = 4: {status} {body}")
        status, _, body = post(node, "a", 1)
        check(status == 200 and body == {"total": 2}, f"a goes on from its state: {body}")
        metrics = node.admin_get("/metrics")[1]
        check(re.search(r'flowstate_errors_queued\{project="typed"\} 1\b', metrics),
              "the error counter moved with the error: " +
              "\n".join(line for line in metrics.splitlines() if "errors_queued" in line))
        cli("errors", "discard", errors[0]["id"], data=node.data, check_rc=0)
        check(node.errors() == [], "the error is discarded by its new id")
        node.terminate()
        node = make_node().start()
        check(node.log().count("upgraded from format 1") == 1, "a second start does not upgrade again")
        check(node.state("sum", "sum", "c") == {"total": 4}, "and everything is still there")
    finally:
        node.stop()
        shutil.rmtree(ROOT, ignore_errors=True)


if __name__ == "__main__":
    run([test_a_format1_directory_is_upgraded_and_keeps_what_it_accepted])
