#pragma once
// Routes of http.Request sources: "METHOD /path/{param}" patterns, matched
// against requests, and the std:HttpRequest message built from a match.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::http {

struct route {
  std::string method;                 // "POST"
  std::string path;                   // "/count/{key}"
  std::string text;                   // "POST /count/{key}", the message's `route` field
  std::vector<std::string> segments;  // "{key}" kept as is; literal otherwise
  std::string key_param;              // "key" if present, else the first param
  // Where matched requests go; opaque to the HTTP layer.
  uint32_t project_id = 0;
  uint32_t flow_index = 0;
  uint32_t timeout_ms = 0;
};

// Parses an http.Request driver configuration (JSON text of drivers/X.yaml):
// `method:` + `path:`, or `routes: ["GET /a/{key}", ...]`.
result<std::vector<route>> parse_request_routes(std::string_view config_json);

struct route_match {
  const route* matched = nullptr;
  std::vector<std::pair<std::string, std::string>> params;
  std::string key;
};

// Routes indexed by method and number of segments, then segment by segment
// (a literal segment by its text, parameters apart): adding and matching cost
// the path's length, not the number of routes, so a project of a thousand
// routes deploys and answers as fast as one of ten. Since colliding routes
// are refused, a path matches at most one route.
class route_table {
 public:
  // Refuses a route whose method and shape collide with one already added.
  status add(route r);
  std::optional<route_match> match(std::string_view method, std::string_view path) const;
  const std::vector<route>& routes() const { return routes_; }

 private:
  struct node {
    std::map<std::string, std::unique_ptr<node>, std::less<>> literal;
    std::unique_ptr<node> param;
    std::size_t route = no_route;  // index in routes_ of the route ending here
  };
  static constexpr std::size_t no_route = ~std::size_t{0};
  const route* collision(const node& at, const route& r, std::size_t depth) const;
  std::size_t find(const node& at, const std::vector<std::string>& parts, std::size_t depth) const;

  std::vector<route> routes_;
  std::map<std::pair<std::string, std::size_t>, node> index_;  // (method, segment count)
};

// A query string's name or value: "a%20b+c" -> "a b c" (a malformed
// escape is kept as is).
std::string percent_decode(std::string_view s);
// A path segment: "a%20b+c" -> "a b+c" (`+` is a plus sign in a path).
std::string percent_decode_segment(std::string_view s);

// Splits "/a/b?x=1" into path and query.
std::pair<std::string_view, std::string_view> split_target(std::string_view target);

// std:HttpRequest JSON: {route, method, path, params, query, headers, body}.
// Fails (for a 400) when the body claims to be JSON and is not, or when the
// path, a parameter, a query name or value, a header value or a text body
// is not UTF-8 (the message names which).
result<std::string> build_request_message(const request& req, const route_match& m);

}  // namespace flowstate::http
