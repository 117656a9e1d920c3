"""Disk full on a real size-limited file system (not a CTest: it needs root
to mount). Mounts a 20 MiB tmpfs, runs a node with its data there, fills the
file system, checks that the node fails closed (503, /readyz 503), frees the
space and checks that it resumes with every acknowledged increment and
nothing else. Run: sudo python3 tests/system/disk_full_tmpfs.py"""
import os
import subprocess
import time

from harness import Node, TestFailure, check, counter_project, tmpdir


def main():
    mount = tmpdir("flowstate-tmpfs-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", mount], check=True)
    node = None
    try:
        data = os.path.join(mount, "data")
        os.makedirs(data)
        node = Node([counter_project(tmpdir() + "/counter")], data=data).start()
        acked = 0
        for _ in range(20):
            check(node.request("POST", "/count/a")[0] == 200, "increment refused")
            acked += 1
        filler = os.path.join(mount, "filler")
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        refused = None
        for _ in range(2000):
            status, body = node.request("POST", "/count/a")
            if status == 200:
                acked += 1
                continue
            refused = (status, body)
            break
        check(refused and refused[0] == 503, f"the full disk was answered {refused}")
        check(node.request("POST", "/count/a")[0] == 503, "new input accepted on a full disk")
        check(node.admin_get("/readyz")[0] == 503, "ready on a full disk")
        os.remove(filler)
        deadline = time.time() + 60
        while node.admin_get("/readyz")[0] != 200:
            if time.time() > deadline:
                raise TestFailure("the node did not resume:\n" + node.log())
            time.sleep(0.1)
        status, body = node.request("POST", "/count/a")
        check(status == 200 and body == {"count": acked + 1}, f"{status} {body}, {acked} acknowledged before")
        print(f"PASS {acked} acknowledged before the disk filled, {refused[0]} while full, resumed with "
              f"count {body['count']}")
    finally:
        if node:
            node.stop()
        subprocess.run(["umount", "--lazy", mount], check=False)  # workers may still be exiting


if __name__ == "__main__":
    main()
