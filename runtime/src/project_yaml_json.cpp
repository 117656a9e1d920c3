// YAML -> JSON conversion for driver configurations (and `trace:`).
#include <charconv>
#include <cstdint>
#include <regex>
#include <string>

#include "project_detail.hpp"

namespace flowstate::detail {
namespace {

bool is_null_word(const std::string& s) { return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL"; }

const char* bool_word(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return "true";
  if (s == "false" || s == "False" || s == "FALSE") return "false";
  return nullptr;
}

// A YAML 1.2 core-schema int as a JSON number, or "" when `s` is not one.
std::string int_as_json(const std::string& s) {
  static const std::regex decimal("[-+]?[0-9]+");
  static const std::regex hex("0x[0-9a-fA-F]+");
  static const std::regex octal("0o[0-7]+");
  int base = 0;
  std::string digits;
  bool negative = false;
  if (std::regex_match(s, decimal)) {
    base = 10;
    negative = s[0] == '-';
    digits = (s[0] == '-' || s[0] == '+') ? s.substr(1) : s;
  } else if (std::regex_match(s, hex)) {
    base = 16;
    digits = s.substr(2);
  } else if (std::regex_match(s, octal)) {
    base = 8;
    digits = s.substr(2);
  } else {
    return "";
  }
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
  if (ec == std::errc() && end == digits.data() + digits.size()) {
    if (value == 0) return "0";
    return (negative ? "-" : "") + std::to_string(value);
  }
  if (base != 10) return "";  // too large to convert: keep as a string
  // Arbitrarily long decimal: JSON allows it, only drop leading zeros.
  size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return "0";
  return (negative ? "-" : "") + digits.substr(first);
}

// A YAML 1.2 core-schema float as a JSON number, or "" (also for .inf/.nan,
// which JSON cannot represent).
std::string float_as_json(const std::string& s) {
  static const std::regex number("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (!std::regex_match(s, number)) return "";
  const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
  double value = 0;
  auto [end, ec] = std::from_chars(begin, s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return "";
  char buffer[64];
  auto [out, ec2] = std::to_chars(buffer, buffer + sizeof buffer, value);
  if (ec2 != std::errc()) return "";
  return std::string(buffer, out);
}

std::string scalar_as_json(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  const std::string& tag = node.Tag();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return json_quote(text);
  if (is_null_word(text)) return "null";
  if (const char* b = bool_word(text)) return b;
  if (auto n = int_as_json(text); !n.empty()) return n;
  if (auto f = float_as_json(text); !f.empty()) return f;
  return json_quote(text);
}

void append_json(const YAML::Node& node, std::string& out) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out += "null";
      return;
    case YAML::NodeType::Scalar:
      out += scalar_as_json(node);
      return;
    case YAML::NodeType::Sequence: {
      out += '[';
      bool first = true;
      for (const auto& item : node) {
        if (!first) out += ',';
        first = false;
        append_json(item, out);
      }
      out += ']';
      return;
    }
    case YAML::NodeType::Map: {
      out += '{';
      bool first = true;
      for (const auto& entry : node) {
        if (!first) out += ',';
        first = false;
        const YAML::Node& key = entry.first;
        out += json_quote(key.IsScalar() ? key.Scalar() : yaml_to_json(key));
        out += ':';
        append_json(entry.second, out);
      }
      out += '}';
      return;
    }
  }
}

}  // namespace

std::string yaml_to_json(const YAML::Node& node) {
  std::string out;
  append_json(node, out);
  return out;
}

}  // namespace flowstate::detail
