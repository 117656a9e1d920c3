#include "flowstate/ui_server/control_plane.hpp"

#include <simdjson.h>
#include <sodium.h>

#include <cctype>
#include <cstdio>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "admin_routes.hpp"
#include "flowstate/drivers/http_types.hpp"

namespace flowstate::admin {
namespace {

namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = boost::asio::ip::tcp;

constexpr auto ask_timeout = std::chrono::seconds(3);
constexpr auto remember = std::chrono::seconds(1);

std::optional<tenant_role> parse_role(std::string_view t) {
  if (t == "owner") return tenant_role::owner;
  if (t == "admin") return tenant_role::admin;
  if (t == "developer") return tenant_role::developer;
  if (t == "viewer") return tenant_role::viewer;
  return std::nullopt;
}

// `method` http://address/path (with `body`), a deadline: (status, body).
result<std::pair<unsigned, std::string>> ask(bhttp::verb method, const std::string& address, const std::string& path,
                                             const std::string& secret, const std::string& body) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return fail("--control-plane: expected host:port, got \"" + address + "\"");
  boost::asio::io_context io;
  beast::tcp_stream stream(io);
  tcp::resolver resolver(io);
  bhttp::request<bhttp::string_body> req{method, path, 11};
  req.set(bhttp::field::host, address);
  req.set(bhttp::field::content_type, "application/json");
  req.set("X-Node-Secret", secret);
  req.body() = body;
  req.prepare_payload();
  beast::flat_buffer buffer;
  bhttp::response<bhttp::string_body> res;
  beast::error_code failed;
  bool done = false;
  stream.expires_after(ask_timeout);
  resolver.async_resolve(address.substr(0, colon), address.substr(colon + 1), [&](beast::error_code ec, auto results) {
    if (ec) return void(failed = ec);
    stream.async_connect(results, [&](beast::error_code ec2, auto) {
      if (ec2) return void(failed = ec2);
      bhttp::async_write(stream, req, [&](beast::error_code ec3, std::size_t) {
        if (ec3) return void(failed = ec3);
        bhttp::async_read(stream, buffer, res, [&](beast::error_code ec4, std::size_t) {
          failed = ec4;
          done = !ec4;
        });
      });
    });
  });
  io.run_for(ask_timeout + std::chrono::milliseconds(500));
  if (!done)
    return fail("the control plane at " + address +
                " did not answer: " + (failed ? failed.message() : std::string("timed out")));
  return std::make_pair(res.result_int(), std::move(res.body()));
}

std::string hash_of(const std::string& token) {
  unsigned char h[32];
  crypto_generichash(h, sizeof h, reinterpret_cast<const unsigned char*>(token.data()), token.size(), nullptr, 0);
  return std::string(reinterpret_cast<char*>(h), sizeof h);
}

}  // namespace

hosted_rule rule_for(const admin_route& r) {
  const std::string_view path = r.path;
  const bool reads = r.method == "GET";
  const auto role = reads ? tenant_role::viewer : tenant_role::developer;
  // /metrics: a tenant sees its projects' series only (admin_routes.cpp, tenant_metrics).
  if (path == "/api/v1/projects" || path == "/api/v1/driver-kinds" || path == "/api/v1/openapi.json" ||
      path == "/metrics")
    return {hosted_rule::kind::any_tenant};
  // The registry of types: a tenant's own (its projects see it before the node's).
  if (path == "/api/v1/schemas") return {hosted_rule::kind::any_tenant, role};
  if (path.rfind("/api/v1/projects/{project}", 0) == 0) return {hosted_rule::kind::project, role, false};
  if (path.rfind("/api/v1/errors", 0) == 0 || path == "/api/v1/trace") return {hosted_rule::kind::project, role, true};
  return {hosted_rule::kind::node_admin};  // a route added later is node-wide until it says otherwise
}

result<std::optional<tenant>> control_plane::ask_token(const std::string& token) {
  std::string body = "{\"token\":";
  http::append_json_string(body, token);
  auto answer = ask(bhttp::verb::post, address_, "/api/v1/internal/tokens/check", secret_, body + "}");
  if (!answer) return fail(answer.error());
  std::optional<tenant> t;
  if (answer->first == 200) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    std::string_view team, role;
    if (parser.parse(answer->second).get(doc) || doc["team"].get(team) || doc["role"].get(role) || !parse_role(role))
      return fail("the control plane's answer is not {team, role}: " + answer->second.substr(0, 200));
    t = tenant{std::string(team), *parse_role(role)};
  } else if (answer->first != 404) {
    return fail("the control plane answered " + std::to_string(answer->first) + ": " + answer->second.substr(0, 200));
  }
  return t;
}

result<std::optional<tenant>> control_plane::check(const std::string& token) {
  const auto key = hash_of(token);
  std::promise<result<std::optional<tenant>>> mine;
  std::shared_future<result<std::optional<tenant>>> pending;
  {
    std::lock_guard lock(mutex_);
    const auto now = std::chrono::steady_clock::now();
    if (auto it = cache_.find(key); it != cache_.end() && it->second.until > now) return it->second.t;
    if (cache_.size() > 10000) cache_.clear();
    // One question per token at a time: concurrent requests with the same
    // token wait for its answer instead of asking again.
    if (auto it = inflight_.find(key); it != inflight_.end()) {
      pending = it->second;
    } else {
      inflight_[key] = mine.get_future().share();
    }
  }
  if (pending.valid()) return pending.get();
  auto out = ask_token(token);
  {
    std::lock_guard lock(mutex_);
    inflight_.erase(key);
    if (out) cache_[key] = {*out, std::chrono::steady_clock::now() + remember};
  }
  mine.set_value(out);
  return out;
}

result<std::pair<unsigned, std::string>> control_plane::post(const std::string& path, const std::string& body) {
  return ask(bhttp::verb::post, address_, path, secret_, body);
}

result<hosted_plan_limits> control_plane::plan_limits(const std::string& project) {
  std::string path = "/api/v1/internal/projects/";
  for (unsigned char ch : project)  // the name as one path segment
    if (std::isalnum(ch) || ch == '.' || ch == '-' || ch == '_') {
      path += char(ch);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", ch);
      path += hex;
    }
  auto answer = ask(bhttp::verb::get, address_, path + "/plan", secret_, "");
  if (!answer) return fail(answer.error());
  if (answer->first != 200)
    return fail("the control plane answered " + std::to_string(answer->first) + ": " + answer->second.substr(0, 300));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  uint64_t timeout_ms = 0, memory = 0, retention_days = 0;
  bool custom = false;
  std::string_view name;
  if (parser.parse(answer->second).get(doc) || doc["timeoutMs"].get(timeout_ms) || doc["memoryMiB"].get(memory) ||
      doc["logRetentionDays"].get(retention_days) || doc["customDrivers"].get(custom) || doc["name"].get(name))
    return fail("the control plane's plan is not {name, timeoutMs, memoryMiB, logRetentionDays, customDrivers}: " +
                answer->second.substr(0, 200));
  hosted_plan_limits out;
  out.limits.cpu_ms.value = static_cast<uint32_t>(timeout_ms);
  out.limits.memory_mb.value = static_cast<uint32_t>(memory);
  out.custom_drivers = custom;
  out.log_retention_ms = retention_days * 24 * 3600 * 1000;
  out.plan = std::string(name);
  uint64_t function_bytes = 0;
  if (!doc["maxFunctionBytes"].get(function_bytes)) out.max_function_bytes = function_bytes;
  std::string_view pool;
  if (!doc["pool"].get(pool)) out.pool = std::string(pool);
  simdjson::dom::array nodes;
  if (!doc["poolNodes"].get(nodes))
    for (auto n : nodes) {
      std::string_view admin;
      if (n["admin"].get(admin)) continue;
      out.pool_nodes += (out.pool_nodes.empty() ? "" : " or ") + std::string(admin);
    }
  return out;
}

}  // namespace flowstate::admin
