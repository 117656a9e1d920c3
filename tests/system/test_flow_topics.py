"""flow.Publish and flow.Subscribe (docs/drivers.md): what reaches a
flow.Publish goes to every flow subscribed to its topic, exactly once
through kill -9; a publish without subscribers and a cycle of flows are
refused at deploy, naming the files."""
import threading
import time

from harness import Node, check, cli, make_project, run, tmpdir, wait_for, write_files

CHECK_JS = """export default function (input) {
  const value = input.body.value;
  return { outputs: value > 10 ? [{ value, at: input.params.key }] : [] };
}
"""
COUNT_JS = """export default function (input, state = { values: [] }) {
  return { state: { values: [...state.values, input.value] } };
}
"""


def topics_project():
    return make_project(tmpdir() + "/topics", {
        "flowstate.yaml": "name: topics\ndurability: sync\n",
        "flows/readings.yaml": "blocks:\n  - http.Request: in\n  - js.Function: check\n  - flow.Publish: alerts\n",
        "flows/notify.yaml": "blocks:\n  - flow.Subscribe: on-alert\n  - js.Function: notify\n",
        "flows/audit.yaml": "blocks:\n  - flow.Subscribe: on-alert\n  - js.Function: audit\n",
        "drivers/in.yaml": "kind: http.Request\nmethod: POST\npath: /readings/{key}\n",
        "drivers/alerts.yaml": "kind: flow.Publish\ntopic: alerts\n",
        "drivers/on-alert.yaml": "kind: flow.Subscribe\ntopic: alerts\n",
        "functions/check.js": CHECK_JS,
        "functions/notify.js": COUNT_JS,
        "functions/audit.js": COUNT_JS,
    })


def post(node, key, value):
    conn = node.connection()
    conn.request("POST", f"/readings/{key}", body='{"value": %d}' % value, headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    return r.status


def counted(node, flow, block, key):
    import json
    p = cli("state", "get", flow, block, key, "--json", data=node.data)
    return json.loads(p.stdout) if p.returncode == 0 and p.stdout.strip() not in ("", "null") else None


def test_a_published_output_reaches_every_subscribed_flow_exactly_once_through_kill_9():
    """readings above 10 are published to topic alerts; the notify and audit flows each see every acknowledged one, none twice, with kill -9 of the node in the middle of the stream"""
    project = topics_project()
    node = Node([project])
    try:
        node.start()
        acked = {}  # key -> values acknowledged (202)
        lock = threading.Lock()

        def send(lo, hi):
            for i in range(lo, hi):
                key = f"dev{i % 4}"
                try:
                    st = post(node, key, 11 + i)
                except OSError:
                    continue  # the node was killed: not acknowledged
                if st == 202:
                    with lock:
                        acked.setdefault(key, []).append(11 + i)
        send(0, 40)
        stream = threading.Thread(target=lambda: send(40, 400))
        stream.start()
        time.sleep(0.5)
        node.kill9()
        stream.join()
        node.start()
        node.wait_idle()
        check(sum(len(v) for v in acked.values()) > 40, f"some readings acknowledged while the stream ran: {acked}")
        for key, values in acked.items():
            for flow in ("notify", "audit"):
                s = wait_for(f"{flow} of {key}", lambda: counted(node, flow, flow, key))
                seen = s["values"]
                check(len(seen) == len(set(seen)), f"{flow}/{key}: no alert twice: {sorted(seen)}")
                check(set(values) <= set(seen), f"{flow}/{key}: every acknowledged alert: missing "
                                                f"{sorted(set(values) - set(seen))}")
        st = post(node, "quiet", 3)
        check(st == 202, f"a reading below the threshold is accepted: {st}")
        node.wait_idle()
        check(counted(node, "notify", "notify", "quiet") is None, "and publishes nothing")
    finally:
        node.stop()


def test_a_publish_without_subscribers_and_a_cycle_of_flows_are_refused_at_deploy():
    """a flow.Publish whose topic no flow subscribes to, and two flows publishing to each other, are refused by deploy naming the files; the running revision stays"""
    project = topics_project()
    node = Node([project])
    try:
        node.start()
        write_files(project, {"drivers/alerts.yaml": "kind: flow.Publish\ntopic: nobody\n"})
        p = cli("deploy", "-m", "no subscriber", "--project", project, data=node.data)
        out = p.stdout + p.stderr
        check(p.returncode != 0 and "flows/readings.yaml" in out and "no flow subscribes to topic \"nobody\"" in out,
              f"refused, naming the flow and topic: {out}")
        write_files(project, {
            "drivers/alerts.yaml": "kind: flow.Publish\ntopic: alerts\n",
            "flows/notify.yaml": "blocks:\n  - flow.Subscribe: on-alert\n  - js.Function: notify\n"
                                 "  - flow.Publish: back\n",
            "flows/echo.yaml": "blocks:\n  - flow.Subscribe: on-back\n  - js.Function: audit\n  - flow.Publish: alerts\n",
            "drivers/back.yaml": "kind: flow.Publish\ntopic: back\n",
            "drivers/on-back.yaml": "kind: flow.Subscribe\ntopic: back\n",
        })
        p = cli("deploy", "-m", "cycle", "--project", project, data=node.data)
        out = p.stdout + p.stderr
        check(p.returncode != 0 and "in a cycle" in out and "echo" in out and "notify" in out,
              f"a cycle is refused naming its flows: {out}")
        check(post(node, "d", 50) == 202, "the running revision still serves")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_a_published_output_reaches_every_subscribed_flow_exactly_once_through_kill_9,
         test_a_publish_without_subscribers_and_a_cycle_of_flows_are_refused_at_deploy])
