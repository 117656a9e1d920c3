"""A custom sink (docs/drivers.md "Custom drivers"): each delivery as lines
of Graphite's plaintext protocol (`path value timestamp`) to a Carbon server.

A repeat lands on the same point: Graphite keeps one value per path and
timestamp, and the timestamp is the message's time, so a delivery tried
twice (the node crashed before it heard back) changes nothing.

Configuration (drivers/<name>.yaml):
  kind: python:flowstate_graphite
  carbon: tcp://10.0.0.7:2003          # the host it may reach
  prefix: "devices.{key}"              # {key}: the message key, made path-safe
  metrics: {temperature: /temperature, count: /count}   # name: JSON pointer
"""
import re
import threading

from flowstate_driver import Permanent, Retry

_lock = threading.Lock()
_socket = None


def _pointer(value, pointer):
    for part in pointer.split("/")[1:]:
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(value, list) and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else None
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def _target(url):
    m = re.match(r"^tcp://([^/:]+|\[[^\]]+\]):(\d+)", url or "")
    if not m:
        raise Permanent("carbon: expected tcp://host:port, got %r" % (url,))
    return m.group(1).strip("[]"), int(m.group(2))


def _lines(delivery, config):
    key = re.sub(r"[^A-Za-z0-9_-]", "_", delivery["key"] or "none")
    prefix = config.get("prefix", "flowstate.{key}").replace("{key}", key)
    timestamp = delivery["timeMs"] // 1000
    out = []
    for name, pointer in sorted(config.get("metrics", {}).items()):
        value = _pointer(delivery["payload"], pointer)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue  # Graphite stores numbers only
        out.append("%s.%s %r %d\n" % (prefix, name, value, timestamp))
    return "".join(out).encode()


def deliver(delivery, ctx):
    global _socket
    data = _lines(delivery, ctx.config)
    if not data:
        return None
    with _lock:  # one connection, lines of one delivery together
        try:
            if _socket is None:
                _socket = ctx.connect(*_target(ctx.config.get("carbon")))
            _socket.sendall(data)
        except PermissionError as e:  # the node's rules: carbon is not named by the configuration
            raise Permanent("carbon: %s" % e)
        except OSError as e:
            if _socket is not None:
                _socket.close()
            _socket = None
            raise Retry("carbon: %s" % e)
    return None
