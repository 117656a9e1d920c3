#include <doctest/doctest.h>

#include "flowstate/drivers/postgres.hpp"

using namespace flowstate::drivers;
using namespace flowstate::drivers::postgres;

TEST_CASE("postgres.Insert and Upsert build one parameterised statement with their ON CONFLICT clause") {
  auto ins = parse_write(R"({"connection":"host=h","table":"iot.readings","columns":{"id":"$id","device":"$key",
    "t":"/temperature"},"onConflict":["id"]})",
                         false);
  REQUIRE(ins.ok());
  CHECK(sql_of(*ins) ==
        R"(INSERT INTO "iot"."readings" ("id","device","t") VALUES ($1,$2,$3) ON CONFLICT ("id") DO NOTHING)");
  auto up = parse_write(R"({"connection":"host=h","table":"latest","columns":{"device":"$key","seq":"/seq"},
    "key":["device"]})",
                        true);
  REQUIRE(up.ok());
  CHECK(
      sql_of(*up) ==
      R"(INSERT INTO "latest" ("device","seq") VALUES ($1,$2) ON CONFLICT ("device") DO UPDATE SET "seq"=EXCLUDED."seq")");
  sinks::delivery d;
  d.id = "m1";
  d.key = "dev'; DROP TABLE x;--";
  d.payload = R"({"temperature":21.5})";
  auto p = params_of(*ins, d);
  REQUIRE(p.ok());
  CHECK((*p)[0] == "m1");
  CHECK((*p)[1] == "dev'; DROP TABLE x;--");  // a bound value, never SQL text
  CHECK((*p)[2] == "21.5");
  d.payload = "{}";
  CHECK(!(*params_of(*ins, d))[2].has_value());  // missing: NULL
}

TEST_CASE("bad postgres configurations are refused naming the field; SQLSTATE classes decide retrying") {
  CHECK(parse_write(R"({"table":"t","columns":{"a":"/a"}})", false).error().find("connection:") == 0);
  CHECK(parse_write(R"({"connection":"c","table":"t; drop","columns":{"a":"/a"}})", false).error().find("table:") == 0);
  CHECK(parse_write(R"({"connection":"c","table":"t","columns":{"a":"a"}})", false).error().find("columns.a:") == 0);
  CHECK(parse_write(R"({"connection":"c","table":"t","columns":{"a":"/a"}})", true).error().find("key:") == 0);
  CHECK(parse_write(R"({"connection":"c","table":"t","columns":{"a":"/a"},"onConflict":["b"]})", false)
            .error()
            .find("onConflict: b") == 0);
  CHECK(parse_query(R"({"connection":"c","query":"SELECT 1","params":["/a"]})").error().find("$1") !=
        std::string::npos);
  CHECK(retryable("08006"));
  CHECK(retryable("40001"));
  CHECK(!retryable("23505"));
  CHECK(!retryable("42P01"));
}
