"""The flow listener against hostile clients (docs/http.md, "Limits"): idle
and slowloris connections are closed by the node while well-behaved clients
get every answer; running out of file descriptors never stops the accept
loop; text that is not UTF-8 is refused at the source without crashing a
worker; TLS with curl."""
import http.client
import json
import os
import resource
import selectors
import socket
import subprocess
import threading
import time

from harness import BIN, Node, check, counter_project, run, tmpdir

# The test holds ~600 sockets at once.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))


def address(listen):
    host, port = listen.rsplit(":", 1)
    return host, int(port)


def connect_from(node, source_ip, timeout=30):
    """A TCP connection to the flow listener from a loopback address of its own."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source_ip, 0))
    s.connect(address(node.listen))
    return s


def wait_closed_by_node(sockets, deadline):
    """The sockets the node has not closed by the deadline (reads and drops
    whatever the node sends before its close)."""
    selector = selectors.DefaultSelector()  # epoll: no FD_SETSIZE limit
    for s in sockets:
        s.setblocking(False)
        selector.register(s, selectors.EVENT_READ)
    remaining = set(sockets)
    while remaining and time.time() < deadline:
        for key, _ in selector.select(timeout=1):
            s = key.fileobj
            try:
                data = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError:  # reset: closed as well
                data = b""
            if not data:
                selector.unregister(s)
                remaining.discard(s)
    selector.close()
    return remaining


def test_idle_and_slowloris_connections_do_not_stop_well_behaved_clients():
    """500 idle connections and 50 slowloris clients from 127.0.0.2 and up do not stop 64 clients on 127.0.0.1
    from getting every answer, and the node closes the idle and slow connections by itself"""
    node = Node([counter_project(tmpdir() + "/counter")]).start()
    idle, slow = [], []
    try:
        # Default limits: 10 s to send a request's head, 256 connections per address.
        for i in range(500):
            idle.append(connect_from(node, f"127.0.0.{2 + i // 50}"))
        for i in range(50):
            s = connect_from(node, f"127.0.0.{12 + i}")
            s.sendall(b"POST /count/slow HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        stop = threading.Event()

        def trickle():  # one more header line per second on each slow connection
            n = 0
            while not stop.is_set():
                for s in slow:
                    try:
                        s.sendall(b"X-%d: y\r\n" % n)
                    except OSError:
                        pass
                n += 1
                stop.wait(1)

        trickler = threading.Thread(target=trickle, daemon=True)
        trickler.start()

        answers = {}
        failures = []

        def client(i):
            try:
                conn = http.client.HTTPConnection(*address(node.listen), timeout=60, source_address=("127.0.0.1", 0))
                for n in range(1, 6):
                    conn.request("POST", f"/count/good{i}", body="{}", headers={"Content-Type": "application/json"})
                    r = conn.getresponse()
                    body = json.loads(r.read())
                    if r.status != 200 or body != {"count": n}:
                        failures.append(f"client {i} request {n}: {r.status} {body}")
                        return
                    answers[(i, n)] = True
                conn.close()
            except Exception as e:  # noqa: BLE001 - reported below
                failures.append(f"client {i}: {type(e).__name__}: {e}")

        started = time.time()
        clients = [threading.Thread(target=client, args=(i,)) for i in range(64)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(timeout=max(0.1, started + 30 - time.time()))
        check(not failures, f"well-behaved clients failed: {failures[:5]}")
        check(len(answers) == 64 * 5, f"{len(answers)} of {64 * 5} answers arrived within 30 s")

        # Nothing in the node closes these but its own deadlines.
        still_open = wait_closed_by_node(idle + slow, time.time() + 60)
        stop.set()
        check(not still_open, f"{len(still_open)} idle or slow connections still open after 60 s")
        status, body = node.request("POST", "/count/good0", {})
        check(status == 200 and body == {"count": 6}, f"the node still answers: {status} {body}")
    finally:
        for s in idle + slow:
            s.close()
        node.stop()


def descriptors_of(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_running_out_of_file_descriptors_never_stops_the_accept_loop():
    """out of file descriptors, the node closes waiting connections instead of leaving them hanging, and
    accepts again once descriptors are free"""
    probe = Node([counter_project(tmpdir() + "/probe")]).start()
    baseline = descriptors_of(probe.proc.pid)
    probe.stop()
    limit = baseline + 120

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    node = Node([counter_project(tmpdir() + "/counter")], preexec_fn=low_limit,
                extra_args=["--max-connections", "0", "--header-timeout", "10m"]).start()
    hogs = []
    try:
        status, _ = node.request("POST", "/count/a", {})
        check(status == 200, f"first request: {status}")
        # More connections than descriptors left: the node runs out.
        for i in range(300):
            hogs.append(connect_from(node, f"127.0.0.{2 + i // 50}"))
        time.sleep(1)  # the node takes what it can (no timing is asserted)
        s = connect_from(node, "127.0.0.1", timeout=20)
        s.sendall(b"POST /count/a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        try:
            reply = s.recv(4096)
        except socket.timeout:
            reply = None
        s.close()
        check(reply is not None, "a connection made while out of descriptors hung instead of being closed")
        check(reply == b"" or reply.startswith(b"HTTP/1.1 503"), f"refused with 503 or a close: {reply[:80]}")
        for h in hogs:
            h.close()
        hogs.clear()
        deadline = time.time() + 60
        answer = None
        while time.time() < deadline:
            try:
                answer = node.request("POST", "/count/a", {})
                if answer[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)
        check(answer == (200, {"count": 2}), f"accepting again after the descriptors came back: {answer}")
        check("cannot accept" in node.log(), f"the node said it ran out:\n{node.log()}")
    finally:
        for h in hogs:
            h.close()
        node.stop()


def raw_request(node, head, body=b""):
    data = exchange(node, head + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), payload


def exchange(node, data):
    """Sends raw bytes; returns what the node sends back until it closes."""
    with socket.create_connection(address(node.listen), timeout=30) as s:
        s.sendall(data)
        out = b""
        while True:
            piece = s.recv(65536)
            if not piece:
                break
            out += piece
    return out


def test_text_that_is_not_utf8_is_refused_and_crashes_no_worker():
    """a path, header or body that is not UTF-8 gets 400 naming it, no worker crashes, and a plus sign in a
    path is a plus"""
    node = Node([counter_project(tmpdir() + "/counter")]).start()
    try:
        status, body = node.request("POST", "/count/warm", {})
        check(status == 200, f"warm-up: {status} {body}")
        workers = sorted(node.worker_pids(b"flowstate-worker"))
        status, payload = raw_request(node, b"POST /count/%FF%FE HTTP/1.1\r\nHost: x\r\n", b"{}")
        check(status == 400 and b"the path" in payload and b"UTF-8" in payload, f"bad key: {status} {payload}")
        status, payload = raw_request(node, b"POST /count/\xff\xfe HTTP/1.1\r\nHost: x\r\n", b"{}")
        check(status == 400, f"raw bytes in the path: {status} {payload}")
        status, payload = raw_request(node, b"POST /count/k?who=%C3%28 HTTP/1.1\r\nHost: x\r\n", b"{}")
        check(status == 400 and b'the query parameter \\"who\\"' in payload, f"bad query: {status} {payload}")
        status, payload = raw_request(node, b"POST /count/k HTTP/1.1\r\nHost: x\r\nX-Name: caf\xe9\r\n", b"{}")
        check(status == 400 and b'the header \\"x-name\\"' in payload, f"bad header: {status} {payload}")
        status, payload = raw_request(node, b"POST /count/k HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n",
                                      b"\xc0\xaf")
        check(status == 400 and b"the request body" in payload, f"bad text body: {status} {payload}")
        # "a+b" and "a%2Bb" are one key, "a%20b" another.
        answers = [node.request("POST", path, {}) for path in ("/count/a+b", "/count/a%2Bb", "/count/a%20b")]
        check(answers == [(200, {"count": 1}), (200, {"count": 2}), (200, {"count": 1})],
              f"'+' in a path is a plus sign: {answers}")
        check(sorted(node.worker_pids(b"flowstate-worker")) == workers, "no worker was replaced")
        out = subprocess.run([BIN, "errors", "list", "--data", node.data], capture_output=True, timeout=60)
        out.stdout.decode("utf-8")  # raises on bytes that are not UTF-8
        check(out.returncode == 0 and b"crashed" not in out.stdout, f"no error recorded: {out.stdout[:400]}")
    finally:
        node.stop()


def test_request_rate_and_header_size_are_capped():
    """a client address over --rate-limit gets 429 with Retry-After while another address is served, and a
    head over --max-header-bytes gets 431"""
    node = Node([counter_project(tmpdir() + "/counter")],
                extra_args=["--rate-limit", "0.01", "--rate-burst", "3", "--max-header-bytes", "4096"]).start()
    try:
        conn = http.client.HTTPConnection(*address(node.listen), timeout=30, source_address=("127.0.0.1", 0))
        statuses = []
        for _ in range(4):
            conn.request("POST", "/count/a", body="{}", headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            statuses.append((r.status, r.getheader("Retry-After")))
        check([s for s, _ in statuses] == [200, 200, 200, 429], f"the fourth request is over the burst: {statuses}")
        check(int(statuses[3][1]) >= 1, f"429 says when to retry: {statuses[3]}")
        other = http.client.HTTPConnection(*address(node.listen), timeout=30, source_address=("127.0.0.2", 0))
        other.request("POST", "/count/a", body="{}", headers={"Content-Type": "application/json"})
        r = other.getresponse()
        check(r.status == 200 and json.loads(r.read()) == {"count": 4}, f"another address is served: {r.status}")
        status, payload = raw_request(node, b"POST /count/b HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * 5000 + b"\r\n")
        check(status == 431, f"a 5 KB header over a 4 KiB cap: {status} {payload}")
    finally:
        node.stop()


ECHO_JS = """export default function (input, state = { n: 0 }) {
  if (input.body && input.body.raw) return { output: input.body.raw };
  return { output: { status: 200, body: { n: state.n + 1 } }, state: { n: state.n + 1 } };
}
"""


def test_requests_whose_end_is_ambiguous_are_refused_and_a_bad_answer_never_reaches_the_wire():
    """Transfer-Encoding other than chunked gets 501 and both framings 400 (no smuggled second request runs);
    trailer fields count against the body limit (413); Expect: 100-continue gets its 100; HEAD gets no
    body; a function answering 204 with a body, 101, or a header with a line break gets a 500 Exception
    and the node stays up"""
    project = counter_project(tmpdir() + "/echo", function=ECHO_JS, extra={
        "drivers/count.yaml": "kind: http.Request\nroutes:\n  - POST /count/{key}\n  - HEAD /count/{key}\n  - GET /count/{key}\n"})
    node = Node([project], extra_args=["--max-body-bytes", "65536"]).start()
    try:
        smuggled = b"POST /count/s2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        out = exchange(node, b"POST /count/s1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n" + smuggled)
        check(out.startswith(b"HTTP/1.1 501") and out.count(b"HTTP/1.1") == 1, f"TE identity: {out[:300]}")
        out = exchange(node, b"POST /count/s1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")
        check(out.startswith(b"HTTP/1.1 501"), f"TE gzip, chunked: {out[:300]}")
        out = exchange(node, b"POST /count/s1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                             b"Content-Length: 5\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
        check(out.startswith(b"HTTP/1.1 400"), f"TE and CL: {out[:300]}")
        check(node.request("GET", "/count/s2") == (200, {"n": 1}), "no smuggled request ran")

        trailer = b"".join(b"X-T: " + b"t" * 1000 + b"\r\n" for _ in range(200))  # 200 KB of trailer fields
        out = exchange(node, b"POST /count/t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n" + trailer + b"\r\n")
        check(out.startswith(b"HTTP/1.1 413") or out.startswith(b"HTTP/1.1 431"), f"200 KB of trailers: {out[:300]}")
        out = exchange(node, b"POST /count/t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"2\r\n{}\r\n0\r\nX-T: " + b"t" * 200000 + b"\r\n\r\n")
        check(out.startswith(b"HTTP/1.1 431") or out.startswith(b"HTTP/1.1 413"), f"one long trailer: {out[:300]}")
        chunked = b"2\r\n{}\r\n0\r\nX-T: ok\r\n\r\n"
        out = exchange(node, b"POST /count/t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
        check(out.startswith(b"HTTP/1.1 200"), f"a small trailer is fine: {out[:300]}")

        with socket.create_connection(address(node.listen), timeout=30) as s:
            s.sendall(b"POST /count/e HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Connection: close\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
            first = s.recv(65536)
            check(first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), f"100 before the body: {first[:200]}")
            s.sendall(b"{}")
            rest = first[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
            while True:
                piece = s.recv(65536)
                if not piece:
                    break
                rest += piece
            check(rest.startswith(b"HTTP/1.1 200"), f"then the answer: {rest[:300]}")

        out = exchange(node, b"HEAD /count/h HTTP/1.1\r\nHost: x\r\n\r\nGET /count/h HTTP/1.1\r\nHost: x\r\n"
                             b"Connection: close\r\n\r\n")
        head, _, rest = out.partition(b"\r\n\r\n")
        check(head.startswith(b"HTTP/1.1 200") and b"Content-Length: " in head and rest.startswith(b"HTTP/1.1 200"),
              f"HEAD sends headers only, then the next answer: {out[:400]}")

        for raw in ({"status": 204, "body": "x"}, {"status": 304, "body": {}}, {"status": 101, "body": "x"},
                    {"status": 200, "headers": {"x-a": "v\r\nSet-Cookie: evil=1"}, "body": "x"}):
            status, body = node.request("POST", "/count/bad", {"raw": raw})
            check(status == 500 and "urn:flowstate:error:Exception" in json.dumps(body), f"{raw}: {status} {body}")
        status, body = node.request("POST", "/count/ok", {"raw": {"status": 204, "body": None}})
        check(status == 204, f"204 with a null body: {status} {body}")
        check(node.proc.poll() is None, "the node is up")
    finally:
        node.stop()


def make_certificate(directory):
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_tls_on_both_listeners_works_with_curl_and_the_cli():
    """with --tls-cert/--tls-key and --admin-tls-cert/--admin-tls-key both listeners speak HTTPS only: curl
    trusting the certificate gets answers, plain HTTP gets none, and the CLI reaches the admin API"""
    cert, key = make_certificate(tmpdir())
    node = Node([counter_project(tmpdir() + "/counter")],
                extra_args=["--tls-cert", cert, "--tls-key", key, "--admin-tls-cert", cert, "--admin-tls-key", key])
    node.start()  # its readiness was asked over TLS (harness: admin.addr is https://...)
    try:
        url = f"https://{node.listen}/count/a"
        for n in (1, 2):
            out = subprocess.run(["curl", "-sS", "--cacert", cert, "-X", "POST", "-H", "Content-Type: application/json",
                                  "-d", "{}", url], capture_output=True, text=True, timeout=60)
            check(out.returncode == 0 and json.loads(out.stdout) == {"count": n},
                  f"curl over TLS: {out.returncode} {out.stdout} {out.stderr}")
        out = subprocess.run(["curl", "-sS", "-X", "POST", "-d", "{}", url], capture_output=True, text=True, timeout=60)
        check(out.returncode != 0, f"curl without the certificate must not trust it: {out.stdout}")
        admin = node.admin[len("https://"):]
        out = subprocess.run(["curl", "-sS", "--cacert", cert, "-H", f"Authorization: Bearer {node.token}",
                              f"https://{admin}/readyz"], capture_output=True, text=True, timeout=60)
        check(out.returncode == 0 and json.loads(out.stdout).get("in_flight") is not None,
              f"admin API over TLS: {out.stdout} {out.stderr}")
        try:
            conn = http.client.HTTPConnection(*address(node.listen), timeout=30)
            conn.request("POST", "/count/a", body="{}")
            status = conn.getresponse().status
        except (http.client.HTTPException, OSError):
            status = None
        check(status is None, f"plain HTTP on the TLS listener got an answer: {status}")
        check(node.state("counter", "counter", "a") == {"count": 2}, "the CLI reads state over TLS")
    finally:
        node.stop()


if __name__ == "__main__":
    run([test_idle_and_slowloris_connections_do_not_stop_well_behaved_clients,
         test_running_out_of_file_descriptors_never_stops_the_accept_loop,
         test_text_that_is_not_utf8_is_refused_and_crashes_no_worker,
         test_request_rate_and_header_size_are_capped,
         test_requests_whose_end_is_ambiguous_are_refused_and_a_bad_answer_never_reaches_the_wire,
         test_tls_on_both_listeners_works_with_curl_and_the_cli])
