#include "flowstate/drivers/http_types.hpp"

#include <strings.h>

namespace flowstate::http {

std::string_view request::header(std::string_view name) const {
  for (auto& [n, v] : headers)
    if (n.size() == name.size() && strncasecmp(n.data(), name.data(), n.size()) == 0) return v;
  return {};
}

bool valid_header_name(std::string_view name) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    const bool token = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
    if (!token) return false;
  }
  return true;
}

bool valid_header_value(std::string_view value) {
  for (unsigned char c : value)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

response problem(int status, std::string_view title, std::string_view detail, std::string_view type) {
  response r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = "{\"type\":";
  append_json_string(r.body, type);
  r.body += ",\"title\":";
  append_json_string(r.body, title);
  r.body += ",\"status\":" + std::to_string(status) + ",\"detail\":";
  append_json_string(r.body, detail);
  r.body += "}";
  return r;
}

}  // namespace flowstate::http
