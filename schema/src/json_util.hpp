#pragma once
// JSON helpers the keywords share: equality, printing, pointers, numbers.

#include <simdjson.h>

#include <string>
#include <string_view>

namespace flowstate::schema::detail {

using simdjson::dom::element;

// JSON equality: numbers by value (1 == 1.0), objects ignoring key order.
bool json_equal(const element& a, const element& b);

// Compact JSON text of a value (for messages), cut to about max_chars.
std::string json_text(const element& e, size_t max_chars = 80);

// Appends s as a JSON string literal (with quotes) to out.
void append_json_string(std::string& out, std::string_view s);

// Escapes one JSON pointer token (~ -> ~0, / -> ~1).
std::string pointer_escape(std::string_view token);

// Number of Unicode code points in UTF-8 text.
size_t utf8_length(std::string_view s);

// "string", "integer", ... as the message names the instance's type.
std::string_view type_name(const element& e);

// The array/object of an element already known to be one (by value: a
// range-for over a temporary simdjson_result would dangle).
inline simdjson::dom::array array_of(const element& e) {
  simdjson::dom::array a;
  if (e.get_array().get(a) != simdjson::SUCCESS) return {};
  return a;
}
inline simdjson::dom::object object_of(const element& e) {
  simdjson::dom::object o;
  if (e.get_object().get(o) != simdjson::SUCCESS) return {};
  return o;
}

bool is_number(const element& e);
// Numeric value as double (instance must be a number).
double as_double(const element& e);

// A number from a schema, kept exactly when it is an integer.
struct number {
  double d = 0;
  int64_t i = 0;
  bool is_int = false;
  static number of(const element& e);
  std::string text() const;
};
// Three-way comparison of an instance number with a schema number.
int compare(const element& instance, const number& limit);

std::string format_double(double d);

}  // namespace flowstate::schema::detail
