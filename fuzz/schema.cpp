// The JSON Schema compiler and validator (schema/): the input is a schema,
// optionally followed by a line "---" and an instance. The schema is
// compiled with format assertions on (more code runs); a valid instance is
// validated both ways. Property: is_valid and validate agree, and validate
// reports at least one error exactly when the instance is invalid.
#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/schema/schema.hpp"

using namespace flowstate::schema;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto split = input.find("\n---\n");
  std::string_view schema_text = input.substr(0, split);
  std::string_view instance_text = split == std::string_view::npos ? "null" : input.substr(split + 5);

  compile_options options;
  options.format_assertion = true;
  // A remote $ref resolves to nothing, or to the schema itself for one URI.
  std::string self(schema_text);
  options.resolve = [&self](std::string_view uri) -> std::optional<std::string> {
    if (uri == "http://fuzz.example/self.json") return self;
    return std::nullopt;
  };
  auto compiled = validator::compile(schema_text, options);
  if (!compiled) {
    if (compiled.error().to_string().empty()) std::abort();
    return 0;
  }

  simdjson::dom::parser parser;
  simdjson::dom::element instance;
  simdjson::padded_string padded(instance_text);
  if (parser.parse(padded).get(instance)) return 0;
  bool fast = compiled->is_valid(instance);
  std::vector<validation_error> errors;
  bool full = compiled->validate(instance, errors);
  if (fast != full || full != errors.empty()) {
    std::fprintf(stderr, "is_valid %d, validate %d with %zu errors\n", fast, full, errors.size());
    std::abort();
  }
  return 0;
}
