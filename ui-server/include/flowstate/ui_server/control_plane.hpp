#pragma once
// A node in hosted mode (docs/hosted.md) takes tenants' API tokens besides
// its own admin token: it asks the control plane (`flowstate manager`,
// POST /api/v1/internal/tokens/check with the shared node secret) what a
// token may do, and keeps the answer for one second, so a revoked token
// stops within a second. A tenant's project on the node is named
// TEAM.PROJECT: a token of team T reaches the projects named "T.*" only.
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "flowstate/actors/engine.hpp"
#include "flowstate/runtime/limit_settings.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::admin {

struct admin_route;

enum class tenant_role { none = 0, viewer = 1, developer = 2, admin = 3, owner = 4 };

struct tenant {
  std::string team;
  tenant_role role = tenant_role::none;
};

// What a tenant may do on a route: only the node's admin token
// (node-wide routes: metrics, the cluster, the schema registry), any tenant
// (lists filtered to its projects), or a role in the project the route
// names (in its path, or its `project` query parameter).
struct hosted_rule {
  enum class kind { node_admin, any_tenant, project } what = kind::node_admin;
  tenant_role min_role = tenant_role::none;
  bool project_in_query = false;
};
hosted_rule rule_for(const admin_route& r);

class control_plane {
 public:
  control_plane(std::string address, std::string secret) : address_(std::move(address)), secret_(std::move(secret)) {}
  // The token's team and role; nullopt when the control plane does not know
  // it (or it is revoked); an error when the control plane cannot be asked.
  result<std::optional<tenant>> check(const std::string& token);
  // The limits of the plan of a project's team (TEAM.PROJECT): timeout and
  // memory per call, for the node's ceiling at deploy.
  result<hosted_plan_limits> plan_limits(const std::string& project);
  // POST a JSON body to one of the control plane's internal routes: (status, body).
  result<std::pair<unsigned, std::string>> post(const std::string& path, const std::string& body);

 private:
  std::string address_, secret_;
  std::mutex mutex_;
  struct cached {
    std::optional<tenant> t;
    std::chrono::steady_clock::time_point until;
  };
  std::map<std::string, cached> cache_;                                                // by the token's hash
  std::map<std::string, std::shared_future<result<std::optional<tenant>>>> inflight_;  // questions being asked
  result<std::optional<tenant>> ask_token(const std::string& token);
};

}  // namespace flowstate::admin
