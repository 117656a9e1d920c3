"""mqtt.Subscribe on a cluster (docs/drivers.md "mqtt.Subscribe", "In a
cluster"), with one real etcd, one real mosquitto and three real
`flowstate serve --cluster` nodes on loopback: every node subscribes as one
shared subscription, so the broker hands each reading to one node; a
reading whose device's key group another node runs is accepted into the
receiving node's outbox and queued by the owner once. kill -9 of a node in
the middle of the stream loses and doubles nothing."""
import json
import os
import subprocess
import threading
import time

from harness import BIN, Etcd, Mosquitto, TestFailure, check, run, tmpdir, wait_for
from test_cluster import cluster_node, configure, owner_of, placed, start_all
from test_cluster_failover import replicated
from test_mqtt import Publisher, check_exactly_once, iot_project, seqs_of

DEVICES = 20


def metric(node, name):
    status, text = node.admin_get("/metrics")
    check(status == 200, f"GET /metrics: {status}")
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))


def stop_all(pub, nodes, broker):
    if pub:
        pub.close()
    for n in nodes:
        n.stop()
    broker.stop()


def cluster_run(qos, extra_sub=""):
    etcd = Etcd()
    broker = Mosquitto()
    project = iot_project(broker, qos=qos, extra_sub=extra_sub, out=False)
    nodes = start_all([cluster_node(etcd, n, project) for n in ("a", "b", "c")])
    pub = None
    try:
        wait_for("every range with 3 copies in sync", lambda: replicated(etcd, 3, 3), timeout=60)
        for n in ("a", "b", "c"):
            broker.wait_for_client(f"flowstate-{n}-")
        pub = Publisher(broker, qos)
        pub.send(DEVICES, 0, 100)
        stream = threading.Thread(target=lambda: pub.send(DEVICES, 100, 700, pause=0.002))
        stream.start()
        time.sleep(0.5)
        nodes[1].kill9()
        time.sleep(0.5)
        nodes[1].start()
        stream.join()
        check(len(pub.sent) == 700, f"all readings published: {len(pub.sent)}")
        try:
            check_exactly_once(nodes[0], pub.sent, DEVICES)
        except (TestFailure, AssertionError):
            report_loss(nodes, broker, pub.sent)
            raise
        crossed = sum(metric(n, "flowstate_inbox_accepted_total") for n in nodes)
        check(crossed > 0, f"some readings reached a node that does not run their device and crossed: {crossed}")
        print(f"    {int(crossed)} readings accepted by one node and queued by another")
    finally:
        stop_all(pub, nodes, broker)


def report_loss(nodes, broker, sent):
    """What a failure needs to be explained (it is rare: tests/README.md):
    every device's missing readings, each node's MQTT and cluster log lines
    and metrics, and the broker's log of connections."""
    expected = {}
    for device, seq in sent:
        expected.setdefault(device, []).append(seq)
    for d in sorted(expected):
        got = seqs_of(nodes[0], d)
        missing = sorted(set(expected[d]) - set(got))
        if missing:
            print(f"    {d}: {len(missing)} missing: {missing}")
    for name, n in zip("abc", nodes):
        print(f"    --- node {name}: log {n.log_path}")
        try:
            text = open(n.log_path).read()
        except FileNotFoundError:
            text = ""
        lines = [line for line in text.splitlines() if "mqtt" in line or "cluster" in line or "range" in line]
        for line in lines[-150:]:
            print("      " + line[:300])
        try:
            _, metrics = n.admin_get("/metrics")
            for line in str(metrics).splitlines():
                if line.startswith(("flowstate_mqtt", "flowstate_inbox", "flowstate_outbox", "flowstate_in_flight")):
                    print("      " + line)
        except Exception as e:  # noqa: BLE001 - a node that is down says so
            print(f"      /metrics: {type(e).__name__}: {e}")
    print("    --- mosquitto log (tail)")
    try:
        for line in open(os.path.join(broker.dir, "mosquitto.log")).read().splitlines()[-80:]:
            print("      " + line)
    except FileNotFoundError:
        pass


def crash_before_ack_run(qos, extra_sub, copies, recognised):
    """Node b dies at the fault point after accepting a reading of a device
    it does not run; restarted, it gets the reading again; `recognised(etcd,
    by_name, device)` is true once the copy was recognised."""
    etcd = Etcd()
    configure(etcd, f"replication={copies}")
    broker = Mosquitto()
    project = iot_project(broker, qos=qos, extra_sub=extra_sub, out=False)
    nodes = start_all([cluster_node(etcd, n, project, env={"FLOWSTATE_FAULT": "mqtt.before_ack"} if n == "b" else None)
                       for n in ("a", "b", "c")])
    pub = None
    try:
        wait_for("a placement over 3 nodes", lambda: placed(etcd, 3, copies))
        by_name = dict(zip(("a", "b", "c"), nodes))
        for n in ("a", "b", "c"):
            broker.wait_for_client(f"flowstate-{n}-")
        # Readings of one device that b does not run: whichever of them b
        # receives first, it accepts into its outbox, then dies.
        device = next(f"dev{i}" for i in range(100) if owner_of(etcd, f"dev{i}") != "b")
        pub = Publisher(broker, 1)
        seq = 0
        while nodes[1].proc.poll() is None:
            check(seq < 60, "b received one of 60 readings and died at the fault point")
            payload = json.dumps({"device": device, "seq": seq})
            info = pub.client.publish(f"devices/{device}/telemetry", payload, qos=qos)
            info.wait_for_publish(timeout=30)
            pub.sent.append((device, seq))
            seq += 1
            time.sleep(0.1)
        del nodes[1].env["FLOWSTATE_FAULT"]
        nodes[1].start()
        expected = [s for d, s in pub.sent]

        def once():
            got = seqs_of(nodes[0], device)
            return got if sorted(got) == expected else None
        try:
            wait_for(f"{device}'s readings, each once", once, timeout=60)
        except AssertionError:
            got = seqs_of(nodes[0], device)
            check(False, f"{device}: expected {expected}, got {sorted(got)}")
        wait_for("the copy recognised", lambda: recognised(etcd, by_name, device), timeout=30)
        print(f"    b died after {seq} readings")
    finally:
        stop_all(pub, nodes, broker)


def test_a_node_that_dies_after_accepting_another_nodes_reading_and_before_its_ack_gets_it_again_and_the_owner_drops_it():
    """QoS 1 with `id:`, one copy; node b dies (a fault point) once the commit that put a reading into its outbox is durable and before its PUBACK leaves; the broker hands the reading to b again after its restart, b forwards it again, and the device's owner recognises its identity: it is in the state once"""
    # One copy: b comes back with the groups it ran (no failover moves them
    # meanwhile), so the redelivery reaches b and b forwards it again.
    crash_before_ack_run(1, "id: [/device, /seq]\n", 1, lambda etcd, by_name, device: metric(
        by_name[owner_of(etcd, device)], "flowstate_inbox_repeats_total") >= 1)


def test_a_qos_2_reading_whose_receiver_died_before_pubrec_is_recognised_by_the_group_that_took_over_its_acceptance():
    """QoS 2, three copies; node b dies after the acceptance commit (replicated to the followers) and before its PUBREC; its groups fail over, and the broker hands the reading to b again: b asks the node that now runs the key group the acceptance went into, which holds the packet id's record, so the reading is acknowledged, not accepted again"""
    crash_before_ack_run(2, "", 3, lambda etcd, by_name, device: "accepted again" not in open(
        by_name["b"].log_path).read() and "session resumed" in open(by_name["b"].log_path).read())


def test_every_qos_2_reading_reaches_its_devices_owner_exactly_once_through_kill_9_of_a_receiving_node():
    """3 nodes sharing one subscription, 700 readings at QoS 2 over 20 devices, node b killed -9 in the middle of the stream and restarted: every reading the broker took is in its device's state once, whichever node received it"""
    cluster_run(2)


def test_every_qos_1_reading_with_an_id_is_accepted_once_even_when_its_copies_reach_different_nodes():
    """The same at QoS 1 with `id:` (device and seq): the broker's redeliveries after the kill may reach another node, and the owner's identity record drops the copy"""
    cluster_run(1, extra_sub="id: [/device, /seq]\n")


def test_a_drained_node_gives_up_its_share_of_the_subscription_so_every_reading_sent_during_and_after_the_drain_arrives():
    """3 nodes sharing one subscription at QoS 1; readings stream while `cluster drain a` runs and after it, with a left running and owning no key group: a unsubscribes when the drain starts, so the broker hands every later reading to b or c, and each reading is in its device's state once"""
    etcd = Etcd()
    broker = Mosquitto()
    project = iot_project(broker, qos=1, out=False)
    nodes = start_all([cluster_node(etcd, n, project) for n in ("a", "b", "c")])
    pub = None
    try:
        wait_for("a placement over 3 nodes", lambda: placed(etcd, 3))
        for n in ("a", "b", "c"):
            broker.wait_for_client(f"flowstate-{n}-")
        pub = Publisher(broker, 1)
        pub.send(DEVICES, 0, 100)
        stream = threading.Thread(target=lambda: pub.send(DEVICES, 100, 400, pause=0.005))
        stream.start()
        p = subprocess.run([BIN, "cluster", "drain", "a", "--cluster", etcd.endpoint, "--cluster-name", "t"],
                           capture_output=True, text=True, timeout=300)
        check(p.returncode == 0 and "owns no key groups" in p.stdout, f"drain: {p.stdout} {p.stderr}")
        stream.join()
        pub.send(DEVICES, 400, 700)
        check(len(pub.sent) == 700, f"all readings published: {len(pub.sent)}")
        try:
            check_exactly_once(nodes[1], pub.sent, DEVICES)
        except (TestFailure, AssertionError):
            report_loss(nodes, broker, pub.sent)
            raise
        check("unsubscribing" in open(nodes[0].log_path).read(), "a logged that it gave up its share")
    finally:
        stop_all(pub, nodes, broker)


if __name__ == "__main__":
    run([test_a_node_that_dies_after_accepting_another_nodes_reading_and_before_its_ack_gets_it_again_and_the_owner_drops_it,
         test_a_qos_2_reading_whose_receiver_died_before_pubrec_is_recognised_by_the_group_that_took_over_its_acceptance,
         test_every_qos_2_reading_reaches_its_devices_owner_exactly_once_through_kill_9_of_a_receiving_node,
         test_every_qos_1_reading_with_an_id_is_accepted_once_even_when_its_copies_reach_different_nodes,
         test_a_drained_node_gives_up_its_share_of_the_subscription_so_every_reading_sent_during_and_after_the_drain_arrives])
