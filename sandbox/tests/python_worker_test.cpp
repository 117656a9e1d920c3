// flowstate-pyworker through the real client, isolated: the function
// contract of docs/functions.md for Python.
#include <doctest/doctest.h>

#include <signal.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "python_test_support.hpp"

using namespace flowstate::sandbox;
using namespace flowstate::sandbox::python_testing;

TEST_CASE("a Python counter gets input, state and ctx and returns output and state") {
  auto r = run_once(
      "def entrypoint(input, state, ctx):\n"
      "    state = state or {'count': 0}\n"
      "    state['count'] += input['body']['by']\n"
      "    return {'output': {'status': 200, 'body': {'count': state['count'], 'key': ctx.key, 'id': ctx['messageId'],"
      " 'time': ctx.time}}, 'state': state}\n",
      R"({"body": {"by": 2}})", R"({"count": 40})");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == R"({"status":200,"body":{"count":42,"key":"k1","id":"msg-1","time":1700000000000}})");
  CHECK(r.state == state_change::set);
  CHECK(r.state_json == R"({"count":42})");
}

TEST_CASE("a two-argument entrypoint is called without ctx, and a missing state is None") {
  auto r =
      run_once("def entrypoint(input, state):\n    return {'output': [input, state]}\n", R"({"a": [1, 2.5, null]})");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == R"([{"a":[1,2.5,null]},null])");
}

TEST_CASE("the return shapes of the contract: outputs, filter, tuple, deleting state") {
  auto client = start_python();
  REQUIRE(load(*client, 1, "def entrypoint(i, s):\n    return {'outputs': [1, 'two', {'three': 3}]}\n").empty());
  REQUIRE(load(*client, 2, "def entrypoint(i, s):\n    return None\n").empty());
  REQUIRE(load(*client, 3, "def entrypoint(i, s):\n    return {'n': 1}, {'seen': True}\n").empty());
  REQUIRE(load(*client, 4, "def entrypoint(i, s):\n    return 'out', None\n").empty());
  REQUIRE(load(*client, 5, "def entrypoint(i, s):\n    return {'state': None}\n").empty());
  REQUIRE(load(*client, 6, "def entrypoint(i, s):\n    return {}\n").empty());
  REQUIRE(load(*client, 7, "def entrypoint(i, s):\n    return None, {'only': 'state'}\n").empty());
  auto r = call(*client, 1, "{}");
  REQUIRE(r.outputs.size() == 3);
  CHECK(r.outputs[1] == R"("two")");
  r = call(*client, 2, "{}", R"({"x":1})");
  CHECK((r.status == call_status::ok && r.outputs.empty() && r.state == state_change::unchanged));
  r = call(*client, 3, "{}");
  CHECK(r.outputs[0] == R"({"n":1})");
  CHECK(r.state_json == R"({"seen":true})");
  r = call(*client, 4, "{}", R"({"x":1})");
  CHECK(r.outputs[0] == R"("out")");
  CHECK(r.state == state_change::erase);
  r = call(*client, 5, "{}", R"({"x":1})");
  CHECK((r.outputs.empty() && r.state == state_change::erase));
  r = call(*client, 6, "{}", R"({"x":1})");
  CHECK((r.status == call_status::ok && r.outputs.empty() && r.state == state_change::unchanged));
  r = call(*client, 7, "{}");
  CHECK((r.outputs.empty() && r.state_json == R"({"only":"state"})"));
}

TEST_CASE("wrong shapes and values with no JSON form are Exception errors saying what came") {
  check_exception(run_once("def entrypoint(i, s):\n    return [1, 2]\n"), "got a list");
  check_exception(run_once("def entrypoint(i, s):\n    return {'output': 1, 'outputs': [2]}\n"),
                  R"(got both "output" and "outputs")");
  check_exception(run_once("def entrypoint(i, s):\n    return {'result': 1}\n"), R"(got a dict with the key "result")");
  check_exception(run_once("def entrypoint(i, s):\n    return (1, 2, 3)\n"), "got a tuple of 3 items");
  check_exception(run_once("def entrypoint(i, s):\n    return {'output': float('inf')}\n"), "Infinity at output");
  check_exception(run_once("def entrypoint(i, s):\n    return {'output': {'a': {1, 2}}}\n"), "a set at output.a");
  check_exception(run_once("def entrypoint(i, s):\n    return {'state': {'b': b'x'}}\n"), "a bytes at state.b");
  check_exception(run_once("def entrypoint(i, s):\n    return {'outputs': 5}\n"),
                  "\"outputs\" must be a list, got an int");
  check_exception(run_once("def entrypoint(i, s):\n    return {'output': {'n': [2 ** 64]}}\n"),
                  "an int beyond 64 bits (below -2^63 or above 2^64-1): send it as a str, or as a float if an "
                  "approximation will do at output.n[0]");
  check_exception(run_once("def entrypoint(i, s):\n    return {'state': -2 ** 63 - 1}\n"), "an int beyond 64 bits");
}

TEST_CASE("ints up to 2^64-1 and down to -2^63 are written exactly") {
  auto r = run_once("def entrypoint(i, s):\n    return {'output': [2 ** 64 - 1, -2 ** 63, 2 ** 63]}\n");
  CHECK(r.status == call_status::ok);
  REQUIRE(r.outputs.size() == 1);
  CHECK(r.outputs[0] == "[18446744073709551615,-9223372036854775808,9223372036854775808]");
}

TEST_CASE("a raised exception is an Exception error with its traceback in the details") {
  auto r = run_once(
      "def helper(x):\n    raise ValueError('bad value ' + str(x))\n"
      "def entrypoint(input, state):\n    return helper(input['x'])\n",
      R"({"x": 7})");
  check_exception(r, "ValueError: bad value 7");
  CHECK_MESSAGE(r.error_details_json.find(R"(\"functions/f.py\", line 2, in helper)") != std::string::npos,
                r.error_details_json);
  CHECK(r.error_details_json.rfind(R"({"traceback":)", 0) == 0);
}

TEST_CASE("random is seeded from the message id and string hashing does not vary") {
  auto client = start_python();
  REQUIRE(
      load(*client, 1, "import random\ndef entrypoint(i, s):\n    return {'output': [random.random(), hash('abc')]}\n")
          .empty());
  auto a = call(*client, 1, "{}", std::nullopt, "m-1");
  auto b = call(*client, 1, "{}", std::nullopt, "m-2");
  auto c = call(*client, 1, "{}", std::nullopt, "m-1");
  auto fresh = start_python();
  REQUIRE(
      load(*fresh, 1, "import random\ndef entrypoint(i, s):\n    return {'output': [random.random(), hash('abc')]}\n")
          .empty());
  auto d = call(*fresh, 1, "{}", std::nullopt, "m-1");
  REQUIRE(a.status == call_status::ok);
  CHECK(a.outputs[0] == c.outputs[0]);
  CHECK(a.outputs[0] == d.outputs[0]);
  CHECK(a.outputs[0] != b.outputs[0]);
}

TEST_CASE("print is captured into the call's logs") {
  auto r = run_once(
      "import sys\ndef entrypoint(i, s):\n    print('hello', 42)\n    print('a', end='')\n"
      "    print('b')\n    sys.stderr.write('warn\\n')\n    return None\n");
  REQUIRE(r.status == call_status::ok);
  REQUIRE(r.logs.size() == 3);
  CHECK(r.logs[0] == "hello 42");
  CHECK(r.logs[1] == "ab");
  CHECK(r.logs[2] == "warn");
}

TEST_CASE("a syntax error or a missing entrypoint refuses the load with file and line") {
  auto client = start_python();
  std::string error = load(*client, 1, "def entrypoint(i, s):\n    return {'output': (}\n");
  CHECK_MESSAGE(error.find("functions/f.py:2: SyntaxError") != std::string::npos, error);
  error = load(*client, 2, "def main(i, s):\n    return None\n");
  CHECK_MESSAGE(error.find("expected `def entrypoint(input, state[, ctx])`, found none") != std::string::npos, error);
  error = load(*client, 3, "x = 1\nraise RuntimeError('at import')\ndef entrypoint(i, s): pass\n");
  CHECK_MESSAGE(error.find("functions/f.py:2: RuntimeError: at import") != std::string::npos, error);
  CHECK(call(*client, 1, "{}").status == call_status::not_loaded);
}

TEST_CASE("a call past its time limit is a Timeout and the function answers again afterwards") {
  auto client = start_python(300);
  REQUIRE(load(*client, 1,
               "def entrypoint(i, s):\n    if i.get('spin'):\n        while True:\n            pass\n"
               "    return {'output': 'fine'}\n")
              .empty());
  auto r = call(*client, 1, R"({"spin": true})");
  CHECK(r.status == call_status::timeout);
  CHECK_MESSAGE(r.error_message.find("time limit of 300 ms") != std::string::npos, r.error_message);
  r = call(*client, 1, "{}");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == R"("fine")");
}

TEST_CASE("standard library modules import inside the sandbox") {
  auto r = run_once(
      "import json, re, datetime, decimal, collections, itertools, math, hashlib, dataclasses\n"
      "@dataclasses.dataclass\nclass P:\n    x: int\n"
      "def entrypoint(i, s):\n"
      "    return {'output': [hashlib.sha256(b'a').hexdigest()[:8], str(decimal.Decimal('1.10')),"
      " P(3).x, math.isqrt(17)]}\n");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == R"(["ca978112","1.10",3,4])");
}

TEST_CASE("a function imports from its module set, and each set's functions see that set's version of a module") {
  auto client = start_python();
  REQUIRE(load_modules(*client, 10, {{"helpers", "functions/helpers.py", "VALUE = 'one'\n", false}}).empty());
  REQUIRE(load_modules(*client, 11, {{"helpers", "functions/helpers.py", "VALUE = 'two'\n", false}}).empty());
  REQUIRE(load(*client, 1, uses_helpers, 10).empty());
  REQUIRE(load(*client, 2, uses_helpers, 11).empty());
  // A lazy import at call time sees the active set too.
  const char* lazy = "def entrypoint(i, s):\n    import helpers\n    return {'output': helpers.VALUE}\n";
  REQUIRE(load(*client, 3, lazy, 10).empty());
  REQUIRE(load(*client, 4, lazy, 11).empty());
  for (int round = 0; round < 2; ++round) {
    CHECK(call(*client, 1, "{}").outputs == std::vector<std::string>{R"("one")"});
    CHECK(call(*client, 2, "{}").outputs == std::vector<std::string>{R"("two")"});
    CHECK(call(*client, 3, "{}").outputs == std::vector<std::string>{R"("one")"});
    CHECK(call(*client, 4, "{}").outputs == std::vector<std::string>{R"("two")"});
  }
}

TEST_CASE("packages, submodules, relative imports and namespace folders of a module set import") {
  auto client = start_python();
  REQUIRE(load_modules(*client, 10,
                       {{"pkg", "vendor/pkg/__init__.py", "from .core import twice\n", true},
                        {"pkg.core", "vendor/pkg/core.py", "def twice(x):\n    return 2 * x\n", false},
                        {"ns", "functions/ns", "", true},
                        {"ns.deep", "functions/ns/deep.py", "from pkg import twice\nN = twice(21)\n", false}})
              .empty());
  REQUIRE(load(*client, 1,
               "import pkg, pkg.core\nfrom ns.deep import N\n"
               "def entrypoint(i, s):\n    return {'output': [pkg.twice(2), N, pkg.core.__file__]}\n",
               10)
              .empty());
  auto r = call(*client, 1, "{}");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == R"([4,42,"vendor/pkg/core.py"])");
}

TEST_CASE("a broken module of a set fails the load naming its file and line, and a lazy import of it is an Exception") {
  auto client = start_python();
  REQUIRE(load_modules(*client, 10,
                       {{"broken", "vendor/broken.py", "x = 1\ny = 2\ndef (:\n", false},
                        {"raises", "functions/raises.py", "A = 1\nraise ValueError('no')\n", false}})
              .empty());
  std::string error = load(*client, 1, "import broken\ndef entrypoint(i, s): pass\n", 10);
  CHECK_MESSAGE(error == "functions/f.py:1: vendor/broken.py:3: SyntaxError: invalid syntax", error);
  error = load(*client, 2, "\nimport raises\ndef entrypoint(i, s): pass\n", 10);
  CHECK_MESSAGE(error == "functions/f.py:2: functions/raises.py:2: ValueError: no", error);
  REQUIRE(load(*client, 3, "def entrypoint(i, s):\n    import raises\n", 10).empty());
  auto r = call(*client, 3, "{}");
  check_exception(r, "ValueError: no");
  CHECK_MESSAGE(r.error_details_json.find(R"(File \"functions/raises.py\", line 2)") != std::string::npos,
                r.error_details_json);
  CHECK_MESSAGE(r.error_details_json.find("raise ValueError('no')") != std::string::npos, r.error_details_json);
}

TEST_CASE("the standard library wins over a module of the same name in a set") {
  auto client = start_python();
  REQUIRE(
      load_modules(*client, 10, {{"json", "vendor/json.py", "raise ImportError('vendored json')\n", false}}).empty());
  REQUIRE(load(*client, 1, "import json\ndef entrypoint(i, s):\n    return {'output': json.dumps([1])}\n", 10).empty());
  auto r = call(*client, 1, "{}");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == R"("[1]")");
}

TEST_CASE("a worker that replaces a killed one gets the module set again before the function") {
  auto client = start_python();
  REQUIRE(load_modules(*client, 10, {{"helpers", "functions/helpers.py", "VALUE = 'one'\n", false}}).empty());
  REQUIRE(load(*client, 1, uses_helpers, 10).empty());
  CHECK(call(*client, 1, "{}").outputs == std::vector<std::string>{R"("one")"});
  pid_t first = client->worker_pid();
  REQUIRE(first > 0);
  ::kill(first, SIGKILL);
  // The first worker is replaced as soon as its death is seen, with nothing loaded.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (client->worker_pid() == first && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  REQUIRE(client->worker_pid() != first);
  auto r = call(*client, 1, "{}");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs == std::vector<std::string>{R"("one")"});
}

TEST_CASE("unloading a module set leaves its functions' later loads with a clear error") {
  auto client = start_python();
  REQUIRE(load_modules(*client, 10, {{"helpers", "functions/helpers.py", "VALUE = 'one'\n", false}}).empty());
  client->unload(10);
  std::string error = load(*client, 1, uses_helpers, 10);
  CHECK_MESSAGE(error == "functions/f.py: its module set 10 is not loaded", error);
}
