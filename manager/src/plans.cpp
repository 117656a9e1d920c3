// Plans: the list, a team's plan, the operator's choice of it, and what a
// node asks: the limits of the plan of a project's team.
#include "pg.hpp"
#include "pools.hpp"
#include "routes.hpp"

namespace flowstate::manager {
namespace {

http::response db_failed(const std::string& why) { return problem(503, "database unavailable", why); }

constexpr const char* plan_columns =
    "p.name, p.executions_per_month, p.timeout_ms, p.memory_mib, p.log_retention_days, p.custom_drivers, "
    "p.dedicated, p.monthly_price_cents, p.max_function_bytes";

std::string plan_json(const rows& r, std::size_t i) {
  return "{\"name\":" + jstr(r.at(i, 0)) + ",\"executionsPerMonth\":" + r.at(i, 1) + ",\"timeoutMs\":" + r.at(i, 2) +
         ",\"memoryMiB\":" + r.at(i, 3) + ",\"logRetentionDays\":" + r.at(i, 4) +
         ",\"customDrivers\":" + (r.at(i, 5) == "t" ? "true" : "false") +
         ",\"dedicated\":" + (r.at(i, 6) == "t" ? "true" : "false") + ",\"monthlyPriceCents\":" + r.at(i, 7) +
         ",\"maxFunctionBytes\":" + r.at(i, 8) + "}";
}

http::response list_plans(call& c) {
  auto r = c.db.exec(std::string("SELECT ") + plan_columns + " FROM plans p ORDER BY p.position");
  if (!r) return db_failed(r.error());
  std::string out = "[";
  for (std::size_t i = 0; i < r->all.size(); ++i) out += (i ? "," : "") + plan_json(*r, i);
  return json(200, out + "]");
}

http::response team_plan(call& c) {
  auto r =
      c.db.exec(std::string("SELECT ") + plan_columns + " FROM teams t JOIN plans p ON p.name = t.plan WHERE t.id = $1",
                {std::to_string(c.team)});
  if (!r || r->empty()) return db_failed(r ? "no plan" : r.error());
  return json(200, plan_json(*r, 0));
}

http::response set_team_plan(call& c) {
  const auto plan = c.field("plan");
  auto r = c.db.exec("UPDATE teams SET plan = $2 WHERE name = $1 RETURNING id", {c.param("team"), plan});
  if (!r)
    return c.db.last_error().sqlstate == "23503" ? problem(422, "invalid", "plan: no plan named \"" + plan + "\"")
                                                 : db_failed(r.error());
  if (r->empty()) return problem(404, "not found", "no team \"" + c.param("team") + "\"");
  return json(200, "{\"team\":" + jstr(c.param("team")) + ",\"plan\":" + jstr(plan) + "}");
}

// A node's question: the plan of the team a project (TEAM.PROJECT) belongs to.
http::response project_plan(call& c) {
  const auto project = c.param("project");
  const auto dot = project.find('.');
  if (dot == std::string::npos) return problem(404, "not found", "not a hosted project name (TEAM.PROJECT)");
  auto r = c.db.exec(std::string("SELECT ") + plan_columns +
                         ", coalesce(t.pool, 'shared') FROM teams t JOIN plans p ON p.name = t.plan WHERE t.name = $1",
                     {project.substr(0, dot)});
  if (!r) return db_failed(r.error());
  if (r->empty()) return problem(404, "not found", "no team \"" + project.substr(0, dot) + "\"");
  // The team's pool, and where its nodes are: a node of another pool
  // refuses the project and says where to deploy it.
  const auto& pool = r->at(0, 9);
  auto nodes = pool_nodes(c.db, pool);
  if (!nodes) return db_failed(nodes.error());
  auto out = plan_json(*r, 0);
  out.pop_back();
  return json(200, out + ",\"pool\":" + jstr(pool) + ",\"poolNodes\":" + *nodes + "}");
}

}  // namespace

void add_plan_routes(std::vector<route>& out) {
  out.push_back({"GET", "/api/v1/plans", "listPlans", "The plans and what each allows", access::anyone, role::none,
                 false, list_plans});
  out.push_back({"GET", "/api/v1/teams/{team}/plan", "teamPlan", "The team's plan", access::signed_in, role::viewer,
                 false, team_plan});
  out.push_back({"PUT", "/api/v1/operator/teams/{team}/plan", "setTeamPlan", "Put a team on a plan",
                 access::operator_only, role::none, true, set_team_plan});
  out.push_back({"GET", "/api/v1/internal/projects/{project}/plan", "projectPlan",
                 "For engine nodes: the plan of a project's team, whose limits are the project's ceiling", access::node,
                 role::none, false, project_plan});
}

}  // namespace flowstate::manager
