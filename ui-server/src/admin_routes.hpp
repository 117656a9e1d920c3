#pragma once
// The admin API as one table: each route's method and path, what it runs on,
// its handler, and its documentation (query parameters, the JSON Schemas of
// its request and responses). The dispatcher (admin_api.cpp) and the OpenAPI
// description (openapi.cpp) are both read from it.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flowstate/drivers/http_types.hpp"

namespace simdjson::dom {
class object;
}

namespace flowstate {
class engine;
struct project_info;
struct deploy_outcome;
}  // namespace flowstate

namespace flowstate::admin {

class trace_followers;

// Quick routes answer on the listener's thread; blocking ones (git, fsync,
// RocksDB reads) go to the bounded pool, or get 503 when it is full.
enum class runs_on { listener, pool };

struct query_parameter {
  std::string_view name;
  std::string_view schema;  // JSON Schema
  std::string_view description;
};

struct documented_response {
  int status;
  std::string_view description;
  std::string_view content_type;  // "" = no body
  std::string_view schema;        // JSON Schema of the body
};

// One admin request as a handler sees it.
struct admin_call {
  const http::request& req;
  std::vector<std::pair<std::string, std::string>> params;  // path parameters, decoded
  std::string_view query;
  std::string tenant_team;  // a tenant's token (hosted mode): its team; "" for the node's admin token

  std::string param(std::string_view name) const;
  // A query parameter, decoded; "" when absent.
  std::string query_param(std::string_view name) const;
};

class proposal_checks;

// What handlers work with.
struct admin_services {
  engine& e;
  trace_followers& followers;
  std::string edit_author_name, edit_author_email;  // commits made from edits
  proposal_checks* checks = nullptr;                // proposal_routes.hpp
};

using admin_handler = void (*)(admin_services& s, const admin_call& call, const http::responder_ptr& reply);

struct admin_route {
  std::string_view method, path;  // "GET", "/api/v1/errors/{id}"
  std::string_view operation_id, summary, description;
  bool needs_token = true;
  runs_on where = runs_on::pool;
  std::vector<query_parameter> query;
  std::string_view request_schema;  // "" = no request body
  std::vector<documented_response> responses;
  admin_handler handle = nullptr;
};

const std::vector<admin_route>& admin_routes();

// For handlers in other files: a JSON answer; the project named (nullptr
// when the node has none of that name, the answer already sent); a
// deploy's answer.
http::response json_answer(int status, std::string body);
bool find_project_or_404(admin_services& s, const std::string& name, project_info& out,
                         const http::responder_ptr& reply);
void send_deploy_answer(const deploy_outcome& out, const http::responder_ptr& reply);
// A request's "files" ({PATH: TEXT, or null to delete it}) as edits; false
// when a value is neither (the 400 answer sent).
bool read_file_edits(const simdjson::dom::object& files, std::map<std::string, std::optional<std::string>>& edits,
                     const http::responder_ptr& reply);

// Named JSON Schemas that routes refer to as {"$ref": "#/components/schemas/NAME"}.
const std::vector<std::pair<std::string_view, std::string_view>>& admin_schemas();

}  // namespace flowstate::admin
