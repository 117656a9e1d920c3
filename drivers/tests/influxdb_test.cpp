#include <doctest/doctest.h>

#include "flowstate/drivers/influxdb.hpp"

using namespace flowstate::drivers;
using namespace flowstate::drivers::influxdb;

TEST_CASE("the line protocol escapes measurements, keys, tag values and string fields by its rules") {
  CHECK(escape_measurement("cpu load,x") == "cpu\\ load\\,x");
  CHECK(escape_measurement("a=b") == "a=b");
  CHECK(escape_key("a b,c=d") == "a\\ b\\,c\\=d");
  CHECK(escape_string_field("say \"hi\" \\ bye") == "say \\\"hi\\\" \\\\ bye");
  CHECK(escape_key("line\nbreak") == "line\\ break");
}

TEST_CASE("an influxdb.Write configuration is read, and a bad one is refused naming its field") {
  auto c = parse_write(R"({"kind":"influxdb.Write","url":"http://127.0.0.1:8086","database":"iot",
    "measurement":"readings","tags":{"site":"{{/site}}","device":"{{key}}"},"fields":{"t":"/temperature","ok":"/ok"},
    "batch":{"size":50,"every":"20ms"},"retentionPolicy":"autogen"})");
  REQUIRE(c.ok());
  CHECK(c->at.port == "8086");
  CHECK(c->at.database == "iot");
  CHECK(c->batch_size == 50);
  CHECK(c->batch_ms == 20);
  CHECK(c->tags[0].first == "device");  // sorted by key
  CHECK(parse_write(R"({"url":"http://x:8086","measurement":"m","fields":{"a":"/a"}})").error().find("database:") == 0);
  CHECK(parse_write(R"({"url":"http://x:8086/write","database":"d","measurement":"m","fields":{"a":"/a"}})")
            .error()
            .find("url:") == 0);
  CHECK(parse_write(R"({"url":"http://x:8086","database":"d","fields":{"a":"/a"}})").error().find("measurement:") == 0);
  CHECK(parse_write(R"({"url":"http://x:8086","database":"d","measurement":"m"})").error().find("fields:") == 0);
  CHECK(parse_write(R"({"url":"http://x:8086","database":"d","measurement":"m","fields":{"a":"a"}})")
            .error()
            .find("fields.a:") == 0);
  CHECK(
      parse_write(R"({"url":"http://x:8086","database":"d","measurement":"m","fields":{"a":"/a"},"batch":{"size":0}})")
          .error()
          .find("batch.size:") == 0);
}

TEST_CASE("a delivery becomes one point: tags from templates, typed fields, the message time in milliseconds") {
  auto c = parse_write(R"({"url":"http://127.0.0.1:8086","database":"iot","measurement":"read ings",
    "tags":{"device":"{{key}}","site":"{{/site}}"},"fields":{"t":"/temperature","ok":"/ok","note":"/note","gone":"/x"}})");
  REQUIRE(c.ok());
  sinks::delivery d;
  d.id = "m1";
  d.key = "dev 1";
  d.time_ms = 1700000000123;
  d.payload = R"({"temperature":21.5,"ok":true,"note":"a \"b\"","site":""})";
  auto line = line_of(*c, d);
  REQUIRE(line.ok());
  REQUIRE(line->size() > 19);
  CHECK(line->substr(0, line->size() - 19) == "read\\ ings,device=dev\\ 1 t=21.5,ok=true,note=\"a \\\"b\\\"\" ");
  CHECK(line->substr(line->size() - 19, 13) == "1700000000123");  // the message's ms, then ns of the id
  CHECK(*line_of(*c, d) == *line);                                // a repeat: the same point
  d.payload = R"({"other":1,"site":"x"})";
  CHECK(line_of(*c, d).error().find("fields:") == 0);
  d.payload = R"({"t":1})";
  CHECK(line_of(*c, d).error().find("tags.site:") == 0);
  auto timed = parse_write(R"({"url":"http://h:1","database":"d","measurement":"m","fields":{"v":"/v"},"time":"/ts"})");
  d.payload = R"({"v":3,"ts":1000})";
  CHECK(*line_of(*timed, d) == "m v=3 1000000000");
  d.payload = R"({"v":3})";
  CHECK(line_of(*timed, d).error().find("time:") == 0);
}

TEST_CASE("a tag value or measurement ending with a backslash is refused: line protocol cannot carry it") {
  auto c = parse_write(R"({"url":"http://127.0.0.1:8086","database":"iot","measurement":"{{/m}}",
    "tags":{"device":"{{key}}"},"fields":{"t":"/t"}})");
  REQUIRE(c.ok());
  sinks::delivery d;
  d.id = "m1";
  d.key = "dev\\";
  d.payload = R"({"t":1,"m":"readings"})";
  CHECK(line_of(*c, d).error().find("tags.device: \"dev\\\" ends with a backslash") == 0);
  d.key = "dev\\1";  // inside a value it is an ordinary character
  CHECK(line_of(*c, d).ok());
  d.payload = R"({"t":1,"m":"readings\\"})";
  CHECK(line_of(*c, d).error().find("measurement:") == 0);
}
