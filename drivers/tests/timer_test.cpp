#include <doctest/doctest.h>

#include "flowstate/drivers/timer.hpp"

using namespace flowstate::drivers::timer;

TEST_CASE("a timer.Interval configuration is read, and a bad one is refused naming its field") {
  auto c = parse_interval(R"({"kind":"timer.Interval","every":"10s","keys":["plant-1","plant-2"],"catchUp":3})");
  REQUIRE(c.ok());
  CHECK(c->every_ms == 10000);
  CHECK(c->keys == std::vector<std::string>{"plant-1", "plant-2"});
  CHECK(c->catch_up == 3);
  auto plain = parse_interval(R"({"kind":"timer.Interval","every":500})");
  REQUIRE(plain.ok());
  CHECK(plain->keys == std::vector<std::string>{"tick"});
  CHECK(plain->catch_up == 10);
  CHECK(parse_interval(R"({"kind":"timer.Interval"})").error().find("every: missing") == 0);
  CHECK(parse_interval(R"({"every":"5ms"})").error().find("every:") == 0);
  CHECK(parse_interval(R"({"every":"2d"})").error().find("every:") == 0);
  CHECK(parse_interval(R"({"every":"1s","keys":[]})").error().find("keys:") == 0);
  CHECK(parse_interval(R"({"every":"1s","keys":["a","a"]})").error().find("listed twice") != std::string::npos);
  CHECK(parse_interval(R"({"every":"1s","keys":[3]})").error().find("keys:") == 0);
  CHECK(parse_interval(R"({"every":"1s","catchUp":-1})").error().find("catchUp:") == 0);
  CHECK(parse_interval(R"({"every":"1s","evry":"1s"})").error().find("unknown field \"evry\"") == 0);
}

TEST_CASE("ticks fall on multiples of the interval; a first start emits the latest, a restart the missed ones") {
  interval_config c;
  c.every_ms = 1000;
  c.catch_up = 3;
  auto first = due(c, 0, 12345);
  CHECK(first.ticks == std::vector<int64_t>{12000});
  CHECK(due(c, 12000, 12999).ticks.empty());  // that tick was emitted
  CHECK(due(c, 12000, 13000).ticks == std::vector<int64_t>{13000});
  auto after_restart = due(c, 12000, 15500);
  CHECK(after_restart.ticks == std::vector<int64_t>{13000, 14000, 15000});
  CHECK(after_restart.skipped == 0);
  auto long_down = due(c, 12000, 20100);  // 13000..20000 missed: the last 3 kept
  CHECK(long_down.ticks == std::vector<int64_t>{18000, 19000, 20000});
  CHECK(long_down.skipped == 5);
  CHECK(next_tick(c, 12345) == 13000);
  CHECK(next_tick(c, 13000) == 14000);
}

TEST_CASE("a tick's message names its key and time") {
  CHECK(tick_payload("plant \"1\"", 1796151456000) ==
        R"({"key":"plant \"1\"","tickMs":1796151456000,"tick":"2026-12-01T18:57:36.000Z"})");
}
