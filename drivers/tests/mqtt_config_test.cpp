#include <doctest/doctest.h>

#include "flowstate/drivers/mqtt_config.hpp"

using namespace flowstate::drivers::mqtt;

TEST_CASE("an MQTT connection gathers messages for 1ms by default, batchWindow changes it, and a bad one is named") {
  const std::string head = R"({"kind":"mqtt.Subscribe","broker":"mqtt://127.0.0.1:1883","topics":["a/+"])";
  auto plain = parse_subscribe(head + "}");
  REQUIRE(plain.ok());
  CHECK(plain->connection.batch_window_ms == 1);
  auto wider = parse_subscribe(head + R"(,"batchWindow":"20ms"})");
  REQUIRE(wider.ok());
  CHECK(wider->connection.batch_window_ms == 20);
  for (auto off : {R"(0)", R"("0")", R"("0ms")"}) {
    auto c = parse_subscribe(head + R"(,"batchWindow":)" + off + "}");
    REQUIRE_MESSAGE(c.ok(), off);
    CHECK(c->connection.batch_window_ms == 0);
  }
  for (auto bad : {R"("1s")", R"(101)", R"(-1)", R"("soon")", R"(true)"}) {
    auto c = parse_subscribe(head + R"(,"batchWindow":)" + bad + "}");
    REQUIRE_MESSAGE(!c.ok(), bad);
    CHECK(c.error().find("batchWindow: expected a duration from 0ms to 100ms") == 0);
  }
  auto sink = parse_publish(R"({"kind":"mqtt.Publish","broker":"mqtt://127.0.0.1:1883","topic":"t","batchWindow":5})");
  REQUIRE(sink.ok());
  CHECK(sink->connection.batch_window_ms == 5);
  CHECK(
      parse_publish(R"({"broker":"mqtt://127.0.0.1:1883","topic":"t","batchWindw":5})").error().find("batchWindow)") !=
      std::string::npos);
}
