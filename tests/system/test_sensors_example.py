"""The sensors example (Python, a helper module, a typed input) as a user
gets it: `flowstate init --template sensors`, `flowstate test`, a node."""
import os

from harness import Node, check, cli, run, tmpdir


def test_the_sensors_template_tests_serves_and_traces():
    """init --template sensors passes its own tests, averages per device, alerts, refuses a bad reading"""
    root = os.path.join(tmpdir(), "sensors")
    cli("init", "--template", "sensors", root, check_rc=0)
    p = cli("test", "--project", root)
    check(p.returncode == 0 and "2 passed, 0 failed" in p.stdout, f"flowstate test: {p.stdout}{p.stderr}")
    node = Node([root]).start()
    try:
        for celsius in (20, 25):
            status, body = node.request("POST", "/devices/d1/readings", {"celsius": celsius})
            check(status == 200 and body["alert"] is False, f"{status} {body}")
        status, body = node.request("POST", "/devices/d1/readings", {"celsius": 80})
        check(status == 200 and body == {"device": "d1", "count": 3, "average": 41.67, "min": 20, "max": 80,
                                         "alert": True}, f"the third reading: {body}")
        status, body = node.request("POST", "/devices/d2/readings", {"celsius": 10})
        check(body["count"] == 1 and body["average"] == 10, f"another device has its own window: {body}")
        status, body = node.request("POST", "/devices/d1/readings", {"fahrenheit": 80})
        check(status == 422 and "celsius" in body["detail"], f"a reading without celsius: {status} {body}")
        check(node.state("readings", "readings", "d1") == {"window": [20, 25, 80], "alerts": 1}, "the state")
        logs = cli("logs", "--key", "d1", "--data", node.data, check_rc=0).stdout
        check("log    device d1: average 41.67 above 30.0" in logs, f"the print line is in the trace:\n{logs}")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_the_sensors_template_tests_serves_and_traces])
