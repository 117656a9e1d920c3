// The OpenAPI 3.1 description, generated from the route table: paths in
// table order, their path and query parameters, request bodies and every
// response (the problem+json ones included) with its JSON Schema.
#include <algorithm>
#include <cctype>
#include <map>

#include "admin_routes.hpp"
#include "flowstate/ui_server/admin_api.hpp"

namespace flowstate::admin {
namespace {

void add_key(std::string& out, std::string_view key) {
  append_json_string(out, key);
  out += ':';
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

void add_parameters(std::string& out, const admin_route& r) {
  std::vector<std::string> params;
  for (std::size_t i = 0; (i = r.path.find('{', i)) != std::string_view::npos; ++i) {
    auto name = r.path.substr(i + 1, r.path.find('}', i) - i - 1);
    std::string p = "{\"name\":";
    append_json_string(p, name);
    p += R"(,"in":"path","required":true,"schema":{"type":"string"}})";
    params.push_back(std::move(p));
  }
  for (auto& q : r.query) {
    std::string p = "{\"name\":";
    append_json_string(p, q.name);
    p += R"(,"in":"query","required":false,"description":)";
    append_json_string(p, q.description);
    p += ",\"schema\":";
    p += q.schema;
    p += '}';
    params.push_back(std::move(p));
  }
  if (params.empty()) return;
  out += ",\"parameters\":[";
  for (std::size_t i = 0; i < params.size(); ++i) out += (i ? "," : "") + params[i];
  out += ']';
}

void add_responses(std::string& out, const admin_route& r) {
  constexpr std::string_view problem = R"({"$ref":"#/components/schemas/Problem"})";
  std::map<int, std::vector<documented_response>> by_status;
  for (auto& d : r.responses) by_status[d.status].push_back(d);
  if (r.needs_token && !by_status.count(401))
    by_status[401].push_back({401, "no or a wrong admin token", "application/problem+json", problem});
  if (r.where == runs_on::pool && !by_status.count(503))
    by_status[503].push_back({503, "the admin API's queue is full (Retry-After)", "application/problem+json", problem});
  if (r.operation_id == "getTrace")
    by_status[503].front().description = "the admin API's queue is full, or its trace followers are at their cap";
  out += ",\"responses\":{";
  bool first = true;
  for (auto& [status, list] : by_status) {
    if (!first) out += ',';
    first = false;
    add_key(out, std::to_string(status));
    std::string description;
    for (auto& d : list) description += (description.empty() ? "" : "; ") + std::string(d.description);
    out += "{\"description\":";
    append_json_string(out, description);
    out += ",\"content\":{";
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (i) out += ',';
      add_key(out, list[i].content_type);
      out += "{\"schema\":";
      out += list[i].schema;
      out += '}';
    }
    out += "}}";
  }
  out += '}';
}

void add_operation(std::string& out, const admin_route& r) {
  add_key(out, lower(r.method));
  out += "{\"operationId\":";
  append_json_string(out, r.operation_id);
  out += ",\"summary\":";
  append_json_string(out, r.summary);
  if (!r.description.empty()) {
    out += ",\"description\":";
    append_json_string(out, r.description);
  }
  if (!r.needs_token) out += ",\"security\":[]";
  add_parameters(out, r);
  if (!r.request_schema.empty()) {
    // A binary body (a git pack) is not JSON.
    const bool binary = r.request_schema.find("\"binary\"") != std::string_view::npos;
    out += binary ? R"(,"requestBody":{"required":true,"content":{"application/x-git-packed-objects":{"schema":)"
                  : R"(,"requestBody":{"required":true,"content":{"application/json":{"schema":)";
    out += r.request_schema;
    out += "}}}";
  }
  add_responses(out, r);
  out += '}';
}

std::string generate() {
  std::string out =
      R"({"openapi":"3.1.0",)"
      R"("info":{"title":"Flowstate admin API","version":"1",)"
      R"("description":"The admin listener of a Flowstate node (--admin-listen). Errors are RFC 9457 problem+json."},)"
      R"("jsonSchemaDialect":"https://json-schema.org/draft/2020-12/schema",)"
      R"("security":[{"adminToken":[]}],"paths":{)";
  // Operations grouped by path, paths in the order they first appear.
  std::vector<std::string_view> paths;
  for (auto& r : admin_routes())
    if (std::find(paths.begin(), paths.end(), r.path) == paths.end()) paths.push_back(r.path);
  for (std::size_t p = 0; p < paths.size(); ++p) {
    if (p) out += ',';
    add_key(out, paths[p]);
    out += '{';
    bool first = true;
    for (auto& r : admin_routes()) {
      if (r.path != paths[p]) continue;
      if (!first) out += ',';
      first = false;
      add_operation(out, r);
    }
    out += '}';
  }
  out += R"(},"components":{"securitySchemes":{"adminToken":{"type":"http","scheme":"bearer",)"
         R"("description":"the node's admin token, in DATA_DIR/admin.token"}},"schemas":{)";
  bool first = true;
  for (auto& [name, schema] : admin_schemas()) {
    if (!first) out += ',';
    first = false;
    add_key(out, name);
    out += schema;
  }
  return out + "}}}";
}

}  // namespace

const std::string& openapi_json() {
  static const std::string document = generate();
  return document;
}

}  // namespace flowstate::admin
