// One test per row of the return-shape table (docs/functions.md).
#include <doctest/doctest.h>

#include "test_support.hpp"

using namespace flowstate::sandbox;
using namespace flowstate::sandbox::testing;

namespace {
call_result returning(const std::string& expression) {
  return run_once("export default function (input, state) { return " + expression + "; }");
}
void check_exception(const call_result& r, const std::string& fragment) {
  CHECK(r.status == call_status::exception);
  CHECK_MESSAGE(r.error_message.find(fragment) != std::string::npos, r.error_message);
  CHECK(r.outputs.empty());
  CHECK(r.state == state_change::unchanged);
}
}  // namespace

TEST_CASE("returning {output: v} sends one message on") {
  auto r = returning("{output: {a: 1, b: [true, null, 'x']}}");
  REQUIRE(r.status == call_status::ok);
  REQUIRE(r.outputs.size() == 1);
  CHECK(r.outputs[0] == R"({"a":1,"b":[true,null,"x"]})");
  CHECK(r.state == state_change::unchanged);
}

TEST_CASE("returning {outputs: [..]} sends several messages in order") {
  auto r = returning("{outputs: [1, 'two', {three: 3}]}");
  REQUIRE(r.status == call_status::ok);
  REQUIRE(r.outputs.size() == 3);
  CHECK(r.outputs[0] == "1");
  CHECK(r.outputs[1] == "\"two\"");
  CHECK(r.outputs[2] == R"({"three":3})");
}

TEST_CASE("returning {state: s} sets the state and sends nothing") {
  auto r = returning("{state: {count: 2}}");
  REQUIRE(r.status == call_status::ok);
  CHECK(r.outputs.empty());
  CHECK(r.state == state_change::set);
  CHECK(r.state_json == R"({"count":2})");
}

TEST_CASE("returning state: null deletes the state") {
  auto r = returning("{output: 1, state: null}");
  REQUIRE(r.status == call_status::ok);
  CHECK(r.outputs.size() == 1);
  CHECK(r.state == state_change::erase);
}

TEST_CASE("without a state key the state is unchanged") {
  auto r = returning("{output: 'x'}");
  REQUIRE(r.status == call_status::ok);
  CHECK(r.state == state_change::unchanged);
}

TEST_CASE("without output or outputs nothing flows on") {
  auto r = returning("{state: 5}");
  REQUIRE(r.status == call_status::ok);
  CHECK(r.outputs.empty());
  CHECK(r.state == state_change::set);
}

TEST_CASE("returning undefined or {} is a filter that leaves the state unchanged") {
  for (const char* expression : {"undefined", "{}"}) {
    auto r = returning(expression);
    REQUIRE(r.status == call_status::ok);
    CHECK(r.outputs.empty());
    CHECK(r.state == state_change::unchanged);
  }
}

TEST_CASE("returning both output and outputs is an exception") {
  check_exception(returning("{output: 1, outputs: [2]}"), R"(both "output" and "outputs")");
}

TEST_CASE("returning any other key is an exception naming the key") {
  check_exception(returning("{output: 1, outptus: [2]}"), R"(got an object with the key "outptus")");
}

TEST_CASE("returning a non-object is an exception saying what came") {
  check_exception(returning("42"), R"(expected an object with "output", "outputs" and/or "state", got a number)");
  check_exception(returning("'text'"), "got a string");
  check_exception(returning("[1, 2]"), "got an array");
  check_exception(returning("null"), "got null");
}

TEST_CASE("outputs that is not an array is an exception") {
  check_exception(returning("{outputs: {a: 1}}"), R"("outputs" must be an array, got an object)");
}

TEST_CASE("NaN and Infinity anywhere are exceptions with their path") {
  check_exception(returning("{output: {body: {x: NaN}}}"), "output contains NaN at /body/x");
  check_exception(returning("{outputs: [1, {a: [0, Infinity]}]}"), "outputs[1] contains Infinity at /a/1");
  check_exception(returning("{state: {n: -Infinity}}"), "state contains -Infinity at /n");
}

TEST_CASE("BigInt, functions and symbols are exceptions") {
  check_exception(returning("{output: {n: 10n}}"), "output contains a BigInt at /n");
  check_exception(returning("{output: {f() {}}}"), "output contains a function at /f");
  check_exception(returning("{state: {s: Symbol('x')}}"), "state contains a symbol at /s");
}

TEST_CASE("cycles are exceptions") {
  auto r = run_once("export default function () { const a = {b: {}}; a.b.a = a; return {output: a}; }");
  check_exception(r, "output contains a cycle at /b/a");
}

TEST_CASE("undefined in an array is an exception, an undefined property is absent") {
  check_exception(returning("{output: [1, undefined]}"), "output contains undefined at /1");
  auto r = returning("{output: {a: 1, b: undefined}}");
  REQUIRE(r.status == call_status::ok);
  CHECK(r.outputs[0] == R"({"a":1})");
}
