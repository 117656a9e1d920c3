#include "flowstate/drivers/http_types.hpp"

#include <strings.h>

namespace flowstate::http {

std::string_view request::header(std::string_view name) const {
  for (auto& [n, v] : headers)
    if (n.size() == name.size() && strncasecmp(n.data(), name.data(), n.size()) == 0) return v;
  return {};
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
