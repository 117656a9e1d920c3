#include <doctest/doctest.h>
#include <simdjson.h>

#include "flowstate/schema/schema.hpp"

using namespace flowstate::schema;

namespace {

validator compile_ok(std::string_view schema, compile_options options = {}) {
  auto v = validator::compile(schema, options);
  REQUIRE_MESSAGE(v.has_value(), (v.has_value() ? "" : v.error().to_string()));
  return v.value();
}

std::vector<validation_error> errors_of(const validator& v, std::string_view instance) {
  simdjson::dom::parser parser;
  simdjson::dom::element e;
  REQUIRE(parser.parse(instance.data(), instance.size()).get(e) == simdjson::SUCCESS);
  std::vector<validation_error> errors;
  bool valid = v.validate(e, errors);
  CHECK(valid == errors.empty());
  CHECK(v.is_valid(e) == valid);
  return errors;
}

// The error reported by a keyword (errors come in keyword order, not schema order).
const validation_error& by_keyword(const std::vector<validation_error>& errors, std::string_view keyword,
                                   size_t nth = 0) {
  for (const auto& e : errors)
    if (e.keyword == keyword && nth-- == 0) return e;
  FAIL("no error for keyword " << keyword);
  static validation_error none;
  return none;
}

}  // namespace

TEST_CASE("an error names the instance location, keyword location, keyword and a readable message") {
  auto v = compile_ok(R"({"properties": {"body": {"properties": {"f": {"minimum": 0}}}}})");
  auto errors = errors_of(v, R"({"body": {"f": -3}})");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].instance_location == "/body/f");
  CHECK(errors[0].keyword_location == "/properties/body/properties/f/minimum");
  CHECK(errors[0].keyword == "minimum");
  CHECK(errors[0].message == "-3 is less than the minimum of 0");
}

TEST_CASE("a valid instance gives no errors") {
  auto v = compile_ok(R"({"type": "object", "required": ["a"], "properties": {"a": {"type": "integer"}}})");
  CHECK(errors_of(v, R"({"a": 1.0})").empty());
}

TEST_CASE("every failing keyword is reported, with escaped pointers") {
  auto v = compile_ok(R"({"properties": {"a/b": {"type": "string"}, "c~d": {"maxLength": 2}},
                          "required": ["x"], "additionalProperties": false})");
  auto errors = errors_of(v, R"({"a/b": 1, "c~d": "héllo", "zz": true})");
  REQUIRE(errors.size() == 4);
  CHECK(by_keyword(errors, "type").instance_location == "/a~1b");
  CHECK(by_keyword(errors, "type").keyword_location == "/properties/a~1b/type");
  CHECK(by_keyword(errors, "maxLength").instance_location == "/c~0d");
  CHECK(by_keyword(errors, "maxLength").message == R"("héllo" has more than 2 characters (5))");
  CHECK(by_keyword(errors, "additionalProperties").instance_location == "/zz");
  CHECK(by_keyword(errors, "additionalProperties").keyword_location == "/additionalProperties");
  CHECK(by_keyword(errors, "additionalProperties").message == "property \"zz\" is not allowed");
  CHECK(by_keyword(errors, "required").instance_location == "");
  CHECK(by_keyword(errors, "required").message == "required property \"x\" is missing");
}

TEST_CASE("the keyword location follows $ref and array items") {
  auto v = compile_ok(R"({"$defs": {"tag": {"type": "string", "pattern": "^[a-z]+$"}},
                          "type": "array", "items": {"$ref": "#/$defs/tag"}, "uniqueItems": true})");
  auto errors = errors_of(v, R"(["ok", "NO", "ok"])");
  REQUIRE(errors.size() == 2);
  CHECK(by_keyword(errors, "pattern").instance_location == "/1");
  CHECK(by_keyword(errors, "pattern").keyword_location == "/items/$ref/pattern");
  CHECK(by_keyword(errors, "uniqueItems").instance_location == "");
}

TEST_CASE("a $ref to an array index too large for size_t is refused, not thrown") {
  // std::stoul threw std::out_of_range here, which ended the process.
  auto huge = validator::compile(R"({"prefixItems": [true], "$ref": "#/prefixItems/99999999999999999999999"})");
  REQUIRE_FALSE(huge.has_value());
  CHECK(huge.error().location == "/$ref");
  compile_ok(R"({"prefixItems": [{"type": "string"}], "$ref": "#/prefixItems/0"})");
}

TEST_CASE("a bad schema is refused with the location of the bad value") {
  auto v = validator::compile(R"({"properties": {"a": {"minimum": "x"}}})");
  REQUIRE_FALSE(v.has_value());
  CHECK(v.error().to_string() == R"(/properties/a/minimum: expected a number, got "x")");

  auto bad_type = validator::compile(R"({"type": "strin"})");
  REQUIRE_FALSE(bad_type.has_value());
  CHECK(bad_type.error().location == "/type");

  auto bad_regex = validator::compile(R"({"pattern": "(unclosed"})");
  REQUIRE_FALSE(bad_regex.has_value());
  CHECK(bad_regex.error().location == "/pattern");

  auto bad_ref = validator::compile(R"({"$ref": "#/$defs/missing"})");
  REQUIRE_FALSE(bad_ref.has_value());
  CHECK(bad_ref.error().location == "/$ref");

  CHECK_FALSE(validator::compile("{not json").has_value());
}

TEST_CASE("a $ref to an array index too large for a number is refused, not thrown") {
  auto huge = validator::compile(R"({"allOf": [true], "$ref": "#/allOf/99999999999999999999999"})");
  REQUIRE_FALSE(huge.has_value());
  CHECK(huge.error().location == "/$ref");
  compile_ok(R"({"allOf": [true], "$ref": "#/allOf/0"})");
}

TEST_CASE("a count past 2^64 written as a float is the largest count, not undefined behaviour") {
  // The float's conversion to uint64_t was undefined (found by fuzz_schema).
  auto at_most = compile_ok(R"({"maxItems": 2888888888888888888888888888.0})");
  CHECK(errors_of(at_most, "[1, 2, 3]").empty());
  auto at_least = compile_ok(R"({"minItems": 1e30})");
  CHECK(by_keyword(errors_of(at_least, "[1]"), "minItems").instance_location.empty());
}

TEST_CASE("the draft comes from $schema, or from the default option") {
  compile_options seven;
  seven.default_draft = draft::draft7;
  // prefixItems means nothing in draft 7; items as an array means prefix items.
  auto v7 = compile_ok(R"({"items": [{"type": "string"}]})", seven);
  CHECK(v7.root_draft() == draft::draft7);
  CHECK_FALSE(errors_of(v7, "[1]").empty());
  auto v2020 = compile_ok(
      R"({"$schema": "https://json-schema.org/draft/2020-12/schema", "prefixItems": [{"type": "string"}]})", seven);
  CHECK(v2020.root_draft() == draft::draft2020_12);
  CHECK_FALSE(errors_of(v2020, "[1]").empty());
}

TEST_CASE("format is an annotation unless asked to assert") {
  std::string_view schema = R"({"format": "date"})";
  CHECK(errors_of(compile_ok(schema), R"("2021-02-30")").empty());
  compile_options asserting;
  asserting.format_assertion = true;
  auto errors = errors_of(compile_ok(schema, asserting), R"("2021-02-30")");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].keyword == "format");
}

TEST_CASE("remote references are read through the caller's resolver, not the network") {
  compile_options options;
  options.resolve = [](std::string_view uri) -> std::optional<std::string> {
    if (uri == "https://example.com/int.json") return std::string(R"({"type": "integer"})");
    return std::nullopt;
  };
  auto v = compile_ok(R"({"$ref": "https://example.com/int.json"})", options);
  CHECK(errors_of(v, "1").empty());
  CHECK(errors_of(v, "1.5").size() == 1);
  auto missing = validator::compile(R"({"$ref": "https://example.com/other.json"})", options);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().location == "/$ref");
}

TEST_CASE("a schema validates against its draft's embedded metaschema") {
  for (draft d : {draft::draft7, draft::draft2020_12}) {
    auto meta = validator::metaschema(d);
    REQUIRE(meta.has_value());
    CHECK(errors_of(meta.value(), R"({"type": "object", "properties": {"a": {"minimum": 1}}})").empty());
    auto errors = errors_of(meta.value(), R"({"properties": {"a": {"minimum": "x"}}})");
    REQUIRE_FALSE(errors.empty());
    CHECK(errors.back().instance_location == "/properties/a/minimum");
  }
}

TEST_CASE("ECMA-262 regular expressions: \\d is ASCII, \\p{...} is Unicode") {
  auto digits = compile_ok(R"({"pattern": "^\\d+$"})");
  CHECK(errors_of(digits, R"("123")").empty());
  CHECK_FALSE(errors_of(digits, "\"\u0661\"").empty());  // ARABIC-INDIC DIGIT ONE
  auto letters = compile_ok(R"({"pattern": "^\\p{Letter}+$"})");
  CHECK(errors_of(letters, R"("héllo")").empty());
  CHECK_FALSE(errors_of(letters, R"("a1")").empty());
}
