#include <doctest/doctest.h>

#include "flowstate/drivers/flow_topics.hpp"
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

TEST_CASE("cron expressions are read, and a bad or impossible one is refused naming its field") {
  using namespace flowstate::drivers;
  CHECK(cron::parse("*/15 9-17 * * mon-fri").ok());
  CHECK(cron::parse("0 0 1,15 jan,jul *").ok());
  CHECK(cron::parse("* * * *").error().find("five fields") != std::string::npos);
  CHECK(cron::parse("60 * * * *").error().find("minute:") == 0);
  CHECK(cron::parse("* 24 * * *").error().find("hour:") == 0);
  CHECK(cron::parse("* * 0 * *").error().find("day of month:") == 0);
  CHECK(cron::parse("* * * foo *").error().find("month:") == 0);
  CHECK(cron::parse("* * * * 8").error().find("day of week:") == 0);
  CHECK(cron::parse("*/0 * * * *").error().find("minute:") == 0);
  CHECK(cron::parse("5-1 * * * *").error().find("minute:") == 0);
  CHECK(cron::parse("0 0 31 2 *").error().find("never fires") != std::string::npos);
  CHECK(parse_cron(R"({"kind":"timer.Cron","cron":"0 * * * *","keys":["a"]})").ok());
  CHECK(parse_cron(R"({"kind":"timer.Cron"})").error().find("cron: missing") == 0);
  CHECK(parse_cron(R"({"cron":"0 * * *"})").error().find("cron: expected five fields") == 0);
  CHECK(parse_cron(R"({"cron":"0 * * * *","every":"1s"})").error().find("unknown field \"every\"") == 0);
}

TEST_CASE("a cron schedule fires on its minutes in UTC; both day fields restricted means either") {
  using namespace flowstate::drivers;
  const int64_t t0 = 1796155200000;  // 2026-12-01T20:00:00Z, a Tuesday
  auto every15 = *cron::parse("*/15 * * * *");
  CHECK(cron::next_after(every15, t0) == t0 + 15 * 60000);
  CHECK(cron::next_after(every15, t0 - 1) == t0);
  auto weekdays9 = *cron::parse("30 9 * * mon-fri");
  CHECK(cron::next_after(weekdays9, t0) == t0 + (13 * 60 + 30) * 60000);  // Wednesday 09:30
  auto friday = *cron::parse("0 12 * * 5");
  CHECK(cron::next_after(friday, t0) == t0 + (3 * 24 * 60 - 8 * 60) * 60000);           // Friday 12:00
  auto first_or_sunday = *cron::parse("0 0 1 * sun");                                   // the 1st, or any Sunday
  CHECK(cron::next_after(first_or_sunday, t0) == t0 + (4 * 24 * 60 + 4 * 60) * 60000);  // Sunday Dec 6
  auto sunday7 = *cron::parse("0 0 * * 7");
  CHECK(cron::next_after(sunday7, t0) == cron::next_after(*cron::parse("0 0 * * 0"), t0));
}

TEST_CASE("a cron timer marks its first sight and then emits the fires it missed, the most recent kept") {
  auto c = *parse_cron(R"({"cron":"* * * * *","catchUp":2})");
  const int64_t t0 = 1796155200000;
  auto first = due(c, 0, t0 + 5000);
  CHECK(first.ticks.empty());
  CHECK(first.mark == t0 + 5000);
  auto later = due(c, t0 + 5000, t0 + 4 * 60000 + 1);  // fires at +1, +2, +3, +4 minutes
  CHECK(later.ticks == std::vector<int64_t>{t0 + 3 * 60000, t0 + 4 * 60000});
  CHECK(later.skipped == 2);
  CHECK(later.mark == t0 + 4 * 60000);
  CHECK(next_tick(c, t0 + 1) == t0 + 60000);
}

TEST_CASE("a flow topic is read, and a bad one is refused naming the field") {
  using flowstate::drivers::flow_topics::parse_topic;
  CHECK(*parse_topic(R"({"kind":"flow.Publish","topic":"alerts/high"})", "flow.Publish") == "alerts/high");
  CHECK(parse_topic(R"({"kind":"flow.Publish"})", "flow.Publish").error().find("topic: missing") == 0);
  CHECK(parse_topic(R"({"topic":"a b"})", "flow.Publish").error().find("topic: expected") == 0);
  CHECK(parse_topic(R"({"topic":""})", "flow.Subscribe").error().find("topic: expected") == 0);
  CHECK(parse_topic(R"({"topic":"a","qos":1})", "flow.Subscribe").error().find("unknown field \"qos\"") == 0);
}

TEST_CASE("cron steps: a huge step is refused, 5/1 runs from 5 on, and a starred day field is not restricted") {
  using namespace flowstate::drivers;
  CHECK(cron::parse("*/4294967295 * * * *").error().find("minute:") == 0);
  CHECK(cron::parse("*/2147483648 * * * *").error().find("minute:") == 0);
  CHECK(cron::parse("*/60 * * * *").error().find("minute:") == 0);
  const int64_t t0 = 1796155200000;  // 2026-12-01T20:00:00Z, a Tuesday
  CHECK(cron::next_after(*cron::parse("5/1 * * * *"), t0 + 5 * 60000) == t0 + 6 * 60000);
  // Mondays on odd days of the month only (Vixie: a starred field makes it "and").
  auto odd_mondays = *cron::parse("0 9 */2 * mon");
  CHECK(cron::next_after(odd_mondays, t0) == t0 + (6 * 24 * 60 - 11 * 60) * 60000);  // Monday Dec 7
}

TEST_CASE("after a change of schedule nothing is caught up") {
  auto every = *parse_interval(R"({"every":"1m"})");
  auto d = due(every, 1796155200000 - 3600000, 1796155200000 + 59000, true);
  CHECK(d.ticks == std::vector<int64_t>{1796155200000});  // the latest only, not the hour missed
  CHECK(d.skipped == 0);
  auto cron = *parse_cron(R"({"cron":"* * * * *"})");
  auto c = due(cron, 1796155200000 - 3600000, 1796155200000 + 59000, true);
  CHECK(c.ticks.empty());
  CHECK(c.mark == 1796155200000 + 59000);
  CHECK(schedule_text(every) == "every 60000");
  CHECK(schedule_text(cron) == "cron * * * * *");
}

TEST_CASE("a cron timer down for two years catches up its most recent fires without visiting every one") {
  auto c = *parse_cron(R"({"cron":"* * * * *","catchUp":3})");
  const int64_t t0 = 1796155200000;
  auto d = due(c, t0 - int64_t{2} * 366 * 86400000, t0);
  CHECK(d.ticks == std::vector<int64_t>{t0 - 120000, t0 - 60000, t0});
  CHECK(d.mark == t0);
}

TEST_CASE("a sparse cron schedule (Feb 1 on a Monday) is found years ahead") {
  using namespace flowstate::drivers;
  auto s = *cron::parse("0 0 */30 2 mon");  // a starred day field: Feb 1 (or 31) that is a Monday
  const int64_t y2028 = 1830297600000;      // 2028-01-01T00:00:00Z
  auto next = cron::next_after(s, y2028);
  REQUIRE(next);
  CHECK(*next == 2148595200000);  // 2038-02-01T00:00:00Z, the first Monday Feb 1 after 2028
}
