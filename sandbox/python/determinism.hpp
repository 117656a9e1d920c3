#pragma once
// Python run once when the worker starts, after the bootstrap, as the module
// `_flowstate_determinism`: every source of time and entropy a function can
// reach from the standard library answers from the call's context, so that
// a re-run of a message gives the same effects in any worker
// (docs/functions.md, "Determinism"). `begin_call` is called before each
// call (and before a function's top-level code runs at load, with time 0).
//   time.time/time_ns/monotonic/perf_counter/clock_gettime (and _ns), and
//   datetime.datetime.now/utcnow/today, datetime.date.today: ctx.time;
//   time.localtime/gmtime/ctime/asctime/strftime without a time: ctx.time;
//   time.process_time/thread_time and the CPU clocks: 0;
//   random (the module's functions): seeded with ctx.messageId;
//   os.urandom, os.getrandom, random.SystemRandom, secrets, uuid.uuid4,
//   uuid.uuid1, random.Random() without a seed: a second stream seeded
//   with ctx.messageId.
namespace flowstate::pyworker {

inline constexpr const char* determinism_source = R"PY(
import sys, os, time, random, operator, datetime as _datetime_module, uuid

os.environ["TZ"] = "UTC"
time.tzset()

_clock_ms = 0
_message_id = ""
_entropy_generator = random.Random(0)
_entropy_seeded = True

def begin_call(message_id, time_ms):
    """Pins the clock to `time_ms` and seeds both random streams with `message_id`."""
    global _clock_ms, _message_id, _entropy_seeded, _uuid1_last
    _clock_ms = time_ms
    random.seed(message_id)
    _message_id = message_id
    _entropy_seeded = False  # seeded at its first use: seeding costs as much as a small call
    _uuid1_last = None

def _entropy():
    global _entropy_seeded
    if not _entropy_seeded:
        _entropy_generator.seed("entropy " + _message_id)
        _entropy_seeded = True
    return _entropy_generator

# --- time --------------------------------------------------------------------
_real_localtime, _real_gmtime = time.localtime, time.gmtime
_real_asctime, _real_strftime = time.asctime, time.strftime
_cpu_clocks = {getattr(time, name) for name in ("CLOCK_PROCESS_CPUTIME_ID", "CLOCK_THREAD_CPUTIME_ID")
               if hasattr(time, name)}

def _seconds():
    return _clock_ms / 1000

def _nanoseconds():
    return _clock_ms * 1000000

def _time():
    return _seconds()

def _time_ns():
    return _nanoseconds()

def _cpu_time():
    return 0.0

def _cpu_time_ns():
    return 0

def _clock_gettime(clock_id):
    return 0.0 if clock_id in _cpu_clocks else _seconds()

def _clock_gettime_ns(clock_id):
    return 0 if clock_id in _cpu_clocks else _nanoseconds()

def _localtime(secs=None):
    return _real_localtime(_seconds() if secs is None else secs)

def _gmtime(secs=None):
    return _real_gmtime(_seconds() if secs is None else secs)

def _ctime(secs=None):
    return _real_asctime(_real_localtime(_seconds() if secs is None else secs))

def _asctime(t=None):
    return _real_asctime(_real_localtime(_seconds()) if t is None else t)

def _strftime(format, t=None):
    return _real_strftime(format, _real_localtime(_seconds()) if t is None else t)

for _name, _function in (("time", _time), ("time_ns", _time_ns), ("monotonic", _time),
                         ("monotonic_ns", _time_ns), ("perf_counter", _time), ("perf_counter_ns", _time_ns),
                         ("process_time", _cpu_time), ("process_time_ns", _cpu_time_ns),
                         ("thread_time", _cpu_time), ("thread_time_ns", _cpu_time_ns),
                         ("clock_gettime", _clock_gettime), ("clock_gettime_ns", _clock_gettime_ns),
                         ("localtime", _localtime), ("gmtime", _gmtime), ("ctime", _ctime),
                         ("asctime", _asctime), ("strftime", _strftime)):
    if hasattr(time, _name):
        _function.__name__ = _function.__qualname__ = _name
        _function.__module__ = "time"
        setattr(time, _name, _function)

# --- datetime: subclasses of the C types whose "now" is the call's time -------
_RealDate, _RealDatetime = _datetime_module.date, _datetime_module.datetime

class date(_RealDate):
    __slots__ = ()
    @classmethod
    def today(cls):
        return cls.fromtimestamp(_seconds())
    def __repr__(self):
        return "datetime." + _RealDate.__repr__(self)

class datetime(_RealDatetime, date):
    __slots__ = ()
    @classmethod
    def now(cls, tz=None):
        return cls.fromtimestamp(_seconds(), tz)
    @classmethod
    def utcnow(cls):
        return cls.utcfromtimestamp(_seconds())
    @classmethod
    def today(cls):
        return cls.fromtimestamp(_seconds())
    def date(self):
        return date(self.year, self.month, self.day)
    def __repr__(self):
        return "datetime." + _RealDatetime.__repr__(self)

for _class in (date, datetime):
    _class.__module__ = "datetime"
date.min, date.max = date(1, 1, 1), date(9999, 12, 31)
datetime.min = datetime(1, 1, 1)
datetime.max = datetime(9999, 12, 31, 23, 59, 59, 999999)
_datetime_module.date, _datetime_module.datetime = date, datetime

# --- entropy -----------------------------------------------------------------
def _urandom(size):
    size = operator.index(size)
    if size < 0:
        raise ValueError("negative argument not allowed")
    return _entropy().randbytes(size)

def _getrandom(size, flags=0):
    return _urandom(size)

_urandom.__name__ = _urandom.__qualname__ = "urandom"
_getrandom.__name__ = _getrandom.__qualname__ = "getrandom"
os.urandom = _urandom
if hasattr(os, "getrandom"):
    os.getrandom = _getrandom
random._urandom = _urandom  # random.SystemRandom, and through it secrets

_real_random_seed = random.Random.seed

def _random_seed(self, a=None, version=2):
    # A Random() made without a seed would read the operating system's entropy.
    _real_random_seed(self, _entropy().getrandbits(128) if a is None else a, version)

random.Random.seed = _random_seed

_uuid1_last = None

def _uuid1(node=None, clock_seq=None):
    """uuid.uuid1 with the call's time; node and clock_seq from the seeded stream."""
    global _uuid1_last
    timestamp = _nanoseconds() // 100 + 0x01b21dd213814000
    if _uuid1_last is not None and timestamp <= _uuid1_last:
        timestamp = _uuid1_last + 1
    _uuid1_last = timestamp
    if clock_seq is None:
        clock_seq = _entropy().getrandbits(14)
    if node is None:
        node = _entropy().getrandbits(48) | (1 << 40)  # multicast bit: not a real MAC (RFC 4122 4.5)
    time_low = timestamp & 0xffffffff
    time_mid = (timestamp >> 32) & 0xffff
    time_hi_version = (timestamp >> 48) & 0x0fff
    clock_seq_low = clock_seq & 0xff
    clock_seq_hi_variant = (clock_seq >> 8) & 0x3f
    return uuid.UUID(fields=(time_low, time_mid, time_hi_version, clock_seq_hi_variant, clock_seq_low, node),
                     version=1)

_uuid1.__name__ = _uuid1.__qualname__ = "uuid1"
uuid.uuid1 = _uuid1
)PY";

}  // namespace flowstate::pyworker
