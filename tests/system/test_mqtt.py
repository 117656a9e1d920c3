"""mqtt.Subscribe and mqtt.Publish against a real mosquitto (docs/drivers.md):
every message the broker took from its publisher reaches the flow exactly
once through kill -9 of the node, at QoS 2 and at QoS 1 with `id:`; a
broker restart loses nothing; outputs reach MQTT subscribers; bad
configurations are refused at deploy."""
import json
import threading
import time

import paho.mqtt.client as paho

from harness import Mosquitto, Node, check, cli, make_project, run, tmpdir, wait_for, write_files

COLLECT_JS = """export default function (input, state = { seqs: [] }) {
  const seqs = [...state.seqs, input.payload.seq];
  return { state: { seqs }, outputs: [{ device: input.payload.device, n: seqs.length }] };
}
"""


def iot_project(broker, qos=2, extra_sub="", out=True):
    flow = "blocks:\n  - mqtt.Subscribe: telemetry\n  - js.Function: collect\n"
    files = {
        "flowstate.yaml": "name: iot\ndurability: sync\n",
        "drivers/telemetry.yaml": f"kind: mqtt.Subscribe\nbroker: {broker.url}\ntopics: [\"devices/+/telemetry\"]\n"
                                  f"qos: {qos}\nkey: topic:1\n{extra_sub}",
        "functions/collect.js": COLLECT_JS,
    }
    if out:
        flow += "  - mqtt.Publish: counts\n"
        files["drivers/counts.yaml"] = f"kind: mqtt.Publish\nbroker: {broker.url}\ntopic: counts/{{{{key}}}}\nqos: 1\n"
    files["flows/readings.yaml"] = flow
    return make_project(tmpdir() + "/iot", files)


class Publisher:
    """A paho client publishing readings; `sent` holds (device, seq) of each
    message the broker acknowledged."""

    def __init__(self, broker, qos):
        self.qos = qos
        self.client = paho.Client(client_id=f"test-pub-{time.time_ns()}", clean_session=True)
        self.client.max_inflight_messages_set(100)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        self.sent = []

    def send(self, devices, lo, hi, pause=0.0):
        infos = []
        for seq in range(lo, hi):
            device = f"dev{seq % devices}"
            payload = json.dumps({"device": device, "seq": seq})
            infos.append(((device, seq), self.client.publish(f"devices/{device}/telemetry", payload, qos=self.qos)))
            if pause:
                time.sleep(pause)
        for what, info in infos:
            info.wait_for_publish(timeout=30)
            check(info.is_published(), f"the broker took {what}")
            self.sent.append(what)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def seqs_of(node, device):
    p = cli("state", "get", "readings", "collect", device, "--json", data=node.data)
    if p.returncode != 0 or p.stdout.strip() in ("", "null"):
        return []
    return json.loads(p.stdout)["seqs"]


def check_exactly_once(node, sent, devices):
    expected = {}
    for device, seq in sent:
        expected.setdefault(device, []).append(seq)

    def all_in():
        return all(sorted(seqs_of(node, d)) == sorted(expected.get(d, [])) for d in
                   [f"dev{i}" for i in range(devices)]) or None
    try:
        wait_for("every reading in its device's state", all_in, timeout=60)
    except AssertionError:
        for d in sorted(expected):
            got = seqs_of(node, d)
            missing = sorted(set(expected[d]) - set(got))
            doubled = sorted({s for s in got if got.count(s) > 1})
            check(not missing and not doubled, f"{d}: missing {missing[:10]}, doubled {doubled[:10]}")
        raise


def kill9_run(qos, extra_sub="", stop=lambda node: node.kill9()):
    broker = Mosquitto()
    node = Node([iot_project(broker, qos=qos, extra_sub=extra_sub, out=False)])
    pub = None
    try:
        node.start()
        broker.wait_for_client("flowstate-node-")
        pub = Publisher(broker, qos)
        pub.send(10, 0, 50)
        stream = threading.Thread(target=lambda: pub.send(10, 50, 600, pause=0.002))
        stream.start()
        time.sleep(0.5)
        stop(node)
        time.sleep(0.3)
        node.start()
        stream.join()
        check_exactly_once(node, pub.sent, 10)
        check(len(pub.sent) == 600, f"all readings published: {len(pub.sent)}")
    finally:
        if pub:
            pub.close()
        node.stop()
        broker.stop()


def test_every_qos_2_reading_is_accepted_exactly_once_through_kill_9_of_the_node():
    """600 readings at QoS 2 over 10 devices, the node killed -9 in the middle of the stream and restarted: every reading the broker took is in its device's state once, none twice (the packet ids kept in the acceptance commits recognise the broker's redeliveries)"""
    kill9_run(2)


def test_every_qos_1_reading_with_an_id_is_accepted_exactly_once_through_kill_9_of_the_node():
    """the same at QoS 1, with id: [/device, /seq] and batchWindow: 0 (each message read as it comes; the other tests run with the default 1ms window): the broker's redeliveries of readings accepted before the crash are recognised by their identity"""
    kill9_run(1, "id: [/device, /seq]\nbatchWindow: 0\n")


def test_a_stopping_node_acknowledges_what_it_took_so_even_qos_1_without_an_id_runs_once():
    """600 readings at QoS 1 without id:, the node stopped by SIGTERM in the middle of the stream and restarted: it stops reading, lets what it took run and commit, sends those PUBACKs and DISCONNECT before it exits, so the broker sends again only what the node never took, and every reading is in its device's state once"""
    kill9_run(1, stop=lambda node: check(node.terminate() == 0, "the node exits cleanly on SIGTERM"))


def test_a_reading_the_node_is_taking_when_sigterm_comes_is_acknowledged_before_it_disconnects():
    """QoS 1 without id:; the node's acceptance of a reading is held 2 s (a fault point) after its session saw that it may read, and SIGTERM comes meanwhile: the stop waits for that reading's hand-over, commit and PUBACK before DISCONNECT, so the broker does not send it again after the restart, and it is in the state once"""
    broker = Mosquitto()
    node = Node([iot_project(broker, qos=1, out=False)], env={"FLOWSTATE_FAULT": "mqtt.accept-late"})
    pub = None
    try:
        node.start()
        broker.wait_for_client("flowstate-node-")
        pub = Publisher(broker, 1)
        pub.send(1, 0, 1)
        time.sleep(0.5)  # the node is taking it now, for 2 s
        check(node.terminate() == 0, "the node exits cleanly on SIGTERM")
        del node.env["FLOWSTATE_FAULT"]
        node.start()
        pub.send(1, 1, 2)
        wait_for("the reading after the restart", lambda: 1 in seqs_of(node, "dev0"), timeout=30)
        time.sleep(1)  # a redelivery of the first one would come with the session
        check(sorted(seqs_of(node, "dev0")) == [0, 1], f"each reading once: {sorted(seqs_of(node, 'dev0'))}")
    finally:
        if pub:
            pub.close()
        node.stop()
        broker.stop()


def crash_before_ack_run(qos, extra_sub=""):
    broker = Mosquitto()
    node = Node([iot_project(broker, qos=qos, extra_sub=extra_sub, out=False)])
    pub = None
    try:
        node.start(env={"FLOWSTATE_FAULT": "mqtt.before_ack"})
        broker.wait_for_client("flowstate-node-")
        pub = Publisher(broker, qos)
        pub.send(1, 0, 1)
        node.wait_killed()
        node.start()
        pub.send(1, 1, 3)
        check_exactly_once(node, pub.sent, 1)
    finally:
        if pub:
            pub.close()
        node.stop()
        broker.stop()


def test_a_crash_after_the_acceptance_commit_and_before_the_ack_does_not_accept_the_redelivery_again():
    """the node dies (a fault point) after a reading's acceptance commit is durable and before its PUBREC (QoS 2) or PUBACK (QoS 1 with id:) leaves; the broker delivers it again after the restart, and it is in the state once"""
    crash_before_ack_run(2)
    crash_before_ack_run(1, "id: [/device, /seq]\n")


def test_a_broker_that_lost_the_session_gets_its_qos_2_packet_ids_forgotten():
    """the node dies after accepting a QoS 2 reading and before its PUBREC; the broker then restarts without persistence (the session is gone); after the node's restart the broker numbers packet ids from 1 again, and every new reading is accepted (none mistaken for a redelivery of the old packet id)"""
    broker = Mosquitto(persistence=False)
    node = Node([iot_project(broker, qos=2, out=False)])
    pub = None
    try:
        node.start(env={"FLOWSTATE_FAULT": "mqtt.before_ack"})
        broker.wait_for_client("flowstate-node-")
        pub = Publisher(broker, 2)
        pub.send(1, 0, 1)
        node.wait_killed()
        pub.close()
        broker.restart()
        node.start()
        broker.wait_for_client("flowstate-node-", count=2)
        pub = Publisher(broker, 2)
        pub.send(1, 1, 6)
        check_exactly_once(node, pub.sent + [("dev0", 0)], 1)
    finally:
        if pub:
            pub.close()
        node.stop()
        broker.stop()


def test_a_message_larger_than_1_mib_becomes_an_error_record_and_the_ones_after_it_arrive():
    """a 1.5 MiB message at QoS 2 and one at QoS 1 are acknowledged with an error record naming the limit (instead of coming back with every connection), and the readings after them reach the flow"""
    broker = Mosquitto()
    node = Node([iot_project(broker, qos=2, out=False)])
    pub = None
    try:
        node.start()
        broker.wait_for_client("flowstate-node-")
        pub = Publisher(broker, 2)
        pub.send(1, 0, 1)
        big = json.dumps({"device": "dev0", "seq": -1, "blob": "x" * (1536 << 10)})
        for qos in (2, 1):
            info = pub.client.publish("devices/dev0/telemetry", big, qos=qos)
            info.wait_for_publish(timeout=30)
        pub.send(1, 1, 3)
        check_exactly_once(node, pub.sent, 1)
        errors = wait_for("two error records", lambda: len(node.errors()) == 2 and node.errors(), timeout=30)
        for e in errors:
            check("above the limit of 1 MiB" in json.dumps(e), f"the error names the limit: {e}")
    finally:
        if pub:
            pub.close()
        node.stop()
        broker.stop()


def test_a_broker_restart_loses_nothing_and_outputs_reach_mqtt_subscribers():
    """readings before and after a clean restart of the broker all reach the flow once (the node's persistent session and subscription survive), and each output is published to counts/<device> at QoS 1"""
    broker = Mosquitto()
    node = Node([iot_project(broker, qos=1)])
    pub = None
    try:
        node.start()
        got = []
        watcher = paho.Client(client_id="test-watch", clean_session=True)
        watcher.on_message = lambda c, u, m: got.append((m.topic, json.loads(m.payload)))
        watcher.connect("127.0.0.1", broker.port)
        watcher.subscribe("counts/#", qos=1)
        watcher.loop_start()
        broker.wait_for_client("flowstate-node-")
        pub = Publisher(broker, 1)
        pub.send(3, 0, 30)
        wait_for("the first outputs", lambda: len(got) >= 30)
        pub.close()
        watcher.loop_stop()
        broker.restart()
        watcher.reconnect()
        watcher.subscribe("counts/#", qos=1)
        watcher.loop_start()
        pub = Publisher(broker, 1)
        pub.send(3, 30, 60)
        check_exactly_once(node, pub.sent + [(f"dev{s % 3}", s) for s in range(30)], 3)
        wait_for("outputs after the restart", lambda: len(got) >= 60, timeout=30)
        last = {}
        for topic, body in got:
            last[topic] = max(last.get(topic, 0), body["n"])
        check(last == {"counts/dev0": 20, "counts/dev1": 20, "counts/dev2": 20}, f"counts published: {last}")
        watcher.loop_stop()
    finally:
        if pub:
            pub.close()
        node.stop()
        broker.stop()


def test_bad_mqtt_configurations_are_refused_at_deploy_naming_the_file_and_field():
    """a wildcard in mqtt.Publish's topic, a bad QoS, a broker URL without its scheme and a batchWindow above 100ms are refused at deploy with the file and field named"""
    broker = Mosquitto()
    project = iot_project(broker)
    node = Node([project])
    try:
        node.start()
        cases = [
            ("drivers/counts.yaml", f"kind: mqtt.Publish\nbroker: {broker.url}\ntopic: counts/#\n", "topic:"),
            ("drivers/telemetry.yaml", f"kind: mqtt.Subscribe\nbroker: {broker.url}\ntopics: [a/b]\nqos: 3\n", "qos:"),
            ("drivers/telemetry.yaml", "kind: mqtt.Subscribe\nbroker: 127.0.0.1:1883\ntopics: [a/b]\n", "broker:"),
            ("drivers/telemetry.yaml", f"kind: mqtt.Subscribe\nbroker: {broker.url}\ntopics: [a/#/b]\n", "topics:"),
            ("drivers/telemetry.yaml", f"kind: mqtt.Subscribe\nbroker: {broker.url}\ntopics: [a/b]\nbatchWindow: 1s\n",
             "batchWindow:"),
        ]
        original = {f: open(f"{project}/{f}").read() for f, _, _ in cases}
        for file, text, field in cases:
            write_files(project, {file: text})
            p = cli("deploy", "-m", "bad", "--project", project, data=node.data)
            out = p.stdout + p.stderr
            check(p.returncode != 0 and file in out and field in out, f"{file} {field} refused: {out}")
            write_files(project, {file: original[file]})
    finally:
        node.stop()
        broker.stop()


if __name__ == "__main__":
    run([test_every_qos_2_reading_is_accepted_exactly_once_through_kill_9_of_the_node,
         test_every_qos_1_reading_with_an_id_is_accepted_exactly_once_through_kill_9_of_the_node,
         test_a_stopping_node_acknowledges_what_it_took_so_even_qos_1_without_an_id_runs_once,
         test_a_reading_the_node_is_taking_when_sigterm_comes_is_acknowledged_before_it_disconnects,
         test_a_crash_after_the_acceptance_commit_and_before_the_ack_does_not_accept_the_redelivery_again,
         test_a_broker_that_lost_the_session_gets_its_qos_2_packet_ids_forgotten,
         test_a_message_larger_than_1_mib_becomes_an_error_record_and_the_ones_after_it_arrive,
         test_a_broker_restart_loses_nothing_and_outputs_reach_mqtt_subscribers,
         test_bad_mqtt_configurations_are_refused_at_deploy_naming_the_file_and_field])
