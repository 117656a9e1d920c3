#pragma once
// Python run once when the worker starts, as the module `_flowstate_boot`:
// captures print, defines the read-only ctx type, serves the project's
// modules (functions/, vendor/) to imports, and imports what every call
// uses. determinism.hpp then pins the clocks and entropy sources.
namespace flowstate::pyworker {

inline constexpr const char* bootstrap_source = R"PY(
import sys, random, json, traceback, signal, linecache
import importlib.machinery, importlib.util
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

class _ProjectModules:
    """The meta-path finder and loader of the active module set: a dict
    name -> (filename, source bytes, is_package). It comes after the standard
    finders, so the standard library wins over a vendored module of the same
    name. Sources come from memory: the worker cannot read the project."""
    def __init__(self):
        self.modules = {}
    def find_spec(self, name, path=None, target=None):
        entry = self.modules.get(name)
        if entry is None:
            return None
        spec = importlib.machinery.ModuleSpec(name, self, origin=entry[0], is_package=entry[2])
        spec.has_location = True  # __file__ is the project path, as in tracebacks
        return spec
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        filename, source, _ = self.modules[module.__spec__.name]
        exec(compile(source, filename, "exec", dont_inherit=True), module.__dict__)
    def get_source(self, name):
        # linecache asks for it: tracebacks show the lines of vendored files.
        entry = self.modules.get(name)
        if entry is None:
            raise ImportError("no module named " + repr(name), name=name)
        return importlib.util.decode_source(entry[1])
    def is_package(self, name):
        entry = self.modules.get(name)
        return bool(entry and entry[2])
    def filenames(self):
        return {entry[0] for entry in self.modules.values()}

_project_modules = _ProjectModules()
sys.meta_path.append(_project_modules)

def activate(modules):
    """Serves `modules` (None: none) from now on. Every module the previous
    set provided leaves sys.modules, so that changed sources are imported
    again, and leaves the line cache of tracebacks."""
    for name, module in list(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is _project_modules:
            del sys.modules[name]
    for filename in _project_modules.filenames():
        linecache.cache.pop(filename, None)
    _project_modules.modules = modules if modules is not None else {}

def describe_load_error(error, function_file):
    """"file:line: Type: message" for an error of a function's top-level code;
    when it came from a module of the set (a syntax error, or a raise while
    it was imported), that module's file and line follow the function's."""
    own_line = vendored = None
    module_files = _project_modules.filenames()
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename == function_file:
            own_line = frame.lineno
        elif frame.filename in module_files:
            vendored = (frame.filename, frame.lineno)
    if isinstance(error, SyntaxError) and error.filename in module_files:
        vendored = (error.filename, error.lineno)
        message = type(error).__name__ + ": " + str(error.msg)
    else:
        message = format_exception_only(error)
    where = function_file + (":" + str(own_line) if own_line else "") + ": "
    if vendored:
        where += vendored[0] + (":" + str(vendored[1]) if vendored[1] else "") + ": "
    return where + message

def format_exception(error):
    return "".join(traceback.format_exception(error))

def format_exception_only(error):
    return "".join(traceback.format_exception_only(error)).strip()
)PY";

}  // namespace flowstate::pyworker
