"""What a hostile function must never reach on the host, shared by both
hostile runners: listeners of every family, a data directory with a secret
key, a path it must not create. `violations()` lists what was reached."""
import json
import os
import select
import socket

SECRET = "flowstate-hostile-secret-7f3a9c"
SECRET_ENV = "FLOWSTATE_HOSTILE_SECRET"


class HostTraps:
    def __init__(self, work, node_pid, data_dir=None, key_file=None):
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(16)
        self.tcp6 = None
        try:
            self.tcp6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            self.tcp6.bind(("::1", 0))
            self.tcp6.listen(16)
        except OSError:
            self.tcp6 = None
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.unix_path = os.path.join(work, "listener.sock")
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.unix_path)
        self.unix.listen(16)
        self.abstract_name = "flowstate-hostile-%d" % os.getpid()
        self.abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.abstract.bind("\0" + self.abstract_name)
        self.abstract.listen(16)
        # Without a node's own data directory: one with a key file in it.
        self.own_data_dir = data_dir is None
        if self.own_data_dir:
            data_dir = os.path.join(work, "data")
            os.makedirs(data_dir)
            key_file = os.path.join(data_dir, "project.key")
            with open(key_file, "w") as f:
                f.write(SECRET)
        self.data_dir, self.key_file = data_dir, key_file
        self.target = os.path.join(work, "created-by-a-function")
        self.node_pid = node_pid

    def host(self):
        """The input every probe gets: where the things it must not reach are."""
        return {
            "port": self.tcp.getsockname()[1],
            "port6": self.tcp6.getsockname()[1] if self.tcp6 else 0,
            "udp_port": self.udp.getsockname()[1],
            "unix_path": self.unix_path,
            "abstract": self.abstract_name,
            "data_dir": self.data_dir,
            "key_file": self.key_file,
            "target": self.target,
            "node_pid": self.node_pid,
            "secret_env": SECRET_ENV,
        }

    def violations(self):
        found = []
        for label, sock in (("tcp", self.tcp), ("tcp6", self.tcp6), ("unix", self.unix),
                            ("abstract unix", self.abstract)):
            if sock is None:
                continue
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                found.append(f"host: a connection reached the {label} listener")
        readable, _, _ = select.select([self.udp], [], [], 0)
        if readable:
            found.append("host: a datagram reached the UDP listener")
        if os.path.exists(self.target):
            found.append(f"host: {self.target} was created")
        if self.own_data_dir and sorted(os.listdir(self.data_dir)) != ["project.key"]:
            found.append(f"host: the data directory changed: {os.listdir(self.data_dir)}")
        return found


LEVELS = ("namespaces", "landlock")


def expected(probe, level, through_node=False):
    """The outcome a probe must have at a sandbox level, through a node's
    HTTP routes or the worker client."""
    if through_node and "through_node" in probe:
        return probe["through_node"]
    if level == "landlock" and "landlock" in probe:
        return probe["landlock"]
    return probe["expect"]


def level_in_force(log, level):
    """Empty when the node's (or runner's) log says the sandbox runs at
    `level`: never a test that passes on a node that runs functions unisolated
    or at another level than the one under test."""
    line = f"flowstate: sandbox {level}:"
    if line in log:
        return ""
    found = [l for l in log.splitlines() if "sandbox" in l][:3]
    return f"expected the log to say {line!r}, found {found}"


def check(probe, r):
    """Empty when the result is exactly what the probe expects. `r`: status
    ("ok" or the error type), outputs, error (message), logs."""
    expect = probe["expect"]
    status = expect[0]
    if isinstance(status, tuple):
        # Any of these outcomes contains the probe (e.g. an allocation loop
        # stopped by the heap limit, or by the CPU limit first when the
        # machine is loaded and the collector takes longer).
        if r["status"] not in status:
            return f"expected status {' or '.join(status)}, got {r['status']}: {r['error'][:300]}"
        return ""
    if r["status"] != status:
        return f"expected status {status}, got {r['status']}: {r['error'][:300]}"
    if status == "ok":
        if len(expect) > 1:
            want = expect[1]
            got = r["outputs"][0] if r["outputs"] else None
            if callable(want):
                verdict = want(got, r)
                if verdict is not True:
                    return f"output check failed: {verdict}"
            elif got != want:
                return f"expected output {json.dumps(want)}, got {json.dumps(got)}"
    else:
        for fragment in expect[1:]:
            if fragment not in r["error"]:
                return f"expected the error to contain {fragment!r}"
    return ""


def summary(r):
    if r["status"] == "ok":
        return json.dumps(r["outputs"])[:120]
    return r["error"][:120]
