#pragma once
// JSON Schema (drafts 2020-12 and 07): compile a schema once, validate many
// simdjson DOM values with it. Errors are values; nothing here throws on the
// validation path.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace simdjson::dom {
class element;
}

namespace flowstate::schema {

enum class draft { draft7, draft2020_12 };

// Parses "07", "7", "draft7", "2020-12", "draft2020-12".
[[nodiscard]] std::optional<draft> parse_draft(std::string_view text);

// One entry of the "basic" output format.
struct validation_error {
  std::string instance_location;  // JSON pointer into the instance
  std::string keyword_location;   // JSON pointer along the evaluation path
  std::string keyword;            // e.g. "minimum"
  std::string message;            // e.g. "-3 is less than the minimum of 0"
};

// Why a schema was refused: where (a JSON pointer into the schema document,
// prefixed by the document's URI when it is not the root document) and what.
struct compile_error {
  std::string location;
  std::string message;
  // "location: message", or just the message when there is no location.
  [[nodiscard]] std::string to_string() const;
};

// Minimal expected<T, E> (C++20 has no std::expected).
template <class T, class E>
class [[nodiscard]] expected {
 public:
  expected(T value) : v_(std::in_place_index<0>, std::move(value)) {}
  expected(E error) : v_(std::in_place_index<1>, std::move(error)) {}
  [[nodiscard]] bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const E& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

// Returns the text of the document at an absolute URI (no fragment), or
// nothing when unknown. Called at compile time only, never at validation.
using resolver = std::function<std::optional<std::string>(std::string_view uri)>;

struct compile_options {
  // Used when the schema has no "$schema" (or one that names no known draft).
  draft default_draft = draft::draft2020_12;
  // Make "format" fail on bad values (by default it is an annotation).
  bool format_assertion = false;
  // Base URI of the root document when it has no "$id".
  std::string base_uri = "urn:flowstate:schema";
  // Remote "$ref" documents; the embedded metaschemas are always known.
  resolver resolve;
};

namespace detail {
struct compiled;
}

// A compiled schema: immutable, cheap to copy, safe to share between threads.
class validator {
 public:
  // Compiles schema JSON text.
  [[nodiscard]] static expected<validator, compile_error> compile(std::string_view schema_json,
                                                                  const compile_options& options = {});

  // The official metaschema of a draft (validates schemas of that draft).
  [[nodiscard]] static expected<validator, compile_error> metaschema(draft d);

  // True when the instance is valid; stops at the first failure, allocates nothing.
  [[nodiscard]] bool is_valid(const simdjson::dom::element& instance) const;

  // Validates and appends every error (basic output) to errors; true when valid.
  bool validate(const simdjson::dom::element& instance, std::vector<validation_error>& errors) const;

  // The draft the root schema was compiled with.
  [[nodiscard]] draft root_draft() const;

 private:
  explicit validator(std::shared_ptr<const detail::compiled> c) : c_(std::move(c)) {}
  std::shared_ptr<const detail::compiled> c_;
};

// The embedded metaschema text for a URI (draft 07, 2019-09, 2020-12 and the
// 2020-12 vocabularies), without trailing '#'; nothing when unknown.
[[nodiscard]] std::optional<std::string_view> embedded_metaschema(std::string_view uri);

// A resolver that maps URI prefixes to local directories:
// {"http://localhost:1234/", "/path/remotes/"} reads files below that folder.
[[nodiscard]] resolver directory_resolver(std::vector<std::pair<std::string, std::string>> prefix_to_dir);

}  // namespace flowstate::schema
