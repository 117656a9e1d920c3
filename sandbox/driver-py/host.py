# The driver host for Python (docs/drivers.md "Custom drivers"): runs one
# custom driver's package and speaks the driver protocol with the node over
# fd 3 (one JSON object per line). Sockets the node connects for the driver
# arrive on fd 4. Run by /usr/bin/python3.11 -I -S -B -c (compiled into the
# node); the package's files come in the start message and are imported
# from memory.
import concurrent.futures, importlib.abc, importlib.util, io, json, os, socket, sys, threading, traceback, zipfile

control = socket.socket(fileno=3)
handoff = socket.socket(fileno=4)
send_lock = threading.Lock()


def send(message):
    data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
    with send_lock:
        control.sendall(data)


class Retry(Exception):
    """Not delivered now: the node tries again (after_ms: not before)."""

    def __init__(self, message, after_ms=None):
        super().__init__(message)
        self.after_ms = after_ms


class Permanent(Exception):
    """The target refused it for good: an error record."""


class Refused(Exception):
    """The node did not accept an emitted message."""


# `from flowstate_driver import Retry, Permanent` in a driver.
_module = type(sys)("flowstate_driver")
_module.Retry, _module.Permanent, _module.Refused = Retry, Permanent, Refused
sys.modules["flowstate_driver"] = _module


class _Log:
    def __init__(self, level):
        self.level, self.buffer = level, ""

    def write(self, text):
        self.buffer += text
        while "\n" in self.buffer:
            line, self.buffer = self.buffer.split("\n", 1)
            send({"type": "log", "level": self.level, "message": line})
        return len(text)

    def flush(self):
        pass


sys.stdout, sys.stderr = _Log("info"), _Log("error")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The package's modules, from memory (the driver cannot read files)."""

    def __init__(self, files):
        self.files = files  # "pkg/__init__.py" -> source

    def _path(self, fullname):
        base = fullname.replace(".", "/")
        for path, package in ((base + "/__init__.py", True), (base + ".py", False)):
            if path in self.files:
                return path, package
        return None, False

    def find_spec(self, fullname, path=None, target=None):
        found, package = self._path(fullname)
        if not found:
            return None
        spec = importlib.util.spec_from_loader(fullname, self, origin=found, is_package=package)
        spec.has_location = True
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        found, package = self._path(module.__name__)
        module.__file__ = found
        if package:
            module.__path__ = [found.rsplit("/", 1)[0]]
        exec(compile(self.files[found], found, "exec"), module.__dict__)


class Context:
    def __init__(self, start):
        self.name, self.role, self.config = start["name"], start["role"], start["config"]
        self.stopping = threading.Event()
        self.Retry, self.Permanent, self.Refused = Retry, Permanent, Refused
        self._refs, self._lock, self._waiting = 1, threading.Lock(), {}
        self._on_connection, self._unhandled = None, []

    def _request(self, message):
        future = concurrent.futures.Future()
        with self._lock:
            ref, self._refs = self._refs, self._refs + 1
            self._waiting[ref] = future
        message["ref"] = ref
        future.ref = ref
        send(message)
        return future

    def emit_async(self, payload, key=None, id=None):
        """A source's message; the future completes once it is committed."""
        message = {"type": "emit", "payload": payload}
        if key is not None:
            message["key"] = str(key)
        if id is not None:
            message["id"] = str(id)
        return self._request(message)

    def emit(self, payload, key=None, id=None):
        """Blocks until the message is committed; raises Refused otherwise."""
        return self.emit_async(payload, key, id).result()

    def connect(self, host, port, timeout=30):
        """A TCP connection to a host the configuration names, made by the node."""
        future = self._request({"type": "connect", "host": str(host), "port": int(port)})
        try:
            fd = future.result(timeout)
        except concurrent.futures.TimeoutError:
            # Given up: a socket arriving later is closed on arrival (_answer).
            with self._lock:
                self._waiting.pop(future.ref, None)
            if future.done() and future.exception() is None:
                os.close(future.result())
            raise TimeoutError(f"connect {host}:{port}: no answer from the node within {timeout} s") from None
        s = socket.socket(fileno=fd)
        s.setblocking(True)  # it comes non-blocking from the node's event loop
        return s

    def on_connection(self, handler):
        """handler(sock, info) runs in a thread of its own for each connection the
        node accepts on the configuration's `listen:` addresses (a blocking
        socket.socket; info has "listener" and "peer"). An exception it raises
        is logged and closes that connection."""
        with self._lock:
            self._on_connection = handler
            waiting, self._unhandled = self._unhandled, []
        for sock, info in waiting:
            self._serve(handler, sock, info)

    def _serve(self, handler, sock, info):
        def run():
            try:
                handler(sock, info)
            except BaseException:
                send({"type": "log", "level": "error",
                      "message": "connection from %s: %s" % (info["peer"], traceback.format_exc())})
                sock.close()
        threading.Thread(target=run, daemon=True).start()

    def _accepted(self, message):
        # The socket was sent on fd 4 just before this message, in order.
        data, fds, _, _ = socket.recv_fds(handoff, 256, 1)
        if not fds or data.decode() != "accept-%d" % message["ref"]:
            for fd in fds:
                os.close(fd)
            send({"type": "log", "level": "error", "message": "an accepted connection did not arrive"})
            return
        sock = socket.socket(fileno=fds[0])
        sock.setblocking(True)
        info = {"listener": message["listener"], "peer": message["peer"]}
        with self._lock:
            handler = self._on_connection
            if handler is None:
                if len(self._unhandled) < 64:
                    self._unhandled.append((sock, info))
                else:
                    sock.close()
                return
        self._serve(handler, sock, info)

    def log(self, *args):
        send({"type": "log", "level": "info", "message": " ".join(str(a) for a in args)})

    def _answer(self, message):
        with self._lock:
            future = self._waiting.pop(message.get("ref"), None)
        kind = message["type"]
        if kind == "connected":
            # The socket was sent on fd 4 just before this reply, in order:
            # taken off whether or not anyone still waits for it.
            data, fds, _, _ = socket.recv_fds(handoff, 256, 1)
            if future is None:
                for fd in fds:
                    os.close(fd)
                return
        if future is None:
            return
        if kind == "ack" and message.get("ok"):
            future.set_result(None)
        elif kind == "connected":
            if not fds or data.decode() != str(message["ref"]):
                future.set_exception(ConnectionError("connect: the socket did not arrive"))
            else:
                future.set_result(fds[0])
        else:
            error = message.get("error", "refused")
            if kind == "ack":
                future.set_exception(Refused(error))
            elif message.get("denied"):
                future.set_exception(PermissionError(error))  # the node's rules, not the network: do not retry
            else:
                future.set_exception(ConnectionError(error))


def fatal(text):
    try:
        send({"type": "fatal", "error": text})
    finally:
        os._exit(1)


def main():
    driver, ctx, pool = None, None, None
    buffered = b""
    while True:
        chunk = control.recv(1 << 16)
        if not chunk:
            os._exit(0)
        buffered += chunk
        while b"\n" in buffered:
            line, buffered = buffered.split(b"\n", 1)
            if not line:
                continue
            m = json.loads(line)
            kind = m["type"]
            if kind == "start":
                try:
                    files = dict(m.get("files", {}))
                    for wheel in m.get("wheels", []):
                        import base64
                        with zipfile.ZipFile(io.BytesIO(base64.b64decode(wheel))) as z:
                            for name in z.namelist():
                                if name.endswith(".py"):
                                    files[name] = z.read(name).decode("utf-8")
                    sys.meta_path.append(_Finder(files))
                    driver = importlib.import_module(m["package"])
                    ctx = Context(m)
                    if m["role"] == "sink" and not hasattr(driver, "deliver"):
                        raise TypeError(m["package"] + " is used as a sink but defines no deliver(delivery, ctx)")
                    if m["role"] == "source" and not hasattr(driver, "start"):
                        raise TypeError(m["package"] + " is used as a source but defines no start(ctx)")
                    pool = concurrent.futures.ThreadPoolExecutor(max_workers=int(m.get("concurrency", 16)))
                except BaseException:
                    fatal(traceback.format_exc())
                send({"type": "ready"})
                if hasattr(driver, "start"):
                    def run():
                        try:
                            driver.start(ctx)
                        except BaseException:
                            fatal(traceback.format_exc())
                    threading.Thread(target=run, daemon=True).start()
            elif kind == "deliver":
                pool.submit(_deliver, driver, ctx, m)
            elif kind in ("ack", "connected", "connect_failed"):
                ctx._answer(m)
            elif kind == "accepted":
                ctx._accepted(m)
            elif kind == "stop":
                ctx.stopping.set()
                if hasattr(driver, "stop"):
                    try:
                        driver.stop(ctx)
                    except BaseException:
                        pass
                os._exit(0)


def _deliver(driver, ctx, m):
    delivery = {k: m.get(k) for k in ("id", "key", "payload", "timeMs", "attempt")}
    try:
        result = driver.deliver(delivery, ctx)
        reply = {"type": "delivered", "ref": m["ref"]}
        if result is not None:
            reply["result"] = result
    except Permanent as e:
        reply = {"type": "failed", "ref": m["ref"], "error": str(e), "permanent": True}
    except Retry as e:
        reply = {"type": "failed", "ref": m["ref"], "error": str(e), "permanent": False}
        if e.after_ms is not None:
            reply["retryAfterMs"] = e.after_ms
    except BaseException as e:
        reply = {"type": "failed", "ref": m["ref"], "error": "%s: %s" % (type(e).__name__, e), "permanent": False}
    try:
        send(reply)
    except (TypeError, ValueError) as e:  # a result JSON cannot hold: the delivery fails, the driver goes on
        send({"type": "failed", "ref": m["ref"], "error": "deliver returned what JSON cannot hold: %s" % e,
              "permanent": True})


main()
