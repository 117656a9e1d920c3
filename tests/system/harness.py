"""Helpers for system tests: real `flowstate serve` processes on loopback with
free ports and temporary data directories, real git project repositories."""
import atexit
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("FLOWSTATE_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "bin", "flowstate")

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@localhost", "-c", "init.defaultBranch=main"]


class TestFailure(AssertionError):
    pass


def check(condition, message):
    if not condition:
        raise TestFailure(message)


_TEMP_DIRS = []


_NODES = []


def _remove_temp_dirs():
    for node in _NODES:  # a test that failed before stopping its node
        node.stop()
    if os.environ.get("FLOWSTATE_KEEP_TMP"):
        print("kept: " + " ".join(_TEMP_DIRS))
        return
    for d in _TEMP_DIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_remove_temp_dirs)


def tmpdir(prefix="flowstate-test-", dir=None):
    """A fresh directory, removed when the test process exits (kept with
    FLOWSTATE_KEEP_TMP=1, to look at a failure)."""
    d = tempfile.mkdtemp(prefix=prefix, dir=dir)
    _TEMP_DIRS.append(d)
    return d


def write_files(root, files):
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def make_project(root, files, message="initial"):
    """A git repository holding `files` ({relative path: text}), committed."""
    os.makedirs(root, exist_ok=True)
    write_files(root, files)
    subprocess.run(GIT + ["init", "-q", root], check=True)
    subprocess.run(GIT + ["-C", root, "add", "-A"], check=True)
    subprocess.run(GIT + ["-C", root, "commit", "-q", "-m", message], check=True)
    return root


def git_head(root):
    return subprocess.run(GIT + ["-C", root, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def cli(*args, data=None, check_rc=None, env=None, cwd=None):
    cmd = [BIN] + list(args)
    if data is not None:
        cmd += ["--data", data]
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120)
    if check_rc is not None and p.returncode != check_rc:
        raise TestFailure(f"{' '.join(cmd)} exited {p.returncode}, expected {check_rc}\n"
                          f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


COUNTER_JS = """export default function (input, state = { count: 0 }, ctx) {
  const count = state.count + (input.body && input.body.by || 1);
  return { output: { status: 200, body: { count } }, state: { count } };
}
"""


def counter_project(root, durability="sync", function=COUNTER_JS, extra=None):
    files = {
        "flowstate.yaml": f"name: {os.path.basename(root)}\ndurability: {durability}\n",
        "flows/counter.yaml": "blocks:\n  - http.Request: count\n  - js.Function: counter\n  - http.Response: reply\n",
        "drivers/count.yaml": "kind: http.Request\nmethod: POST\npath: /count/{key}\n",
        "drivers/reply.yaml": "kind: http.Response\n",
        "functions/counter.js": function,
    }
    files.update(extra or {})
    return make_project(root, files)


def thread_report(pid):
    """Each thread of a process (and of its children): its name, the kernel
    function it sleeps in and its system call: where a stuck node waits."""
    out = []
    pids = [pid]
    try:
        for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
            pids.append(int(child))
    except OSError:
        pass
    for p in pids:
        try:
            tasks = sorted(os.listdir(f"/proc/{p}/task"), key=int)
        except OSError:
            continue
        for t in tasks:
            base = f"/proc/{p}/task/{t}"
            def read(name):
                try:
                    return open(f"{base}/{name}").read().strip()
                except OSError:
                    return "?"
            out.append(f"  {p}/{t} {read('comm')}: wchan {read('wchan')}, syscall {read('syscall').split(' ')[0]}")
    return "\n".join(out)


# The nodes started by the running test: their logs are printed when it fails.
_started_nodes = []


def _nodes_log_tails(lines=15, notable=30):
    """Each node the failed test started: its last cluster and error lines
    and the last lines of its log (to explain a failure seen once, e.g. in
    CI, where the files are gone)."""
    out = []
    for node in _started_nodes:
        try:
            with open(node.log_path, errors="replace") as f:
                text = f.read().splitlines()
        except OSError:
            continue
        marked = [line for line in text if "cluster" in line or "error" in line.lower()][-notable:]
        name = next((node.extra_args[i + 1] for i, a in enumerate(node.extra_args[:-1]) if a == "--node"), node.data)
        out.append(f"--- node {name} ({node.log_path}): its last cluster and error lines")
        out.extend("    " + line for line in marked)
        out.append(f"--- node {name}: its last {min(lines, len(text))} lines")
        out.extend("    " + line for line in text[-lines:])
    return "\n".join(out)


class Node:
    """One `flowstate serve` process."""

    def __init__(self, projects, data=None, env=None, extra_args=(), preexec_fn=None, wrapper=()):
        """`wrapper`: a command the node runs under (e.g. a launcher that
        denies system calls)."""
        self.projects = projects
        self.preexec_fn = preexec_fn  # run in the node's process before exec (e.g. rlimits)
        self.wrapper = list(wrapper)
        self.data = data or tmpdir("flowstate-data-")
        self.env = env or {}
        self.extra_args = list(extra_args)
        self.proc = None
        self.log_path = os.path.join(self.data, "node.log")

    def start(self, env=None, ready=True):
        """Waits until /readyz answers 200; with ready=False until it answers
        at all (a node that refuses to run functions stays 503)."""
        for f in ("listen.addr", "admin.addr"):
            try:
                os.remove(os.path.join(self.data, f))
            except FileNotFoundError:
                pass
        full_env = dict(os.environ)
        full_env.update(self.env)
        if env:
            full_env.update(env)
        if self not in _started_nodes:
            _started_nodes.append(self)
        log = open(self.log_path, "a")
        _NODES.append(self)
        self.proc = subprocess.Popen(
            self.wrapper + [BIN, "serve", "--data", self.data, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
            + self.extra_args + self.projects, stdout=log, stderr=subprocess.STDOUT, env=full_env,
            preexec_fn=self.preexec_fn)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise TestFailure(f"node exited with {self.proc.returncode} at start:\n{self.log()}")
            try:
                self.listen = open(os.path.join(self.data, "listen.addr")).read().strip()
                self.admin = open(os.path.join(self.data, "admin.addr")).read().strip()
                self.token = open(os.path.join(self.data, "admin.token")).read().strip()
                if self.admin_get("/readyz")[0] == 200 or not ready:
                    return self
            except (FileNotFoundError, ConnectionError, OSError):
                pass
            time.sleep(0.05)
        threads = thread_report(self.proc.pid)
        self.stop()
        raise TestFailure("node did not become ready:\n" + self.log() + "\nwhere its threads wait:\n" + threads)

    def log(self):
        try:
            return open(self.log_path).read()[-4000:]
        except FileNotFoundError:
            return ""

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def wait_killed(self, timeout=60):
        """For fault injection: waits until the node killed itself."""
        self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def terminate(self, timeout=60):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def connection(self, timeout=30):
        host, port = self.listen.rsplit(":", 1)
        return http.client.HTTPConnection(host, int(port), timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None):
        own = conn is None
        conn = conn or self.connection()
        data = json.dumps(body) if body is not None and not isinstance(body, (str, bytes)) else body
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        text = r.read().decode()
        if own:
            conn.close()
        try:
            return r.status, json.loads(text) if text else None
        except ValueError:
            return r.status, text

    def admin_connection(self, timeout=30):
        """To the admin API; over TLS (trusting DATA/admin.crt) when the node
        wrote its address as https://HOST:PORT."""
        address = self.admin
        if address.startswith("https://"):
            import ssl
            host, port = address[len("https://"):].rsplit(":", 1)
            context = ssl.create_default_context(cafile=os.path.join(self.data, "admin.crt"))
            context.check_hostname = False
            return http.client.HTTPSConnection(host, int(port), timeout=timeout, context=context)
        host, port = address.rsplit(":", 1)
        return http.client.HTTPConnection(host, int(port), timeout=timeout)

    def admin_get(self, path):
        return self.admin_request("GET", path)

    def admin_request(self, method, path, body=None):
        """(status, JSON body, or the text when it is not JSON) of an admin API call with the node's token."""
        headers = {"Authorization": f"Bearer {getattr(self, 'token', '')}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn = self.admin_connection()
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        r = conn.getresponse()
        text = r.read().decode()
        conn.close()
        try:
            return r.status, json.loads(text) if text else None
        except ValueError:
            return r.status, text

    def wait_idle(self, timeout=60):
        """Waits until no message is in flight (re-runs after a restart included)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            status, body = self.admin_get("/readyz")
            if status == 200 and body.get("in_flight") == 0:
                return
            time.sleep(0.05)
        raise TestFailure("messages still in flight after %ss" % timeout)

    def worker_pids(self, binary=b"flowstate-"):
        """Pids of the node's descendants whose command line holds `binary`."""
        children = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
            except (OSError, ValueError, IndexError):
                pass
        found, todo = [], [self.proc.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                todo.append(child)
                try:
                    with open(f"/proc/{child}/cmdline", "rb") as f:
                        if binary in f.read():
                            found.append(child)
                except OSError:
                    pass
        return found

    def state(self, flow, block, key, project=None):
        args = ["state", "get", flow, block, key, "--json"]
        if project:
            args += ["--project", project]
        p = cli(*args, data=self.data, check_rc=0)
        return json.loads(p.stdout)

    def errors(self, project=None):
        args = ["errors", "list", "--json"]
        if project:
            args += ["--project", project]
        return json.loads(cli(*args, data=self.data, check_rc=0).stdout)


def stream_through_kill9(node, send_one, before, total, kill_after=0.6):
    """send_one(i) for i in [0, total): the first `before` while the node is
    up, the rest in a thread while the node is killed -9 (after kill_after s)
    and started again; returns the i whose send_one returned 202 (a request
    cut by the kill is not acknowledged). Then waits until the node is idle."""
    import threading
    acked, lock = [], threading.Lock()

    def send(lo, hi):
        for i in range(lo, hi):
            try:
                status = send_one(i)
            except OSError:
                continue
            if status == 202:
                with lock:
                    acked.append(i)
    send(0, before)
    stream = threading.Thread(target=lambda: send(before, total))
    stream.start()
    time.sleep(kill_after)
    node.kill9()
    stream.join()
    node.start()
    node.wait_idle()
    return acked


def wait_for(what, pred, timeout=30):
    """pred()'s first true value, polled every 0.1 s; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def free_port():
    """A loopback port nobody listens on, below the kernel's ephemeral range
    (32768 and up here): a port the kernel handed out (bind to 0) can be
    taken as the source port of any outgoing connection before the process
    it is meant for binds it, which made a node fail to start now and then
    when tests ran in parallel."""
    import random
    import socket
    for _ in range(200):
        port = random.randint(20000, 32767)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    """A real etcd (Debian's etcd-server) on free loopback ports, with its own
    data directory; killed at exit."""

    def __init__(self):
        # On tmpfs when there is one: etcd's own fsyncs on a busy 2-core
        # machine would otherwise stall lease renewals (false failovers).
        self.dir = tmpdir("flowstate-etcd-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        client, peer = free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{client}"
        peer_url = f"http://127.0.0.1:{peer}"
        self.log = open(os.path.join(self.dir, "etcd.log"), "w")
        self.proc = subprocess.Popen(
            ["etcd", "--name", "test", "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", self.endpoint, "--advertise-client-urls", self.endpoint,
             "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
             "--initial-cluster", f"test={peer_url}", "--log-level", "error"],
            stdout=self.log, stderr=subprocess.STDOUT)
        _ETCDS.append(self)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                host, port = self.endpoint[len("http://"):].split(":")
                conn = http.client.HTTPConnection(host, int(port), timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise TestFailure("etcd exited at start: " + open(os.path.join(self.dir, "etcd.log")).read()[-2000:])
            time.sleep(0.05)
        raise TestFailure("etcd did not start within 30 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


_ETCDS = []
atexit.register(lambda: [e.stop() for e in _ETCDS])


class Influxd:
    """A real InfluxDB 1.x (Debian's influxdb) on free loopback ports, with its
    own data directories (WAL without fsync delay); killed at exit."""

    def __init__(self):
        self.dir = tmpdir("flowstate-influxd-")
        self.port, rpc = free_port(), free_port()
        self.conf = os.path.join(self.dir, "influxdb.conf")
        with open(self.conf, "w") as f:
            f.write(f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc}"\n'
                    f'[meta]\n  dir = "{self.dir}/meta"\n'
                    f'[data]\n  dir = "{self.dir}/data"\n  wal-dir = "{self.dir}/wal"\n  query-log-enabled = false\n'
                    f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
                    '[monitor]\n  store-enabled = false\n[logging]\n  level = "error"\n')
        self.proc = None
        self.start()
        _ETCDS.append(self)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        self.log = open(os.path.join(self.dir, "influxd.log"), "a")
        self.proc = subprocess.Popen(["influxd", "-config", self.conf], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/ping")
                if conn.getresponse().status == 204:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise TestFailure("influxd exited at start: " + open(os.path.join(self.dir, "influxd.log")).read()[-2000:])
            time.sleep(0.1)
        raise TestFailure("influxd did not start within 60 s")

    def query(self, q, db=None):
        import urllib.parse
        params = {"q": q}
        if db:
            params["db"] = db
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("POST", "/query?" + urllib.parse.urlencode(params))
        r = conn.getresponse()
        body = json.loads(r.read().decode())
        if r.status != 200 or "error" in body["results"][0]:
            raise TestFailure(f"InfluxDB query {q!r}: {r.status} {body}")
        return body["results"][0]

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Postgres:
    """A real PostgreSQL 15 (Debian's) in its own fresh cluster on a free
    loopback port, run as the postgres user when we are root; stopped at
    exit."""
    BIN = "/usr/lib/postgresql/15/bin"

    def __init__(self):
        import shutil as _shutil
        self.dir = tmpdir("flowstate-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "sock")
        os.makedirs(self.sock)
        if os.geteuid() == 0:
            _shutil.chown(self.dir, "postgres", "postgres")
            _shutil.chown(self.sock, "postgres", "postgres")
        self.port = free_port()
        r = self._as_pg([f"{self.BIN}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync", "-E",
                         "UTF8"])
        if r.returncode:
            raise TestFailure("initdb failed: " + r.stdout + r.stderr)
        self.started = False
        self.start()
        _ETCDS.append(self)

    def _as_pg(self, cmd):
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run(prefix + cmd, capture_output=True, text=True, timeout=120)

    @property
    def conninfo(self):
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres connect_timeout=5"

    def start(self):
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses=127.0.0.1 -c fsync=off"
        r = self._as_pg([f"{self.BIN}/pg_ctl", "-D", self.data, "-o", opts, "-l", os.path.join(self.dir, "pg.log"),
                         "-w", "start"])
        if r.returncode:
            raise TestFailure("postgres failed to start: " + r.stdout + r.stderr)
        self.started = True

    def sql(self, statement):
        """Runs SQL with psql; its output rows (unaligned, tab-separated)."""
        r = subprocess.run(["psql", "-q", "-A", "-t", "-F", "\t", "-h", "127.0.0.1", "-p", str(self.port), "-U",
                            "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", statement],
                           capture_output=True, text=True, timeout=60)
        if r.returncode:
            raise TestFailure(f"psql {statement!r}: {r.stderr}")
        return [line.split("\t") for line in r.stdout.splitlines() if line]

    def stop(self):
        if self.started:
            self._as_pg([f"{self.BIN}/pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop"])
            self.started = False


class Mosquitto:
    """A real MQTT broker (Debian's mosquitto) on a free loopback port, with
    its own configuration and persistence file (so a restart keeps the
    sessions and their queued messages); killed at exit."""

    def __init__(self, port=None, persistence=True):
        self.dir = tmpdir("flowstate-mosquitto-")
        os.chmod(self.dir, 0o777)  # started as root, mosquitto runs as the user "mosquitto"
        self.port = port or free_port()
        with open(os.path.join(self.dir, "mosquitto.conf"), "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                    f"persistence {'true' if persistence else 'false'}\npersistence_location {self.dir}/\n"
                    "autosave_interval 1\n"
                    "max_queued_messages 100000\nmax_inflight_messages 100\n")
        self.proc = None
        self.start()
        _ETCDS.append(self)

    @property
    def url(self):
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self):
        import socket
        self.log = open(os.path.join(self.dir, "mosquitto.log"), "a")
        self.proc = subprocess.Popen(["mosquitto", "-c", os.path.join(self.dir, "mosquitto.conf")],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise TestFailure("mosquitto exited at start: " +
                                      open(os.path.join(self.dir, "mosquitto.log")).read()[-2000:])
                time.sleep(0.05)
        raise TestFailure("mosquitto did not start within 30 s")

    def wait_for_client(self, prefix, count=1, timeout=30):
        """Waits until the broker logged `count` connections of clients whose
        id starts with `prefix` (restarts included), then a moment for the
        SUBSCRIBE that follows a connection."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(os.path.join(self.dir, "mosquitto.log")) as f:
                if f.read().count(f" as {prefix}") >= count:
                    time.sleep(0.3)
                    return
            time.sleep(0.05)
        raise TestFailure(f"no client {prefix}* connected to mosquitto within {timeout} s")

    def restart(self):
        """A clean stop (SIGTERM: the broker saves its sessions), then a start."""
        self.proc.terminate()
        self.proc.wait()
        self.start()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _report_hang():
    """What a test that hangs waits on, printed before CTest's timeout kills
    it (CTest shows a killed test's output but nothing of why it hung)."""
    import faulthandler
    print(f"\nHANG: still running after {_WATCHDOG_S:.0f}s; the test's threads:", flush=True)
    faulthandler.dump_traceback(file=sys.stdout, all_threads=True)
    for node in _NODES:
        if node.proc and node.proc.poll() is None:
            print(f"node {node.data} (pid {node.proc.pid}): its threads\n{thread_report(node.proc.pid)}\n"
                  f"its log's end:\n{node.log()[-3000:]}", flush=True)
    for path in list(_WATCHED_LOGS):
        try:
            print(f"{path}'s end:\n" + open(path, errors="replace").read()[-3000:], flush=True)
        except OSError:
            pass


# Seconds after which a test file reports where it hangs: a little before
# CTest's TIMEOUT (tests/CMakeLists.txt passes it as FLOWSTATE_TEST_TIMEOUT).
_WATCHDOG_S = float(os.environ.get("FLOWSTATE_TEST_TIMEOUT", "300")) - 20
_WATCHED_LOGS = []  # other processes' logs (a manager's) printed with a hang report


def run(tests):
    """Runs test functions (name: sentence), prints a line each and a summary."""
    if not os.path.exists(BIN):
        print(f"FAIL: {BIN} is not built (build first: ninja -C build)")
        sys.exit(1)
    watchdog = threading.Timer(_WATCHDOG_S, _report_hang)
    watchdog.daemon = True
    watchdog.start()
    passed = failed = 0
    for fn in tests:
        name = fn.__doc__.strip() if fn.__doc__ else fn.__name__
        start = time.time()
        _started_nodes.clear()
        try:
            fn()
            passed += 1
            print(f"PASS {name} ({time.time() - start:.1f}s)", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure the same way
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
            print(_nodes_log_tails(), flush=True)
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


class Proxy:
    """A TCP proxy on a free loopback port in front of HOST:PORT, for
    partitions: block() stops carrying bytes (a blackhole: connections stay
    open, nothing arrives, new ones are accepted and hang), either way or
    one way ("up": from the connecting side to the target, "down": back);
    slow(seconds) delays every chunk it carries; heal() closes the
    connections a blackhole held (their streams lost bytes), carries new
    ones again and drops the delay."""

    def __init__(self, target_port, target_host="127.0.0.1"):
        import socket
        self.target = (target_host, target_port)
        self.blocked = {"up": threading.Event(), "down": threading.Event()}
        self.delay_s = 0.0
        self.lock = threading.Lock()
        self.conns = []
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.append((client, upstream))
            for a, b, way in ((client, upstream, "up"), (upstream, client, "down")):
                threading.Thread(target=self._pump, args=(a, b, way), daemon=True).start()

    def _pump(self, src, dst, way):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.close()
                    except OSError:
                        pass
                return
            if self.blocked[way].is_set():
                continue  # dropped
            if self.delay_s:
                time.sleep(self.delay_s)
            try:
                dst.sendall(data)
            except OSError:
                return

    def block(self, way="both"):
        for w in (("up", "down") if way == "both" else (way,)):
            self.blocked[w].set()

    def slow(self, seconds):
        self.delay_s = seconds

    def heal(self):
        import socket
        with self.lock:
            held, self.conns = self.conns, []
        for pair in held:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                    s.close()
                except OSError:
                    pass
        self.delay_s = 0.0
        for e in self.blocked.values():
            e.clear()
