// flowstate-worker: a function's module scope is fresh for every call and
// globalThis is frozen, so nothing one call or key leaves behind reaches the
// next (docs/functions.md, "What is shared between calls").
#include <doctest/doctest.h>

#include "test_support.hpp"

using namespace flowstate::sandbox;
using namespace flowstate::sandbox::testing;

namespace {

call_result call_as(worker_client& client, const std::string& key, const std::string& message_id) {
  auto r = request(1, "{}");
  r.ctx.key = key;
  r.ctx.message_id = message_id;
  return call(client, std::move(r));
}

}  // namespace

TEST_CASE("a module-level counter and seen-keys list start afresh for every call and key") {
  for (const std::string source : {"let calls = 0;\nconst seen = [];\n"
                                   "export default function (input, state, ctx) {\n"
                                   "  calls++; seen.push(ctx.key);\n"
                                   "  return {output: {calls, seen}};\n"
                                   "}\n",
                                   // A classic script: its top-level names are not globals either.
                                   "var calls = 0;\nvar seen = [];\n"
                                   "function entrypoint(input, state, ctx) {\n"
                                   "  calls++; seen.push(ctx.key);\n"
                                   "  return {output: {calls, seen}};\n"
                                   "}\n",
                                   // Top-level await: the module is compiled again for every call.
                                   "let calls = 0;\nconst seen = [];\nawait null;\n"
                                   "export default function (input, state, ctx) {\n"
                                   "  calls++; seen.push(ctx.key);\n"
                                   "  return {output: {calls, seen}};\n"
                                   "}\n"}) {
    CAPTURE(source);
    auto client = start_worker();
    REQUIRE(load(*client, 1, source).empty());
    auto alice = call_as(*client, "alice", "m-1");
    auto alice_again = call_as(*client, "alice", "m-2");
    auto bob = call_as(*client, "bob", "m-3");
    REQUIRE_MESSAGE(alice.status == call_status::ok, alice.error_message);
    CHECK(alice.outputs[0] == R"({"calls":1,"seen":["alice"]})");
    CHECK(alice_again.outputs[0] == R"({"calls":1,"seen":["alice"]})");
    CHECK(bob.outputs[0] == R"({"calls":1,"seen":["bob"]})");
  }
}

TEST_CASE("globalThis.lastKey set by alice's call is never seen by bob's") {
  auto client = start_worker();
  REQUIRE(load(*client, 1,
               "export default function (input, state, ctx) {\n"
               "  const previous = globalThis.lastKey;\n"
               "  globalThis.lastKey = ctx.key;\n"
               "  return {output: previous === undefined ? null : previous};\n"
               "}\n")
              .empty());
  auto alice = call_as(*client, "alice", "m-1");
  auto bob = call_as(*client, "bob", "m-2");
  // A module is strict code: writing to the frozen global throws.
  CHECK(alice.status == call_status::exception);
  CHECK(bob.status == call_status::exception);
  CHECK_MESSAGE(bob.error_message.find("lastKey") != std::string::npos, bob.error_message);
  for (const auto& output : bob.outputs) CHECK(output.find("alice") == std::string::npos);

  // A classic script is sloppy code: the write is ignored.
  auto sloppy = start_worker();
  REQUIRE(load(*sloppy, 1,
               "function entrypoint(input, state, ctx) {\n"
               "  const previous = globalThis.lastKey;\n"
               "  globalThis.lastKey = ctx.key;\n"
               "  leaked = ctx.key;\n"
               "  return {output: [previous === undefined ? null : previous, typeof leaked]};\n"
               "}\n")
              .empty());
  call_as(*sloppy, "alice", "m-1");
  auto bob_sloppy = call_as(*sloppy, "bob", "m-2");
  REQUIRE_MESSAGE(bob_sloppy.status == call_status::ok, bob_sloppy.error_message);
  CHECK(bob_sloppy.outputs[0] == R"([null,"undefined"])");
}

TEST_CASE("built-ins are frozen: a call cannot leave a value on Math or a prototype") {
  auto client = start_worker();
  REQUIRE(load(*client, 1,
               "export default function (input, state, ctx) {\n"
               "  const previous = [Math.lastKey, Array.prototype.lastKey];\n"
               "  try { Math.lastKey = ctx.key; } catch (e) {}\n"
               "  try { Array.prototype.lastKey = ctx.key; } catch (e) {}\n"
               "  return {output: previous.map((v) => v === undefined ? null : v)};\n"
               "}\n")
              .empty());
  call_as(*client, "alice", "m-1");
  auto bob = call_as(*client, "bob", "m-2");
  REQUIRE_MESSAGE(bob.status == call_status::ok, bob.error_message);
  CHECK(bob.outputs[0] == "[null,null]");
}

TEST_CASE("assigning name, message, toString or constructor on objects still works with frozen prototypes") {
  auto r = run_once(
      "class NotFound extends Error {\n"
      "  constructor(what) { super(what + ' not found'); this.name = 'NotFound'; }\n"
      "}\n"
      "function Legacy() {}\n"
      "Legacy.prototype.toString = function () { return 'legacy'; };\n"
      "export default function () {\n"
      "  const e = new NotFound('key');\n"
      "  const o = {}; o.toString = () => 'own'; o.constructor = 'c';\n"
      "  const plain = new Error(); plain.message = 'set later';\n"
      "  return {output: [String(e), e instanceof Error, String(o), o.constructor, plain.message, String(new "
      "Legacy())]};\n"
      "}\n");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == R"(["NotFound: key not found",true,"own","c","set later","legacy"])");
}

TEST_CASE("top-level code that leaves a Map in globalThis is refused at load, naming it") {
  auto client = start_worker();
  std::string error = load(*client, 1,
                           "globalThis.cache = new Map();\n"
                           "export default function (input) { return {output: cache.size}; }\n");
  CHECK_MESSAGE(error.find("globalThis.cache is a Map") != std::string::npos, error);
}

TEST_CASE("WeakRef, FinalizationRegistry and RegExp's last-match statics are gone") {
  auto client = start_worker();
  REQUIRE(load(*client, 1,
               "export default function (input, state, ctx) {\n"
               "  const seen = [typeof WeakRef, typeof FinalizationRegistry, RegExp.lastMatch === undefined,\n"
               "                RegExp.$1 === undefined];\n"
               "  /(\\w+)/.exec(ctx.key);\n"
               "  return {output: seen};\n"
               "}\n")
              .empty());
  call_as(*client, "alice", "m-1");
  auto bob = call_as(*client, "bob", "m-2");
  REQUIRE_MESSAGE(bob.status == call_status::ok, bob.error_message);
  CHECK(bob.outputs[0] == R"(["undefined","undefined",true,true])");
}

TEST_CASE("top-level code runs with the call's clock and seed") {
  auto client = start_worker();
  REQUIRE(load(*client, 1,
               "const started = Date.now();\n"
               "const first = Math.random();\n"
               "export default function (input, state, ctx) { return {output: [started === ctx.time, first]}; }\n")
              .empty());
  auto a = call_as(*client, "alice", "m-1");
  auto b = call_as(*client, "bob", "m-1");
  auto c = call_as(*client, "bob", "m-2");
  REQUIRE_MESSAGE(a.status == call_status::ok, a.error_message);
  CHECK(a.outputs[0].starts_with("[true,"));
  CHECK(a.outputs == b.outputs);  // same message id: same seed
  CHECK(a.outputs != c.outputs);
}
