"""The store under faults, with the fault-injecting file system of test
builds (FLOWSTATE_FAULT_* name files whose existence arms a fault) and real
damage to the write-ahead log: a read error fails the message and never
reads as "no state"; a full disk fails closed and resumes; a failed fsync
stops the node; damage in the middle of the log stops the start until
`flowstate recover` has said what it drops."""
import glob
import os
import subprocess

from harness import BIN, Node, TestFailure, check, cli, counter_project, make_project, run, tmpdir
import time


def wait_ready(node, want=200, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if node.admin_get("/readyz")[0] == want:
            return
        time.sleep(0.1)
    raise TestFailure(f"/readyz did not answer {want} within {timeout}s:\n{node.log()}")


def count(node, key):
    state = node.state("counter", "counter", key)
    return state["count"] if state else 0


def test_read_error():
    """a state that cannot be read fails the message with a StorageError and is never overwritten"""
    fault = os.path.join(tmpdir(), "reads-fail")
    project = counter_project(tmpdir() + "/counter")
    node = Node([project], env={"FLOWSTATE_FAULT_READ_FAILS": fault}).start()
    for i in range(5):
        check(node.request("POST", "/count/a")[0] == 200, "increment refused")
    node.kill9()
    node.start()  # recovery writes the log into table files, which the fault reaches
    open(fault, "w").close()
    status, body = node.request("POST", "/count/a")
    os.remove(fault)
    check(status == 500 and body.get("title") == "StorageError",
          f"expected a 500 StorageError while reads fail, got {status} {body}")
    status, body = node.request("POST", "/count/a")
    check(status == 200 and body == {"count": 6}, f"the stored count 5 was lost: got {status} {body}")
    errors = node.errors()
    check(any(e.get("type") == "StorageError" for e in errors), f"no StorageError record: {errors}")
    node.stop()


def test_disk_full():
    """a full disk: new input gets 503, nothing acknowledged is lost, nothing unwritten is kept, and the node resumes"""
    fault = os.path.join(tmpdir(), "disk-full")
    project = counter_project(tmpdir() + "/counter")
    node = Node([project], env={"FLOWSTATE_FAULT_DISK_FULL": fault}).start()
    for i in range(3):
        check(node.request("POST", "/count/a")[0] == 200, "increment refused")
    open(fault, "w").close()
    status, body = node.request("POST", "/count/a")
    check(status == 503, f"a write on a full disk was answered {status} {body}")
    status, body = node.request("POST", "/count/a")
    check(status == 503, f"new input on a full disk was answered {status} {body}")
    check(node.admin_get("/readyz")[0] == 503, "the node says it is ready on a full disk")
    os.remove(fault)
    wait_ready(node)
    status, body = node.request("POST", "/count/a")
    # 3 acknowledged; the refused ones applied nothing, not even in the cache.
    check(status == 200 and body == {"count": 4}, f"after space returned: {status} {body}")
    check(count(node, "a") == 4, "the stored count is not 4")
    node.stop()


def test_a_request_answered_202_whose_commit_fails_on_a_full_disk_gets_503_and_nothing_of_it_runs():
    """a flow without http.Response answers 202 once the request is committed: when that commit fails on a full disk the client gets 503 (never a dropped answer), and only the acknowledged requests run"""
    fault = os.path.join(tmpdir(), "disk-full")
    project = counter_project(tmpdir() + "/accepted", extra={
        "flows/counter.yaml": "blocks:\n  - http.Request: count\n  - js.Function: counter\n"})
    node = Node([project], env={"FLOWSTATE_FAULT_DISK_FULL": fault}).start()
    for i in range(3):
        status, body = node.request("POST", "/count/a")
        check(status == 202, f"a request was answered {status} {body}")
    node.wait_idle()
    open(fault, "w").close()
    status, body = node.request("POST", "/count/a")
    check(status == 503 and body.get("title") == "unavailable" and "nothing of this request" in body.get("detail", ""),
          f"a request whose commit failed on a full disk was answered {status} {body}")
    os.remove(fault)
    wait_ready(node)
    status, body = node.request("POST", "/count/a")
    check(status == 202, f"after space returned: {status} {body}")
    node.wait_idle()
    check(count(node, "a") == 4, f"the 4 acknowledged requests ran once each, the refused one not: {count(node, 'a')}")
    node.stop()


def test_failed_fsync():
    """a failed fsync is not retried: the node stops, and a restart recovers every acknowledged increment"""
    fault = os.path.join(tmpdir(), "sync-fails")
    project = counter_project(tmpdir() + "/counter", durability="sync")
    node = Node([project], env={"FLOWSTATE_FAULT_SYNC_FAILS": fault}).start()
    for i in range(3):
        check(node.request("POST", "/count/a")[0] == 200, "increment refused")
    open(fault, "w").close()
    try:
        status, body = node.request("POST", "/count/a")
        raise TestFailure(f"the node answered {status} {body} after its fsync failed")
    except (ConnectionError, OSError):
        pass
    rc = node.wait_killed()
    check(rc != 0, f"the node exited {rc}")
    check("WAL sync failed" in node.log(), "the log does not say why the node stopped:\n" + node.log())
    os.remove(fault)
    node.start()
    node.wait_idle()
    check(count(node, "a") in (3, 4), f"acknowledged increments lost: count {count(node, 'a')}")
    node.stop()


def test_damaged_log():
    """64 bytes overwritten in the middle of the log: the start refuses naming file and offset, recover reports, the node starts"""
    project = counter_project(tmpdir() + "/counter", durability="sync")
    node = Node([project]).start()
    conn = node.connection()
    for i in range(300):
        status, _ = node.request("POST", "/count/a", conn=conn)
        check(status == 200, "increment refused")
    conn.close()
    node.kill9()
    logs = sorted(glob.glob(os.path.join(node.data, "store", "*.log")))
    check(logs, "no write-ahead log file")
    log = max(logs, key=os.path.getsize)
    size = os.path.getsize(log)
    check(size > 4 * 32768, f"the log is only {size} bytes")
    with open(log, "r+b") as f:
        f.seek(size // 2)
        f.write(b"\xab" * 64)
    try:
        node.start()
        raise TestFailure("the node started on a damaged log")
    except TestFailure as e:
        message = str(e)
        check(log in message and "damaged at byte offset" in message and "flowstate recover" in message,
              "the refusal does not name the file, the offset and the way out:\n" + message)
    dry = cli("recover", "--dry-run", data=node.data, check_rc=0)
    check("dry run" in dry.stdout and "sequence numbers" in dry.stdout, dry.stdout)
    done = cli("recover", data=node.data, check_rc=0)
    check("drops" in done.stdout and "recovered" in done.stdout, done.stdout)
    node.start()
    node.wait_idle()
    n = count(node, "a")
    check(0 < n < 300, f"after recovery the count is {n}")
    status, body = node.request("POST", "/count/a")
    check(status == 200 and body == {"count": n + 1}, f"{status} {body}")
    again = cli("recover", "--dry-run", data=node.data, check_rc=0)
    check("nothing to recover" in again.stdout, again.stdout)
    node.stop()


if __name__ == "__main__":
    run([test_read_error, test_disk_full,
         test_a_request_answered_202_whose_commit_fails_on_a_full_disk_gets_503_and_nothing_of_it_runs,
         test_failed_fsync, test_damaged_log])
