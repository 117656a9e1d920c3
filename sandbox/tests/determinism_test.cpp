// docs/functions.md determinism: a re-run in another worker gives the same
// bytes.
#include <doctest/doctest.h>

#include "test_support.hpp"

using namespace flowstate::sandbox;
using namespace flowstate::sandbox::testing;

TEST_CASE("the same input and state in two different workers give byte-identical outputs and state") {
  const std::string source =
      "export default function (input, state = {log: []}, ctx) {\n"
      "  const entry = {at: Date.now(), date: new Date().toISOString(), r: [Math.random(), Math.random()],\n"
      "                 pick: ['a', 'b', 'c', 'd'][Math.floor(Math.random() * 4)], local: new Date().getHours()};\n"
      "  const log = state.log.concat([entry]);\n"
      "  return {outputs: [entry, {n: log.length, id: ctx.messageId}], state: {log}};\n"
      "}\n";
  const std::string input = R"({"x": 1})", state = R"({"log": [{"at": 1}]})";
  auto first = start_worker();
  auto second = start_worker();
  REQUIRE(first->worker_pid() != second->worker_pid());
  REQUIRE(load(*first, 1, source).empty());
  REQUIRE(load(*second, 1, source).empty());
  // Unrelated calls first in one worker only: earlier calls must not matter.
  for (int i = 0; i < 3; ++i) call(*first, request(1, input, state));
  auto a = call(*first, request(1, input, state));
  auto b = call(*second, request(1, input, state));
  REQUIRE_MESSAGE(a.status == call_status::ok, a.error_message);
  REQUIRE_MESSAGE(b.status == call_status::ok, b.error_message);
  CHECK(a.outputs == b.outputs);
  CHECK(a.state_json == b.state_json);
  CHECK(a.outputs[0].find(R"({"at":1700000000000,"date":"2023-11-14T22:13:20.000Z")") == 0);
}

TEST_CASE("crypto.getRandomValues, crypto.randomUUID and performance.now repeat in another worker") {
  const std::string source =
      "export default function (input, state, ctx) {\n"
      "  const bytes = crypto.getRandomValues(new Uint8Array(12));\n"
      "  const words = crypto.getRandomValues(new Uint32Array(2));\n"
      "  return {output: {bytes: Array.from(bytes), words: Array.from(words), uuid: crypto.randomUUID(),\n"
      "                   now: performance.now(), origin: performance.timeOrigin, random: Math.random()}};\n"
      "}\n";
  auto first = start_worker();
  auto second = start_worker();
  REQUIRE(load(*first, 1, source).empty());
  REQUIRE(load(*second, 1, source).empty());
  for (int i = 0; i < 3; ++i) {
    auto other = request(1, "{}");
    other.ctx.message_id = "other-" + std::to_string(i);
    call(*first, std::move(other));
  }
  auto a = call(*first, request(1, "{}"));
  auto b = call(*second, request(1, "{}"));
  REQUIRE_MESSAGE(a.status == call_status::ok, a.error_message);
  REQUIRE_MESSAGE(b.status == call_status::ok, b.error_message);
  CHECK(a.outputs == b.outputs);
  CHECK_MESSAGE(a.outputs[0].find(R"("now":1700000000000,"origin":0)") != std::string::npos, a.outputs[0]);
  auto uuid_at = a.outputs[0].find(R"("uuid":")");
  REQUIRE(uuid_at != std::string::npos);
  const std::string uuid = a.outputs[0].substr(uuid_at + 8, 36);
  CHECK(uuid[14] == '4');  // version 4
  CHECK(std::string("89ab").find(uuid[19]) != std::string::npos);

  auto other = request(1, "{}");
  other.ctx.message_id = "msg-2";
  auto c = call(*second, std::move(other));
  REQUIRE_MESSAGE(c.status == call_status::ok, c.error_message);
  CHECK(c.outputs[0].find(uuid) == std::string::npos);
}

TEST_CASE("crypto.getRandomValues refuses what is not an integer typed array") {
  auto r = run_once("export default function () { crypto.getRandomValues(new Float64Array(2)); }\n");
  CHECK(r.status == call_status::exception);
  CHECK_MESSAGE(r.error_message.find("expected an integer typed array") != std::string::npos, r.error_message);
}
