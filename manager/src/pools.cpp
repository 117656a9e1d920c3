// Dedicated placement (docs/hosted.md "Dedicated nodes"): which pool of
// engine nodes runs a team's projects, and where each pool's nodes are.
//
// A pool is a set of engine nodes started with `--pool NAME` (one cluster,
// or one node); the nodes not started so are the shared pool. A team on a
// plan with dedicated nodes may be given a pool of its own by an operator;
// the nodes learn it from the plan answer (at every deploy and start) and
// from their usage reports (every second), and refuse a team placed
// elsewhere. The nodes describe themselves (pool, addresses) in their usage
// reports, so the manager can tell a team where its pool answers.
#include "pools.hpp"

#include "pg.hpp"
#include "routes.hpp"

namespace flowstate::manager {
namespace {

http::response db_failed(const std::string& why) { return problem(503, "database unavailable", why); }

// How recently a node must have reported to be listed as part of its pool.
constexpr const char* node_fresh = "30 seconds";

http::response set_team_pool(call& c) {
  std::string pool;
  if (c.has_body) {
    auto v = c.body["pool"];
    if (v.error() == simdjson::NO_SUCH_FIELD) return problem(422, "invalid", "pool: a pool's name, or null");
    if (!v.is_null()) {
      std::string_view s;
      if (v.get(s)) return problem(422, "invalid", "pool: a pool's name, or null");
      pool = std::string(s);
    }
  }
  if (!pool.empty() && !valid_pool_name(pool))
    return problem(422, "invalid",
                   "pool: 1 to 63 characters of a-z, 0-9 and -, starting with a letter or digit, not \"shared\" "
                   "(found \"" +
                       pool + "\")");
  auto team =
      c.db.exec("SELECT t.id, p.dedicated, t.plan FROM teams t JOIN plans p ON p.name = t.plan WHERE t.name = $1",
                {c.param("team")});
  if (!team) return db_failed(team.error());
  if (team->empty()) return problem(404, "not found", "no team \"" + c.param("team") + "\"");
  if (!pool.empty() && team->at(0, 1) != "t")
    return problem(422, "invalid",
                   "team \"" + c.param("team") + "\" is on plan " + team->at(0, 2) +
                       ", which has no dedicated nodes: put it on a plan with dedicated nodes first");
  auto r = c.db.exec("UPDATE teams SET pool = NULLIF($2, '') WHERE id = $1::bigint", {team->at(0, 0), pool});
  if (!r)
    return c.db.last_error().sqlstate == "23505"
               ? problem(409, "conflict", "pool \"" + pool + "\" already runs another team's projects")
               : db_failed(r.error());
  return json(200, "{\"team\":" + jstr(c.param("team")) + ",\"pool\":" + (pool.empty() ? "null" : jstr(pool)) + "}");
}

http::response team_placement(call& c) {
  auto team = c.db.exec(
      "SELECT coalesce(t.pool, 'shared'), p.dedicated FROM teams t JOIN plans p ON p.name = t.plan WHERE t.id = $1",
      {std::to_string(c.team)});
  if (!team || team->empty()) return db_failed(team ? "the team has no plan" : team.error());
  auto nodes = pool_nodes(c.db, team->at(0, 0));
  if (!nodes) return db_failed(nodes.error());
  return json(200, "{\"pool\":" + jstr(team->at(0, 0)) + ",\"dedicated\":" +
                       (team->at(0, 0) != "shared" ? "true" : "false") + ",\"nodes\":" + *nodes + "}");
}

}  // namespace

bool valid_pool_name(std::string_view n) {
  if (n.empty() || n.size() > 63 || n.front() == '-' || n == "shared") return false;
  for (char ch : n)
    if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-')) return false;
  return true;
}

result<std::string> pool_nodes(connection& db, const std::string& pool) {
  auto r = db.exec(
      "SELECT node, admin_url, flows_url, to_char(seen_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') "
      "FROM engine_nodes WHERE pool = $1 AND seen_at > now() - $2::interval ORDER BY node",
      {pool, node_fresh});
  if (!r) return fail(r.error());
  std::string out = "[";
  for (std::size_t i = 0; i < r->all.size(); ++i)
    out += std::string(i ? "," : "") + "{\"node\":" + jstr(r->at(i, 0)) + ",\"admin\":" + jstr(r->at(i, 1)) +
           ",\"flows\":" + jstr(r->at(i, 2)) + ",\"seenAt\":" + jstr(r->at(i, 3)) + "}";
  return out + "]";
}

status record_node(connection& db, const std::string& node, const std::string& pool, const std::string& admin,
                   const std::string& flows) {
  const auto name = node.substr(0, node.find('@'));
  auto r = db.exec(
      "INSERT INTO engine_nodes (node, pool, admin_url, flows_url, seen_at) VALUES ($1, $2, $3, $4, now()) "
      "ON CONFLICT (node) DO UPDATE SET pool = $2, admin_url = $3, flows_url = $4, seen_at = now()",
      {name, pool.empty() ? std::string("shared") : pool, admin, flows});
  if (!r) return fail(r.error());
  return status::success();
}

void add_pool_routes(std::vector<route>& out) {
  out.push_back({"PUT", "/api/v1/operator/teams/{team}/pool", "setTeamPool",
                 "Run a team's projects on a pool of nodes of its own (a plan with dedicated nodes), or null: the "
                 "shared pool",
                 access::operator_only, role::none, true, set_team_pool});
  out.push_back({"GET", "/api/v1/teams/{team}/placement", "teamPlacement",
                 "The pool of nodes that runs the team's projects, and where its nodes answer", access::signed_in,
                 role::viewer, false, team_placement});
}

}  // namespace flowstate::manager
