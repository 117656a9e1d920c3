#pragma once
// JSON helpers the keywords share: equality, printing, pointers, numbers.

#include <simdjson.h>

#include <string>
#include <string_view>
#include <vector>

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

// A small hash index of property names (properties, required): find() is a
// bucket lookup and one compare instead of a scan over every name.
class name_index {
 public:
  name_index() = default;
  explicit name_index(const std::vector<std::string>& names) {
    size_t size = 16;
    while (size < names.size() * 2) size *= 2;
    mask_ = size - 1;
    heads_.assign(size, -1);
    next_.assign(names.size(), -1);
    names_.reserve(names.size());
    for (size_t i = 0; i < names.size(); ++i) {
      names_.emplace_back(names[i]);
      size_t b = bucket(names[i]);
      next_[i] = heads_[b];
      heads_[b] = static_cast<int>(i);
    }
  }
  // Index of name in the constructor's list, or -1.
  [[nodiscard]] int find(std::string_view name) const {
    if (heads_.empty()) return -1;
    for (int i = heads_[bucket(name)]; i >= 0; i = next_[static_cast<size_t>(i)])
      if (names_[static_cast<size_t>(i)] == name) return i;
    return -1;
  }

 private:
  size_t bucket(std::string_view s) const {
    size_t h = s.size() * 0x9E3779B1u;
    if (!s.empty())
      h ^= static_cast<unsigned char>(s[0]) * 31u + static_cast<unsigned char>(s.back()) * 131u +
           static_cast<unsigned char>(s[s.size() / 2]) * 7u;
    return (h ^ (h >> 7)) & mask_;
  }
  size_t mask_ = 0;
  std::vector<int> heads_, next_;
  std::vector<std::string> names_;
};

}  // namespace flowstate::schema::detail
