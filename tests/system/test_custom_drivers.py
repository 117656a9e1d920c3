"""Custom drivers (docs/drivers.md "Custom drivers"): the example npm source
(examples/drivers/tcp-lines) and Python sink (examples/drivers/
flowstate_graphite) run in driver processes against real TCP servers on
loopback, through a kill -9 of the node; probes in both languages cannot
reach the node's admin port, its files or a shell."""
import os
import shutil
import socket
import threading
import time

from harness import Node, check, cli, free_port, make_project, run, tmpdir, wait_for, write_files

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(HERE, "..", "..", "examples", "drivers")


class Listener:
    """A TCP server on loopback; serve(conn) runs for each connection."""

    def __init__(self):
        self.port = free_port()
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.serve(conn)


class Gateway(Listener):
    """A device gateway: sends its readings as JSON lines to whoever
    connects, and forgets one only when `ack <device>/<seq>` comes back."""

    def __init__(self):
        self.unacked = {}  # id -> line, in order
        self.connections = []
        super().__init__()

    def serve(self, conn):
        with self.lock:
            self.connections.append(conn)
            pending = list(self.unacked.values())
        try:
            conn.sendall("".join(pending).encode())
        except OSError:
            pass
        threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        buffered = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self.lock:
                    if conn in self.connections:
                        self.connections.remove(conn)
                return
            buffered += chunk
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                if line.startswith(b"ack "):
                    with self.lock:
                        self.unacked.pop(line[4:].decode(), None)

    def produce(self, readings):
        import json
        with self.lock:
            lines = []
            for r in readings:
                line = json.dumps(r) + "\n"
                self.unacked[f"{r['device']}/{r['seq']}"] = line
                lines.append(line)
            for conn in list(self.connections):
                try:
                    conn.sendall("".join(lines).encode())
                except OSError:
                    pass

    def pending(self):
        with self.lock:
            return len(self.unacked)


class Carbon(Listener):
    """A Graphite (Carbon) plaintext listener: keeps every line."""

    def __init__(self):
        self.lines = []
        super().__init__()

    def serve(self, conn):
        threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        buffered = b""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buffered += chunk
            while b"\n" in buffered:
                line, buffered = buffered.split(b"\n", 1)
                with self.lock:
                    self.lines.append(line.decode())

    def values(self, path):
        with self.lock:
            return [float(l.split()[1]) for l in self.lines if l.split()[0] == path]


COUNT_JS = """export default function (input, state = { count: 0 }) {
  const count = state.count + 1;
  return { output: { count, temperature: input.temperature }, state: { count } };
}
"""

REMEMBER_JS = """export default function (input) { return { state: input }; }
"""


def project_files(gateway, carbon, admin_port, probes=True):
    files = {
        "flowstate.yaml": "name: plant\n",
        "flows/ingest.yaml": "blocks:\n  - npm:@flowstate-examples/tcp-lines: gateway\n  - js.Function: count\n"
                             "  - python:flowstate_graphite: carbon\n",
        "drivers/gateway.yaml": f"kind: npm:@flowstate-examples/tcp-lines\ngateway: tcp://127.0.0.1:{gateway.port}\n"
                                "key: /device\nid: [/device, /seq]\n",
        "drivers/carbon.yaml": f"kind: python:flowstate_graphite\ncarbon: tcp://127.0.0.1:{carbon.port}\n"
                               "prefix: \"devices.{key}\"\nmetrics: {count: /count, temperature: /temperature}\n",
        "functions/count.js": COUNT_JS,
        "functions/remember.js": REMEMBER_JS,
        "flows/probe-js.yaml": "blocks:\n  - npm:probe-js: probejs\n  - js.Function: remember\n",
        "flows/probe-py.yaml": "blocks:\n  - python:probe_py: probepy\n  - js.Function: remember\n",
        "drivers/probejs.yaml": f"kind: npm:probe-js\ngateway: tcp://127.0.0.1:{gateway.port}\n"
                                f"admin_port: {admin_port}\ngateway_port: {gateway.port}\n",
        "drivers/probepy.yaml": f"kind: python:probe_py\ngateway: tcp://127.0.0.1:{gateway.port}\n"
                                f"admin_port: {admin_port}\ngateway_port: {gateway.port}\n",
        "node_modules/probe-js/package.json": '{"name": "probe-js", "version": "1.0.0", "main": "index.js"}\n',
        "node_modules/probe-js/index.js": open(os.path.join(HERE, "fixtures", "probe-drivers", "probe-js.js")).read(),
        "vendor/probe_py.py": open(os.path.join(HERE, "fixtures", "probe-drivers", "probe_py.py")).read(),
    }
    for rel in ("package.json", "index.js"):
        files["node_modules/@flowstate-examples/tcp-lines/" + rel] = open(
            os.path.join(EXAMPLES, "tcp-lines", rel)).read()
    files["vendor/flowstate_graphite/__init__.py"] = open(
        os.path.join(EXAMPLES, "flowstate_graphite", "__init__.py")).read()
    if not probes:
        files = {k: v for k, v in files.items() if "probe" not in k}
    return files


def readings(devices, first, last):
    return [{"device": f"d{d}", "seq": s, "temperature": 20 + s / 10}
            for s in range(first, last + 1) for d in range(devices)]


def test_custom_source_and_sink_carry_every_reading_exactly_once_through_kill9():
    """the npm source and the Python sink examples carry every reading exactly once through a kill -9 of the node, and probes in both languages cannot reach the admin port"""
    gateway, carbon = Gateway(), Carbon()
    root = tmpdir() + "/plant"
    make_project(root, project_files(gateway, carbon, 1))
    node = Node([root]).start()
    try:
        devices, per_device = 10, 30
        gateway.produce(readings(devices, 1, 15))
        wait_for("the first half acknowledged", lambda: gateway.pending() == 0, timeout=60)
        gateway.produce(readings(devices, 16, 22))
        time.sleep(0.2)
        node.kill9()
        gateway.produce(readings(devices, 23, per_device))
        node.start()
        wait_for("every reading acknowledged", lambda: gateway.pending() == 0, timeout=60)
        node.wait_idle()
        for d in range(devices):
            state = node.state("ingest", "count", f"d{d}")
            check(state == {"count": per_device}, f"d{d}: every reading counted once: {state}")

        def all_delivered():
            return all(set(carbon.values(f"devices.d{d}.count")) == set(float(i) for i in range(1, per_device + 1))
                       for d in range(devices))
        wait_for("every count delivered to Carbon", all_delivered, timeout=60)

        # The probes' target: the admin port of the node as it runs now (a
        # deploy naming it restarts them).
        admin_port = int(node.admin.rsplit(":", 1)[1])
        write_files(root, {k: v for k, v in project_files(gateway, carbon, admin_port).items()
                           if k.startswith("drivers/probe")})
        p = cli("deploy", "-m", "probe the admin port", "--project", root, data=node.data)
        check(p.returncode == 0, f"deploy: {p.stderr}")
        for key in ("js", "py"):
            report = wait_for(f"the {key} probe's report",
                              lambda: (node.state("probe-" + key, "remember", key) or {}).get("port") == admin_port
                              and node.state("probe-" + key, "remember", key), timeout=60)
            check(report.get("admin", "").startswith("refused:") and "not named" in report["admin"],
                  f"{key}: the admin port through the node is refused: {report}")
            check(report.get("denied") == {"js": "EACCES", "py": "PermissionError"}[key],
                  f"{key}: the refusal says it is the node's rule, not the network: {report}")
            check(report.get("own", "").startswith("failed"), f"{key}: a socket of its own fails: {report}")
            check(report.get("alias", "").startswith("refused:"),
                  f"{key}: a name the configuration does not use is refused: {report}")
            check(report.get("named") == "connected", f"{key}: the named host is reached: {report}")
            check(report.get("file", "").startswith("failed"), f"{key}: the node's files are out of reach: {report}")
            check(report.get("spawn", "").startswith("failed"), f"{key}: no new process: {report}")
    finally:
        node.stop()


def test_a_crash_between_the_commit_and_the_drivers_acknowledgement_does_not_count_a_reading_twice():
    """the node dies (a fault point) after a reading's acceptance commit and before the source hears of it; the gateway sends it again after the restart and it is counted once"""
    gateway, carbon = Gateway(), Carbon()
    root = tmpdir() + "/plant"
    make_project(root, project_files(gateway, carbon, 1, probes=False))
    node = Node([root])
    try:
        node.start(env={"FLOWSTATE_FAULT": "custom.before_ack"})
        gateway.produce(readings(1, 1, 1))
        node.wait_killed()
        check(gateway.pending() == 1, "not acknowledged before the crash")
        node.start(env={"FLOWSTATE_FAULT": ""})
        wait_for("the reading acknowledged", lambda: gateway.pending() == 0, timeout=60)
        node.wait_idle()
        check(node.state("ingest", "count", "d0") == {"count": 1}, "counted once")
    finally:
        node.stop()


def test_a_python_driver_shipped_as_a_wheel_runs_from_it():
    """the Python sink example packed as a wheel in vendor/ (no source folder) delivers like the folder does"""
    import io
    import zipfile
    gateway, carbon = Gateway(), Carbon()
    files = project_files(gateway, carbon, 1, probes=False)
    del files["vendor/flowstate_graphite/__init__.py"]
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("flowstate_graphite/__init__.py", open(os.path.join(EXAMPLES, "flowstate_graphite", "__init__.py")).read())
        z.writestr("flowstate_graphite-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: flowstate-graphite\nVersion: 1.0\n")
    root = tmpdir() + "/plant"
    make_project(root, files)
    os.makedirs(os.path.join(root, "vendor"), exist_ok=True)
    with open(os.path.join(root, "vendor", "flowstate_graphite-1.0-py3-none-any.whl"), "wb") as f:
        f.write(wheel.getvalue())
    import subprocess
    from harness import GIT
    subprocess.run(GIT + ["-C", root, "add", "-A"], check=True)
    subprocess.run(GIT + ["-C", root, "commit", "-qm", "the sink as a wheel"], check=True)
    node = Node([root]).start()
    try:
        gateway.produce(readings(2, 1, 5))
        wait_for("every count delivered to Carbon from the wheel's code",
                 lambda: all(set(carbon.values(f"devices.d{d}.count")) == {1.0, 2.0, 3.0, 4.0, 5.0} for d in range(2)),
                 timeout=60)
    finally:
        node.stop()


LOOKUP_JS = """// A custom driver between two functions: a query. What deliver returns is
// the next function's input, with the query's input.
module.exports = {
  async deliver(d, ctx) { return { key: d.key, doubled: d.payload.n * 2, site: ctx.config.site }; },
};
"""


def test_a_custom_driver_between_two_functions_answers_the_next_one():
    """a custom npm driver between two functions is a query: what its deliver returns is committed as the next function's input, which answers the HTTP client"""
    root = tmpdir() + "/lookup"
    make_project(root, {
        "flowstate.yaml": "name: lookup\n",
        "flows/lookup.yaml": "blocks:\n  - http.Request: in\n  - js.Function: ask\n  - npm:lookup-js: lookup\n"
                             "  - js.Function: show\n  - http.Response: out\n",
        "drivers/in.yaml": "kind: http.Request\nmethod: POST\npath: /lookup/{key}\n",
        "drivers/out.yaml": "kind: http.Response\n",
        "drivers/lookup.yaml": "kind: npm:lookup-js\nsite: plant-7\n",
        "functions/ask.js": "export default function (input) { return { outputs: [{ n: input.body.n }] }; }\n",
        "functions/show.js": "export default function (input) { return { outputs: [{ status: 200, body: input }] }; }\n",
        "node_modules/lookup-js/package.json": '{"name": "lookup-js", "version": "1.0.0", "main": "index.js"}\n',
        "node_modules/lookup-js/index.js": LOOKUP_JS,
    })
    node = Node([root]).start()
    try:
        status, body = node.request("POST", "/lookup/k1", {"n": 21})
        check(status == 200 and body == {"input": {"n": 21}, "result": {"key": "k1", "doubled": 42, "site": "plant-7"}},
              f"the driver's answer reaches the client through the next function: {status} {body}")
    finally:
        node.stop()


STUCK_JS = """// Never answers the first delivery it gets; answers the next ones.
let calls = 0;
module.exports = {
  deliver(d) { calls += 1; return calls === 1 ? new Promise(() => {}) : { calls, attempt: d.attempt }; },
};
"""


def test_a_delivery_the_driver_never_answers_is_retried_after_the_drivers_timeout():
    """a custom query driver whose first attempt never settles, with `timeout: 1s`: the delivery is retried after a second and the second attempt's answer reaches the client"""
    root = tmpdir() + "/stuck"
    make_project(root, {
        "flowstate.yaml": "name: stuck\n",
        "flows/stuck.yaml": "blocks:\n  - http.Request: in\n  - js.Function: ask\n  - npm:stuck-js: stuck\n"
                            "  - js.Function: show\n  - http.Response: out\n",
        "drivers/in.yaml": "kind: http.Request\nmethod: POST\npath: /stuck/{key}\n",
        "drivers/out.yaml": "kind: http.Response\n",
        "drivers/stuck.yaml": "kind: npm:stuck-js\ntimeout: 1s\nretry: {initial: 100ms}\n",
        "functions/ask.js": "export default function (input) { return { outputs: [{}] }; }\n",
        "functions/show.js": "export default function (input) { return { outputs: [{ status: 200, body: input.result }] }; }\n",
        "node_modules/stuck-js/package.json": '{"name": "stuck-js", "version": "1.0.0", "main": "index.js"}\n',
        "node_modules/stuck-js/index.js": STUCK_JS,
    })
    node = Node([root]).start()
    try:
        started = time.time()
        status, body = node.request("POST", "/stuck/k1", {})
        check(status == 200 and body["calls"] == 2 and body["attempt"] > 0,
              f"the second attempt answered the client: {status} {body}")
        print(f"    answered after {time.time() - started:.1f} s")
    finally:
        node.stop()


# Asks the node for 40 connections at once to a listener that never accepts
# (its backlog full, so the handshakes hang): the node makes 32 at a time.
SWARM_JS = """module.exports = {
  async start(ctx) {
    const tries = Array.from({ length: 40 }, () => ctx.connect('127.0.0.1', ctx.config.port));
    const results = await Promise.allSettled(tries);
    const report = { refused: 0, other: [] };
    for (const r of results) {
      if (r.status === 'fulfilled') { r.value.destroy(); continue; }
      if (/32 connections are being made already/.test(r.reason.message)) report.refused++;
      else report.other.push(r.reason.message);
    }
    ctx.emit(report, { key: 'swarm' });
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
  },
};
"""


def test_a_driver_asking_for_more_than_32_connections_at_once_gets_the_rest_refused_at_once():
    """a custom source asking for 40 connections at once to a host whose handshakes hang: the node makes at most 32 at a time, and the others fail at once with an ordinary connection error saying so"""
    import socket
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)  # never accepted: past the backlog, handshakes hang
    port = listener.getsockname()[1]
    root = tmpdir() + "/swarm"
    make_project(root, {
        "flowstate.yaml": "name: swarm\n",
        "flows/swarm.yaml": "blocks:\n  - npm:swarm-js: swarm\n  - js.Function: remember\n",
        "drivers/swarm.yaml": f"kind: npm:swarm-js\nhosts: [\"127.0.0.1:{port}\"]\nport: {port}\n",
        "functions/remember.js": REMEMBER_JS,
        "node_modules/swarm-js/package.json": '{"name": "swarm-js", "version": "1.0.0", "main": "index.js"}\n',
        "node_modules/swarm-js/index.js": SWARM_JS,
    })
    node = Node([root]).start()
    try:
        report = wait_for("the swarm's report", lambda: node.state("swarm", "remember", "swarm"), timeout=60)
        check(1 <= report["refused"] <= 8, f"at most 32 made at once, the rest refused at once: {report}")
        check(report["other"] and all(m.endswith(f"127.0.0.1:{port}: no connection within 10 s") for m in report["other"]),
              f"the others hung until the node's 10 s limit, and say so: {report}")
    finally:
        node.stop()
        listener.close()


LINE_SERVER_JS = """// A source that listens: devices connect to the node's `listen:` port and
// send JSON lines; each is acknowledged ("ok SEQ") once committed.
module.exports = {
  start(ctx) {
    ctx.onConnection((socket, info) => {
      let buffered = '';
      socket.setEncoding('utf8');
      socket.on('data', async (chunk) => {
        buffered += chunk;
        let nl;
        while ((nl = buffered.indexOf('\\n')) >= 0) {
          const reading = JSON.parse(buffered.slice(0, nl));
          buffered = buffered.slice(nl + 1);
          await ctx.emit({ ...reading, via: info.listener }, { key: reading.device, id: `${reading.device}/${reading.seq}` });
          socket.write(`ok ${reading.seq}\\n`);
        }
      });
    });
  },
};
"""

LINE_SERVER_PY = """import json


def start(ctx):
    def serve(sock, info):
        with sock, sock.makefile("r") as lines:
            for line in lines:
                reading = json.loads(line)
                reading["via"] = info["listener"]
                ctx.emit(reading, key=reading["device"], id="%s/%s" % (reading["device"], reading["seq"]))
                sock.sendall(b"ok %d\\n" % reading["seq"])
    ctx.on_connection(serve)
"""

COUNT_SEQS_JS = """export default function (input, state = { seqs: [] }) {
  return { state: { seqs: [...state.seqs, input.seq], via: input.via } };
}
"""


def send_lines(port, device, seqs, timeout=60):
    """Sends readings to a driver's listening port; returns the acknowledged seqs."""
    deadline = time.time() + timeout
    while True:
        try:
            conn = socket.create_connection(("127.0.0.1", port), timeout=30)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        conn.sendall("".join(f'{{"device": "{device}", "seq": {s}}}\n' for s in seqs).encode())
        acked, buffered = [], b""
        while len(acked) < len(seqs):
            chunk = conn.recv(65536)
            check(chunk, f"the driver answered every reading of {device}: {acked}")
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            acked += [int(line.split()[1]) for line in lines]
        return acked


def test_custom_sources_in_both_languages_accept_connections_on_their_listen_ports():
    """an npm and a Python source with `listen:` get the connections the node accepts on those ports (one taken by another program at first: logged, then bound once free); each reading is acknowledged to the device after its commit, the ports accept again after a kill -9 and restart, and the readings a device sends again (same id) are not counted twice"""
    js_port, py_port = free_port(), free_port()
    root = tmpdir() + "/servers"
    make_project(root, {
        "flowstate.yaml": "name: servers\n",
        "flows/js.yaml": "blocks:\n  - npm:line-server: js\n  - js.Function: count\n",
        "flows/py.yaml": "blocks:\n  - python:line_server: py\n  - js.Function: count\n",
        "drivers/js.yaml": f"kind: npm:line-server\nlisten: [\"127.0.0.1:{js_port}\"]\n",
        "drivers/py.yaml": f"kind: python:line_server\nlisten: [\"127.0.0.1:{py_port}\"]\n",
        "functions/count.js": COUNT_SEQS_JS,
        "node_modules/line-server/package.json": '{"name": "line-server", "version": "1.0.0", "main": "index.js"}\n',
        "node_modules/line-server/index.js": LINE_SERVER_JS,
        "vendor/line_server/__init__.py": LINE_SERVER_PY,
    })
    # The Python driver's port is taken when the node starts: logged, and
    # bound once it is free.
    squatter = socket.create_server(("127.0.0.1", py_port))
    node = Node([root]).start()
    try:
        wait_for("the busy port logged", lambda: f"cannot listen on 127.0.0.1:{py_port}: Address already in use (trying again every 2 s)" in node.log(), timeout=30)
        squatter.close()
        for flow, port in (("js", js_port), ("py", py_port)):
            check(send_lines(port, f"{flow}-d1", range(1, 21)) == list(range(1, 21)), f"{flow}: every reading acknowledged")
        node.kill9()
        node.start()
        for flow, port in (("js", js_port), ("py", py_port)):
            # 15..20 again (the device did not hear those acknowledgements, say), then new ones.
            check(send_lines(port, f"{flow}-d1", range(15, 31)) == list(range(15, 31)), f"{flow}: acknowledged after the restart")
            state = node.state(flow, "count", f"{flow}-d1")
            check(sorted(state["seqs"]) == list(range(1, 31)), f"{flow}: every reading once: {state['seqs']}")
            check(state["via"] == f"127.0.0.1:{port}", f"{flow}: the driver was told which listener: {state}")
    finally:
        node.stop()


def test_a_custom_driver_whose_package_is_missing_is_refused_at_deploy():
    """a driver file naming an npm package that is not installed, or a Python package not in vendor/, is refused at deploy naming the file"""
    root = tmpdir() + "/missing"
    make_project(root, {
        "flowstate.yaml": "name: missing\n",
        "flows/h.yaml": "blocks:\n  - http.Request: h\n  - js.Function: f\n",
        "drivers/h.yaml": "kind: http.Request\nmethod: POST\npath: /h/{key}\n",
        "functions/f.js": "export default function (input) { return { output: input }; }\n",
    })
    node = Node([root]).start()
    try:
        write_files(root, {
            "flows/a.yaml": "blocks:\n  - npm:@acme/nowhere: a\n  - js.Function: f\n",
            "flows/b.yaml": "blocks:\n  - js.Function: f\n  - python:acme_nowhere: b\n",
            "drivers/a.yaml": "kind: npm:@acme/nowhere\n",
            "drivers/b.yaml": "kind: python:acme_nowhere\n",
        })
        p = cli("deploy", "-m", "x", "--project", root, data=node.data)
        check(p.returncode != 0, "refused")
        check("drivers/a.yaml" in p.stderr and '"@acme/nowhere" not found in node_modules' in p.stderr, p.stderr)
        check("drivers/b.yaml" in p.stderr and "acme_nowhere not found" in p.stderr, p.stderr)
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_custom_source_and_sink_carry_every_reading_exactly_once_through_kill9,
         test_a_crash_between_the_commit_and_the_drivers_acknowledgement_does_not_count_a_reading_twice,
         test_a_python_driver_shipped_as_a_wheel_runs_from_it,
         test_a_custom_driver_between_two_functions_answers_the_next_one,
         test_a_delivery_the_driver_never_answers_is_retried_after_the_drivers_timeout,
         test_a_driver_asking_for_more_than_32_connections_at_once_gets_the_rest_refused_at_once,
         test_custom_sources_in_both_languages_accept_connections_on_their_listen_ports,
         test_a_custom_driver_whose_package_is_missing_is_refused_at_deploy])
