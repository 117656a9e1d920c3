#include "flowstate/ui_server/admin_api.hpp"

#include <stdexcept>

#include "admin_routes.hpp"
#include "flowstate/actors/engine.hpp"
#include "flowstate/drivers/http_routes.hpp"
#include "flowstate/ui_server/control_plane.hpp"
#include "proposal_routes.hpp"
#include "token_check.hpp"
#include "trace_followers.hpp"
#include "work_pool.hpp"

namespace flowstate::admin {
namespace {

std::vector<std::string> segments_of(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// The table as http::route_table patterns, in the same order.
http::route_table route_patterns() {
  http::route_table table;
  for (auto& r : admin_routes()) {
    http::route pattern;
    pattern.method = std::string(r.method);
    pattern.path = std::string(r.path);
    pattern.text = pattern.method + " " + pattern.path;
    pattern.segments = segments_of(r.path);
    if (auto st = table.add(std::move(pattern)); !st) throw std::logic_error("admin routes: " + st.error());
  }
  return table;
}

http::response unavailable(std::string_view title, std::string_view detail) {
  auto r = http::problem(503, title, detail);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

}  // namespace

struct admin_api::impl {
  impl(engine& engine, std::string_view token, const admin_options& o)
      : e(engine),
        token(token),
        pool(o.pool_threads, o.pool_queue),
        followers(
            [&engine](const std::string& project, trace_query q) {
              q.follow = true;
              return engine.trace(project, q);
            },
            o.max_trace_followers, std::chrono::seconds(15),
            // In a cluster other nodes' events come without a notification
            // here: followers also look every half second.
            engine.peer_address().empty() ? std::chrono::milliseconds(0) : std::chrono::milliseconds(500)),
        watch(engine.watch_trace([f = &followers] { f->notify(); })),
        services{engine, followers, o.edit_author_name, o.edit_author_email, &checks},
        table(route_patterns()) {
    if (!o.control_plane.empty()) hosted = std::make_unique<control_plane>(o.control_plane, o.control_plane_secret);
  }

  // 405 with Allow when the path has routes for other methods, else 404.
  http::response not_routed(const std::string& method, std::string_view path) const {
    std::string allow;
    for (auto* other : {"GET", "POST", "DELETE"})
      if (other != method && table.match(other, path)) allow += (allow.empty() ? "" : ", ") + std::string(other);
    if (allow.empty()) return http::problem(404, "not found", method + " " + std::string(path));
    auto r = http::problem(405, "method not allowed", method + " " + std::string(path) + ": expected " + allow);
    r.headers.emplace_back("Allow", allow);
    return r;
  }

  void handle(http::request&& req, http::responder_ptr reply) {
    auto [path, query] = http::split_target(req.target);
    // HEAD is GET without the body (the server drops it), on every GET route.
    auto m = table.match(req.method == "HEAD" ? std::string("GET") : req.method, path);
    const admin_route* route =
        m ? &admin_routes()[static_cast<std::size_t>(m->matched - table.routes().data())] : nullptr;
    const auto authorization = req.header("authorization");
    const bool node_admin = token.matches(authorization);
    if (auto bearer = bearer_token(authorization); route && route->needs_token && !node_admin && hosted && bearer)
      return as_tenant(std::move(req), *route, std::move(m->params), std::string(*bearer), reply);
    // Without the token, an unknown path gets 401 too: no listing of routes.
    if ((!route || route->needs_token) && !node_admin)
      return reply->send(http::problem(
          401, "unauthorized",
          "send the node's admin token as `Authorization: Bearer TOKEN` (the CLI reads it from DATA_DIR/admin.token)"));
    if (!route) return reply->send(not_routed(req.method, path));
    if (route->where == runs_on::listener) {
      admin_call call{req, std::move(m->params), query};
      return route->handle(services, call, reply);
    }
    auto shared = std::make_shared<http::request>(std::move(req));
    bool queued = pool.try_post([this, route, shared, params = std::move(m->params), reply]() mutable {
      admin_call call{*shared, std::move(params), http::split_target(shared->target).second};
      route->handle(services, call, reply);
    });
    if (!queued)
      reply->send(unavailable("admin API busy", "the admin API's queue of blocking requests is full; retry later"));
  }

  // A tenant's token (hosted mode): checked with the control plane on a
  // pool thread (a blocking call), then the route's hosted rule.
  void as_tenant(http::request&& req, const admin_route& route, std::vector<std::pair<std::string, std::string>> params,
                 std::string bearer, const http::responder_ptr& reply) {
    auto shared = std::make_shared<http::request>(std::move(req));
    bool queued = pool.try_post([this, &route, shared, params = std::move(params), bearer, reply]() mutable {
      auto t = hosted->check(bearer);
      if (!t) return reply->send(unavailable("control plane unavailable", t.error()));
      if (!*t) return reply->send(http::problem(401, "unauthorized", "this token is unknown or revoked"));
      admin_call call{*shared, std::move(params), http::split_target(shared->target).second};
      call.tenant_team = (*t)->team;
      const auto rule = rule_for(route);
      if (rule.what == hosted_rule::kind::node_admin)
        return reply->send(http::problem(403, "forbidden", "this needs the node's admin token, not a tenant's"));
      if (rule.what == hosted_rule::kind::any_tenant && (*t)->role < rule.min_role)
        return reply->send(
            http::problem(403, "forbidden", "this needs the role developer or above in team \"" + (*t)->team + "\""));
      if (rule.what == hosted_rule::kind::project) {
        const auto project = rule.project_in_query ? call.query_param("project") : call.param("project");
        if (project.empty())
          return reply->send(http::problem(400, "bad request", "name the project: ?project=TEAM.NAME"));
        if (project.rfind((*t)->team + ".", 0) != 0)
          return reply->send(http::problem(404, "not found", "no project named \"" + project + "\""));
        if ((*t)->role < rule.min_role)
          return reply->send(
              http::problem(403, "forbidden", "this needs the role developer or above in team \"" + (*t)->team + "\""));
      }
      route.handle(services, call, reply);
    });
    if (!queued)
      reply->send(unavailable("admin API busy", "the admin API's queue of blocking requests is full; retry later"));
  }

  engine& e;
  token_check token;
  std::unique_ptr<control_plane> hosted;  // hosted mode only
  work_pool pool;
  trace_followers followers;
  std::shared_ptr<void> watch;  // the engine's notifications of new trace events
  proposal_checks checks;
  admin_services services;
  http::route_table table;  // admin_routes() as patterns, same order
};

admin_api::admin_api(engine& e, std::string token, admin_options options)
    : impl_(std::make_unique<impl>(e, token, options)) {}

admin_api::~admin_api() { stop(); }

http::handler admin_api::handler() {
  return [impl = impl_.get()](http::request&& req, http::responder_ptr reply) {
    impl->handle(std::move(req), std::move(reply));
  };
}

void admin_api::stop() {
  impl_->watch.reset();
  impl_->followers.stop();
  impl_->pool.stop();
}

std::vector<std::string> admin_route_list() {
  std::vector<std::string> out;
  for (auto& r : admin_routes()) out.push_back(std::string(r.method) + " " + std::string(r.path));
  return out;
}

}  // namespace flowstate::admin
