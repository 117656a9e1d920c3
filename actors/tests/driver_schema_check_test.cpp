#include <doctest/doctest.h>

#include "../src/driver_schema_check.hpp"
#include "flowstate/drivers/config_schemas.hpp"

using flowstate::engine_detail::config_schema_problems;
using flowstate::engine_detail::yaml_line_of;

TEST_CASE("the line of a JSON pointer in a YAML file is found by its keys and list items") {
  const char* yaml =
      "# a comment\n"
      "kind: mqtt.Subscribe\n"
      "broker: mqtt://127.0.0.1:1883\n"
      "topics:\n"
      "  - devices/+/a\n"
      "  - devices/+/b\n"
      "routes:\n"
      "  - method: GET\n"
      "    path: /x\n"
      "  - method: POST\n"
      "    path: /y\n"
      "retry:\n"
      "  attempts: 3\n";
  CHECK(yaml_line_of(yaml, "") == 1);
  CHECK(yaml_line_of(yaml, "/broker") == 3);
  CHECK(yaml_line_of(yaml, "/topics/1") == 6);
  CHECK(yaml_line_of(yaml, "/routes/1/path") == 11);
  CHECK(yaml_line_of(yaml, "/routes/0/method") == 8);
  CHECK(yaml_line_of(yaml, "/retry/attempts") == 13);
  CHECK(yaml_line_of(yaml, "/retry/missing") == 12);  // the nearest enclosing key
  CHECK(yaml_line_of(yaml, "/nothing") == 1);
}

TEST_CASE("every built-in driver kind has a schema that compiles and refuses an unknown field with its line") {
  // http.Request is left out: its parser ignores fields it does not know.
  for (const char* kind : {"http.Response", "http.Post", "mqtt.Subscribe", "mqtt.Publish", "influxdb.Write",
                           "influxdb.Query", "postgres.Insert", "postgres.Upsert", "postgres.Query", "timer.Interval",
                           "timer.Cron", "flow.Publish", "flow.Subscribe"}) {
    INFO(kind);
    CHECK(flowstate::drivers::config_schema(kind).has_value());
    const std::string json = std::string(R"({"kind":")") + kind + R"(","colour":"blue"})";
    const std::string yaml = std::string("kind: ") + kind + "\ncolour: blue\n";
    auto problems = config_schema_problems("drivers/x.yaml", kind, json, yaml);
    const std::string want = "drivers/x.yaml:2: /colour: property \"colour\" is not allowed";
    std::string all;
    bool found = false;
    for (auto& p : problems) {
      all += p + "\n";
      found = found || p.rfind(want, 0) == 0;
    }
    INFO(all);
    CHECK(found);
  }
  CHECK(
      config_schema_problems("drivers/x.yaml", "npm:@acme/modbus", R"({"kind":"npm:@acme/modbus","a":1})", "").empty());
}
