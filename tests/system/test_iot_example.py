"""examples/iot end to end (docs/drivers.md; examples/iot/README.md) against a
real mosquitto, a real InfluxDB 1.x and a webhook receiver: 100 simulated
devices publish at QoS 2 while the node is killed -9 and restarted; every
reading is in InfluxDB exactly once, every device's count is exact, each
alert reaches the webhook once (one id), and the history is answered from
InfluxDB."""
import json
import os
import shutil
import subprocess
import time

from harness import Influxd, Mosquitto, Node, check, make_project, run, tmpdir, wait_for
from test_http_post import Target

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "iot")
DEVICES, PER_DEVICE = 100, 30


def iot_example(broker, influx, webhook_port):
    files = {}
    for root, _, names in os.walk(EXAMPLE):
        for name in names:
            path = os.path.join(root, name)
            with open(path) as f:
                files[os.path.relpath(path, EXAMPLE)] = f.read()
    files["drivers/telemetry.yaml"] = files["drivers/telemetry.yaml"].replace("mqtt://127.0.0.1:1883", broker.url)
    for name in ("drivers/readings.yaml", "drivers/recent.yaml"):
        files[name] = files[name].replace("http://127.0.0.1:8086", influx.url)
    files["drivers/notify.yaml"] = files["drivers/notify.yaml"].replace("127.0.0.1:9000", f"127.0.0.1:{webhook_port}")
    root = make_project(tmpdir() + "/iot", files)
    shutil.copymode(os.path.join(EXAMPLE, "simulate"), os.path.join(root, "simulate"))
    return root


def test_the_iot_example_keeps_every_reading_once_through_kill_9_with_100_devices():
    """100 simulated devices publish 30 readings each at QoS 2; the node is killed -9 in the middle of the stream and restarted: each device's count is exactly 30, InfluxDB holds each reading once, every alert the alert flow counted reached the webhook once, and GET /devices/{id}/history answers from InfluxDB"""
    broker, influx, webhook = Mosquitto(), Influxd(), Target().start()
    influx.query("CREATE DATABASE iot")
    project = iot_example(broker, influx, webhook.port)
    node = Node([project])
    sim = None
    try:
        node.start()
        broker.wait_for_client("flowstate-node-iot-")
        sim = subprocess.Popen([os.path.join(project, "simulate"), "--devices", str(DEVICES), "--rate", "400",
                                "--count", str(DEVICES * PER_DEVICE), "--broker", broker.url],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(3)
        node.kill9()
        time.sleep(0.3)
        node.start()
        out, _ = sim.communicate(timeout=120)
        check(sim.returncode == 0, f"the simulator ran: {out}")

        def count(device):
            s = node.state("telemetry", "track", device)
            return s["count"] if s else 0
        devices = [f"dev{i:04d}" for i in range(DEVICES)]
        wait_for("every device counted 30", lambda: all(count(d) == PER_DEVICE for d in devices), timeout=90)
        for d in devices:
            check(count(d) == PER_DEVICE, f"{d} counted {count(d)}")

        def stored():
            result = influx.query('SELECT "seq" FROM "readings" GROUP BY "device"', db="iot")
            return {s["tags"]["device"]: [row[1] for row in s["values"]] for s in result.get("series", [])}
        wait_for("every reading in InfluxDB",
                 lambda: all(len(v) == PER_DEVICE for v in stored().values()) and len(stored()) == DEVICES, timeout=60)
        for device, seqs in stored().items():
            check(sorted(seqs) == list(range(PER_DEVICE)), f"{device}: each reading once: {sorted(seqs)}")

        def alerts_counted():
            total = 0
            for d in devices:
                s = node.state("alerts", "alert", d)
                total += s["alerts"] if s else 0
            return total
        expected = alerts_counted()
        check(expected > 0, "some averages crossed the threshold")
        wait_for("every alert at the webhook", lambda: len(webhook.taken()) == expected, timeout=60)
        by_id = {}
        with webhook.lock:
            for path, headers, body in webhook.requests:
                by_id.setdefault(headers["Idempotency-Key"], set()).add(body)
        check(all(len(b) == 1 for b in by_id.values()), "one body per alert id")
        check(len(webhook.taken()) == expected, f"{expected} alerts, each once: {len(webhook.taken())} ids")

        status, body = node.request("GET", "/devices/dev0007/history")
        check(status == 200 and len(body["readings"]) == PER_DEVICE and "average" in body["readings"][0],
              f"history from InfluxDB: {status} {str(body)[:300]}")
    finally:
        if sim and sim.poll() is None:
            sim.kill()
        node.stop()
        influx.stop()
        broker.stop()
        webhook.stop()


def test_flowstate_init_makes_the_iot_template_with_a_runnable_simulator_and_passing_cases():
    """flowstate init --template iot writes the example as a git project whose simulator is executable and whose flowstate test cases pass"""
    from harness import cli
    root = os.path.join(tmpdir(), "my-iot")
    cli("init", "--template", "iot", root, check_rc=0)
    check(os.access(os.path.join(root, "simulate"), os.X_OK), "simulate is executable")
    p = cli("test", cwd=root, check_rc=0)
    check("2 passed, 0 failed" in p.stdout + p.stderr, f"the template's cases pass: {p.stdout + p.stderr}")


if __name__ == "__main__":
    run([test_the_iot_example_keeps_every_reading_once_through_kill_9_with_100_devices,
         test_flowstate_init_makes_the_iot_template_with_a_runnable_simulator_and_passing_cases])
