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
