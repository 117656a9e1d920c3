#include "json_util.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace flowstate::schema::detail {

using simdjson::dom::element_type;

bool is_number(const element& e) {
  auto t = e.type();
  return t == element_type::INT64 || t == element_type::UINT64 || t == element_type::DOUBLE;
}

double as_double(const element& e) {
  switch (e.type()) {
    case element_type::INT64:
      return static_cast<double>(int64_t(e.get_int64().value_unsafe()));
    case element_type::UINT64:
      return static_cast<double>(uint64_t(e.get_uint64().value_unsafe()));
    case element_type::DOUBLE:
      return e.get_double().value_unsafe();
    default:
      return 0;
  }
}

static bool numbers_equal(const element& a, const element& b) {
  auto ta = a.type(), tb = b.type();
  if (ta == element_type::INT64 && tb == element_type::INT64)
    return a.get_int64().value_unsafe() == b.get_int64().value_unsafe();
  if (ta == element_type::UINT64 && tb == element_type::UINT64)
    return a.get_uint64().value_unsafe() == b.get_uint64().value_unsafe();
  return as_double(a) == as_double(b);
}

bool json_equal(const element& a, const element& b) {
  if (is_number(a) && is_number(b)) return numbers_equal(a, b);
  auto t = a.type();
  if (t != b.type()) return false;
  switch (t) {
    case element_type::NULL_VALUE:
      return true;
    case element_type::BOOL:
      return a.get_bool().value_unsafe() == b.get_bool().value_unsafe();
    case element_type::STRING:
      return a.get_string().value_unsafe() == b.get_string().value_unsafe();
    case element_type::ARRAY: {
      auto x = array_of(a), y = array_of(b);
      if (x.size() != y.size()) return false;
      auto i = x.begin(), j = y.begin();
      for (; i != x.end(); ++i, ++j)
        if (!json_equal(*i, *j)) return false;
      return true;
    }
    case element_type::OBJECT: {
      auto x = object_of(a), y = object_of(b);
      if (x.size() != y.size()) return false;
      for (auto field : x) {
        element other;
        if (y.at_key(field.key).get(other) != simdjson::SUCCESS) return false;
        if (!json_equal(field.value, other)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

std::string format_double(double d) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, r.ptr);
}

std::string json_text(const element& e, size_t max_chars) {
  std::string s;
  switch (e.type()) {
    case element_type::DOUBLE:
      s = format_double(e.get_double().value_unsafe());
      break;
    case element_type::STRING:
      append_json_string(s, e.get_string().value_unsafe());
      break;
    default:
      s = simdjson::minify(e);
      break;
  }
  if (s.size() > max_chars) {
    s.resize(max_chars);
    s += "...";
  }
  return s;
}

std::string pointer_escape(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out.push_back(c);
  }
  return out;
}

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string_view type_name(const element& e) {
  switch (e.type()) {
    case element_type::ARRAY:
      return "array";
    case element_type::OBJECT:
      return "object";
    case element_type::INT64:
    case element_type::UINT64:
      return "integer";
    case element_type::DOUBLE: {
      double d = e.get_double().value_unsafe();
      return std::floor(d) == d && std::isfinite(d) ? "integer" : "number";
    }
    case element_type::STRING:
      return "string";
    case element_type::BOOL:
      return "boolean";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

number number::of(const element& e) {
  number n;
  n.d = as_double(e);
  if (e.type() == element_type::INT64) {
    n.i = e.get_int64().value_unsafe();
    n.is_int = true;
  }
  return n;
}

std::string number::text() const { return is_int ? std::to_string(i) : format_double(d); }

int compare(const element& instance, const number& limit) {
  if (limit.is_int && instance.type() == element_type::INT64) {
    int64_t v = instance.get_int64().value_unsafe();
    return v < limit.i ? -1 : v > limit.i ? 1 : 0;
  }
  double v = as_double(instance);
  return v < limit.d ? -1 : v > limit.d ? 1 : 0;
}

}  // namespace flowstate::schema::detail
