#include "flowstate/drivers/http_types.hpp"

#include <strings.h>

namespace flowstate::http {

std::string_view request::header(std::string_view name) const {
  for (auto& [n, v] : headers)
    if (n.size() == name.size() && strncasecmp(n.data(), name.data(), n.size()) == 0) return v;
  return {};
}

void append_json_string(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(hex[c >> 4]);
          out.push_back(hex[c & 15]);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

response problem(int status, std::string_view title, std::string_view detail) {
  response r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = "{\"type\":\"about:blank\",\"title\":";
  append_json_string(r.body, title);
  r.body += ",\"status\":" + std::to_string(status) + ",\"detail\":";
  append_json_string(r.body, detail);
  r.body += "}";
  return r;
}

}  // namespace flowstate::http
