// flowstate-pyworker: a re-run of a message gives the same effects in any
// worker (every clock and entropy source answers from ctx), and nothing one
// call leaves in its module's globals reaches another call or key.
#include <doctest/doctest.h>

#include <string>

#include "python_test_support.hpp"

using namespace flowstate::sandbox;
using namespace flowstate::sandbox::python_testing;

namespace {

const char* const clocks_and_entropy =
    "import time, datetime, uuid, os, secrets, random\n"
    "def entrypoint(input, state, ctx):\n"
    "    return {'output': {\n"
    "        'time': time.time(), 'time_ns': time.time_ns(), 'monotonic': time.monotonic(),\n"
    "        'monotonic_ns': time.monotonic_ns(), 'perf_counter': time.perf_counter(),\n"
    "        'perf_counter_ns': time.perf_counter_ns(), 'process_time': time.process_time(),\n"
    "        'clock_gettime': time.clock_gettime(time.CLOCK_REALTIME),\n"
    "        'localtime': list(time.localtime())[:6], 'strftime': time.strftime('%Y-%m-%d %H:%M:%S'),\n"
    "        'ctime': time.ctime(),\n"
    "        'now': datetime.datetime.now().isoformat(), 'utcnow': datetime.datetime.utcnow().isoformat(),\n"
    "        'now_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(),\n"
    "        'datetime_today': datetime.datetime.today().isoformat(), 'today': datetime.date.today().isoformat(),\n"
    "        'uuid4': str(uuid.uuid4()), 'uuid1': str(uuid.uuid1()), 'urandom': os.urandom(8).hex(),\n"
    "        'token': secrets.token_hex(8), 'choice': secrets.choice('abcdefghijklmnop'),\n"
    "        'randbelow': secrets.randbelow(1000000), 'system_random': random.SystemRandom().random(),\n"
    "        'unseeded_random': random.Random().random(), 'random': random.random(),\n"
    "    }}\n";

}  // namespace

TEST_CASE("Python clocks, datetime, uuid, os.urandom, secrets and SystemRandom repeat in another worker") {
  auto first = start_python();
  auto second = start_python();
  REQUIRE(first->worker_pid() != second->worker_pid());
  REQUIRE(load(*first, 1, clocks_and_entropy).empty());
  REQUIRE(load(*second, 1, clocks_and_entropy).empty());
  // Other messages first in one worker only: earlier calls must not matter.
  for (int i = 0; i < 3; ++i) call(*first, 1, "{}", std::nullopt, "other-" + std::to_string(i));
  auto a = call(*first, 1, "{}");
  auto b = call(*second, 1, "{}");
  REQUIRE_MESSAGE(a.status == call_status::ok, a.error_message);
  REQUIRE_MESSAGE(b.status == call_status::ok, b.error_message);
  CHECK(a.outputs == b.outputs);
  const std::string& out = a.outputs[0];
  // ctx.time is 1700000000000 ms: 2023-11-14 22:13:20 UTC.
  for (const char* expected :
       {R"("time":1700000000.0)", R"("time_ns":1700000000000000000)", R"("monotonic":1700000000.0)",
        R"("monotonic_ns":1700000000000000000)", R"("perf_counter":1700000000.0)",
        R"("perf_counter_ns":1700000000000000000)", R"("process_time":0.0)", R"("clock_gettime":1700000000.0)",
        R"("localtime":[2023,11,14,22,13,20])", R"("strftime":"2023-11-14 22:13:20")",
        R"("ctime":"Tue Nov 14 22:13:20 2023")", R"("now":"2023-11-14T22:13:20")", R"("utcnow":"2023-11-14T22:13:20")",
        R"("now_utc":"2023-11-14T22:13:20+00:00")", R"("datetime_today":"2023-11-14T22:13:20")",
        R"("today":"2023-11-14")"})
    CHECK_MESSAGE(out.find(expected) != std::string::npos, expected, " in ", out);

  // Seeded by the message id, not constant.
  auto other = call(*second, 1, "{}", std::nullopt, "msg-2");
  REQUIRE_MESSAGE(other.status == call_status::ok, other.error_message);
  for (const char* field : {"\"uuid4\":", "\"urandom\":", "\"token\":", "\"system_random\":", "\"unseeded_random\":"}) {
    auto value_of = [&](const std::string& text) {
      auto at = text.find(field);
      return at == std::string::npos ? std::string() : text.substr(at, text.find(',', at) - at);
    };
    CHECK_MESSAGE(value_of(out) != value_of(other.outputs[0]), field);
  }
}

TEST_CASE("datetime values from the pinned clock are ordinary datetime and date values") {
  auto r = run_once(
      "import datetime, pickle\n"
      "from datetime import datetime as dt, date, timedelta, timezone\n"
      "def entrypoint(input, state):\n"
      "    now = dt.now()\n"
      "    later = now + timedelta(days=1)\n"
      "    return {'output': [isinstance(now, date), type(later) is dt, now.date() == date.today(),\n"
      "                       isinstance(now.date(), date), pickle.loads(pickle.dumps(now)) == now,\n"
      "                       repr(now), dt.fromisoformat('2020-01-02').year, isinstance(dt.min, dt),\n"
      "                       dt.now(timezone.utc).timestamp()]}\n");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] ==
        R"x([true,true,true,true,true,"datetime.datetime(2023, 11, 14, 22, 13, 20)",2020,true,1700000000.0])x");
}

TEST_CASE("a Python module-level counter and seen-keys list start afresh for every call and key") {
  auto client = start_python();
  REQUIRE(load(*client, 1,
               "calls = 0\n"
               "seen = []\n"
               "def entrypoint(input, state, ctx):\n"
               "    global calls\n"
               "    calls += 1\n"
               "    seen.append(ctx.key)\n"
               "    return {'output': {'calls': calls, 'seen': seen}}\n")
              .empty());
  auto alice = call(*client, 1, "{}", std::nullopt, "m-1", "alice");
  auto alice_again = call(*client, 1, "{}", std::nullopt, "m-2", "alice");
  auto bob = call(*client, 1, "{}", std::nullopt, "m-3", "bob");
  REQUIRE_MESSAGE(alice.status == call_status::ok, alice.error_message);
  CHECK(alice.outputs[0] == R"({"calls":1,"seen":["alice"]})");
  CHECK(alice_again.outputs[0] == R"({"calls":1,"seen":["alice"]})");
  CHECK(bob.outputs[0] == R"({"calls":1,"seen":["bob"]})");
}

TEST_CASE("a Python global set by one key's call is not seen by the next key's call") {
  auto client = start_python();
  REQUIRE(load(*client, 1,
               "def entrypoint(input, state, ctx):\n"
               "    global last_key\n"
               "    previous = globals().get('last_key')\n"
               "    last_key = ctx.key\n"
               "    return {'output': previous}\n")
              .empty());
  auto alice = call(*client, 1, "{}", std::nullopt, "m-1", "alice");
  auto bob = call(*client, 1, "{}", std::nullopt, "m-2", "bob");
  REQUIRE_MESSAGE(bob.status == call_status::ok, bob.error_message);
  CHECK(alice.outputs[0] == "null");
  CHECK(bob.outputs[0] == "null");
}

TEST_CASE("Python top-level code runs with the call's ctx time and seed, and its errors are the call's") {
  auto client = start_python();
  REQUIRE(load(*client, 1,
               "import time, random\n"
               "STARTED = time.time()\n"
               "FIRST = random.random()\n"
               "def entrypoint(input, state, ctx):\n"
               "    return {'output': [STARTED, FIRST == random.Random(ctx.messageId).random()]}\n")
              .empty());
  auto r = call(*client, 1, "{}");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == "[1700000000.0,true]");
}

TEST_CASE("classes, dataclasses and enums defined in the function file work in the fresh namespace") {
  auto r = run_once(
      "from __future__ import annotations\n"
      "import dataclasses, enum, typing\n"
      "class Colour(enum.Enum):\n"
      "    RED = 1\n"
      "@dataclasses.dataclass\n"
      "class Item:\n"
      "    name: str\n"
      "    tags: typing.ClassVar[list] = []\n"
      "    colour: Colour = Colour.RED\n"
      "def entrypoint(input, state):\n"
      "    item = dataclasses.replace(Item('b'), name='a')\n"
      "    return {'output': [item.name, item.colour.name, typing.get_type_hints(Item)['name'].__name__]}\n");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == R"(["a","RED","str"])");
}
