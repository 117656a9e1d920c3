#pragma once
// Python run once when the worker starts, as the module `_flowstate_boot`:
// captures print, defines the read-only ctx type, and imports what every call
// uses (random is imported now so that it is seeded per call, never from
// the operating system's entropy at a function's first import).
namespace flowstate::pyworker {

inline constexpr const char* bootstrap_source = R"PY(
import sys, random, json, traceback, signal
import _flowstate

def _on_interrupt(signum, frame):
    # The watchdog's SIGINT: stop the call if it is still over its limit.
    if _flowstate.time_limit_pending():
        raise _flowstate.TimeLimitExceeded("the call exceeded its time limit")

signal.signal(signal.SIGINT, _on_interrupt)

class _CapturedOutput:
    """sys.stdout and sys.stderr: lines go to the call's logs."""
    encoding = "utf-8"
    errors = "strict"
    def write(self, text):
        if not isinstance(text, str):
            raise TypeError("write() argument must be str, not " + type(text).__name__)
        _flowstate.write_log(text)
        return len(text)
    def writelines(self, lines):
        for line in lines:
            self.write(line)
    def flush(self):
        pass
    def isatty(self):
        return False
    def writable(self):
        return True
    def readable(self):
        return False
    def fileno(self):
        raise OSError("print output is captured; it has no file descriptor")

sys.stdout = sys.stderr = sys.__stdout__ = sys.__stderr__ = _CapturedOutput()
sys.stdin = sys.__stdin__ = None

class Context:
    """The read-only ctx argument: ctx.key and ctx["key"] both work."""
    __slots__ = ("key", "flow", "block", "revision", "messageId", "message_id", "time")
    def __init__(self, key, flow, block, revision, message_id, time):
        for name, value in (("key", key), ("flow", flow), ("block", block), ("revision", revision),
                            ("messageId", message_id), ("message_id", message_id), ("time", time)):
            object.__setattr__(self, name, value)
    def __setattr__(self, name, value):
        raise AttributeError("ctx is read-only")
    def __delattr__(self, name):
        raise AttributeError("ctx is read-only")
    def __getitem__(self, name):
        if isinstance(name, str) and name in Context.__slots__:
            return getattr(self, name)
        raise KeyError(name)
    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default
    def __repr__(self):
        return "ctx(" + ", ".join(n + "=" + repr(getattr(self, n)) for n in Context.__slots__ if n != "message_id") + ")"

def format_exception(error):
    return "".join(traceback.format_exception(error))

def format_exception_only(error):
    return "".join(traceback.format_exception_only(error)).strip()
)PY";

}  // namespace flowstate::pyworker
