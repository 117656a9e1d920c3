// Metering, quotas and credits (docs/hosted.md "Metering and quotas").
//
// Nodes report cumulative execution counters per (project, month, key
// group), read from the same RocksDB commits as the executions; the manager
// keeps the highest value of each, so a repeated, late or stale report
// changes nothing and a key group moved to another node goes on from where
// it was. A node also holds a lease per team and month: how many more
// executions it may start without asking. Leases are carved from what the
// team has left (its plan's executions plus its credits, minus what was
// counted, minus the other live nodes' leases), so the nodes together stay
// within the cap; see lease_for for the overshoot bound.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <set>

#include "flowstate/runtime/iso_time.hpp"
#include "metering.hpp"
#include "pg.hpp"
#include "pools.hpp"
#include "routes.hpp"

namespace flowstate::manager {
namespace {

http::response db_failed(const std::string& why) { return problem(503, "database unavailable", why); }

// How long a node's lease counts as taken without renewal. Nodes stop using
// a lease 8 s after asking for it (ui-server/src/usage_reporter.cpp), so a
// lease that ages out here is no longer in use there.
constexpr const char* lease_life = "10 seconds";

// This UTC month, "2026-12" (what nodes meter executions by).
std::string current_month() {
  return utc_month(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

// A non-negative integer field of the body: nullopt when absent; -1 when
// present but not one.
std::optional<int64_t> int_field(const call& c, std::string_view name) {
  if (!c.has_body) return std::nullopt;
  auto v = c.body[name];
  if (v.error() == simdjson::NO_SUCH_FIELD) return std::nullopt;
  int64_t n = 0;
  if (v.get(n) || n < 0) return -1;
  return n;
}

}  // namespace

bool is_month(std::string_view m) {
  if (m.size() != 7 || m[4] != '-') return false;
  for (std::size_t i = 0; i < 7; ++i)
    if (i != 4 && (m[i] < '0' || m[i] > '9')) return false;
  return (m[5] == '0' && m[6] >= '1') || (m[5] == '1' && m[6] <= '2');
}

result<month_totals> settle(connection& t, int64_t team, const std::string& month) {
  auto r = t.exec(
      "SELECT (SELECT coalesce(sum(executions), 0) FROM usage_counters WHERE team_id = $1 AND month = $2), "
      "(SELECT coalesce(sum(executions), 0) FROM credit_grants WHERE team_id = $1) - "
      "(SELECT coalesce(sum(credits_used), 0) FROM team_months WHERE team_id = $1 AND month <> $2)",
      {std::to_string(team), month});
  if (!r) return fail(r.error());
  month_totals m;
  m.executions = std::stoll(r->at(0, 0));
  m.credits_left = std::max<int64_t>(0, std::stoll(r->at(0, 1)));
  m.credits_used = std::min(m.executions, m.credits_left);
  auto w = t.exec(
      "INSERT INTO team_months (team_id, month, executions, credits_used) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (team_id, month) DO UPDATE SET executions = $3, credits_used = $4",
      {std::to_string(team), month, std::to_string(m.executions), std::to_string(m.credits_used)});
  if (!w) return fail(w.error());
  return m;
}

namespace {

int64_t seconds_to_next_month() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  std::tm next{};
  next.tm_year = utc.tm_mon == 11 ? utc.tm_year + 1 : utc.tm_year;
  next.tm_mon = (utc.tm_mon + 1) % 12;
  next.tm_mday = 1;
  return std::max<int64_t>(1, static_cast<int64_t>(timegm(&next) - now));
}

// A new lease for `node`, which ran `used` executions under its previous
// one: enough for about ten reports at its recent pace (at least
// min_lease), and never more than an equal share, among the team's live
// nodes, of what is left once the counted executions and the other nodes'
// leases are taken off the cap. Each node runs at most its lease between
// two reports, and a report counts what it ran, so the executions never
// exceed the cap by more than what was in flight when a lease ran out (work
// a source had already accepted: it is processed, never dropped).
constexpr int64_t min_lease = 1000;

result<std::string> lease_for(connection& t, int64_t team, const std::string& team_name, const std::string& month,
                              const std::string& node, int64_t used, bool wanted) {
  auto totals = settle(t, team, month);
  if (!totals) return fail(totals.error());
  // A node is NAME@INCARNATION: a new incarnation of a node means the old
  // one is gone (its store is open in one process only), and its leases too.
  auto gone = t.exec(
      "DELETE FROM quota_leases WHERE team_id = $1 AND split_part(node, '@', 1) = split_part($2, '@', 1) "
      "AND node <> $2",
      {std::to_string(team), node});
  if (!gone) return fail(gone.error());
  auto r = t.exec(
      "SELECT p.executions_per_month, "
      "(SELECT coalesce(sum(lease), 0) FROM quota_leases q WHERE q.team_id = $1 AND q.month = $2 AND q.node <> $3 "
      "AND q.renewed_at > now() - $4::interval), "
      "(SELECT count(*) FROM quota_leases q WHERE q.team_id = $1 AND q.month = $2 AND q.node <> $3 "
      "AND q.renewed_at > now() - $4::interval), "
      // Paid overage: a team with an active subscription to a plan priced
      // per execution past its own is not capped (its invoice says it).
      "(SELECT paid_enabled FROM billing) AND p.overage_cents_per_million > 0 AND EXISTS (SELECT 1 FROM "
      "subscriptions s WHERE s.team_id = t.id AND s.status = 'active'), "
      "coalesce(t.spending_limit_cents::text, ''), p.monthly_price_cents, p.overage_cents_per_million, "
      "coalesce(t.pool, 'shared') "
      "FROM teams t JOIN plans p ON p.name = t.plan WHERE t.id = $1",
      {std::to_string(team), month, node, lease_life});
  if (!r) return fail(r.error());
  if (r->empty()) return fail("team " + team_name + " has no plan");
  const int64_t included = std::stoll(r->at(0, 0));
  const int64_t others = std::stoll(r->at(0, 1));
  const int64_t live = 1 + std::stoll(r->at(0, 2));
  const bool billable_overage = r->at(0, 3) == "t";
  int64_t cap = included + totals->credits_left;
  if (billable_overage) {
    // Paying per execution past the plan: uncapped, or up to the team's
    // spending limit (what is left of it after the fee, at the plan's price).
    const auto& limit = r->at(0, 4);
    const int64_t fee = std::stoll(r->at(0, 5)), per_million = std::stoll(r->at(0, 6));
    cap =
        limit.empty() ? int64_t{1} << 50 : cap + std::max<int64_t>(0, std::stoll(limit) - fee) * 1000000 / per_million;
  }
  const int64_t left = cap - totals->executions - others;
  const int64_t share = std::max<int64_t>(1, left / live);
  // Near the cap, a node that ran nothing and refused nothing since its
  // last lease gets none: what is left goes to the nodes with work (an idle
  // node holding the last executions would starve the others for good).
  const bool near_cap = cap - totals->executions < min_lease * live;
  const bool idle = used == 0 && !wanted;
  const int64_t lease = left <= 0 || (near_cap && idle) ? 0 : std::min(share, std::max(min_lease, 10 * used));
  auto w = t.exec(
      "INSERT INTO quota_leases (team_id, month, node, lease, renewed_at) VALUES ($1, $2, $3, $4, now()) "
      "ON CONFLICT (team_id, month, node) DO UPDATE SET lease = $4, renewed_at = now()",
      {std::to_string(team), month, node, std::to_string(lease)});
  if (!w) return fail(w.error());
  const bool reached = totals->executions >= cap;
  // At the cap the wait is for the next month (or credits); short of it,
  // for other nodes' leases to come back.
  const int64_t retry = reached ? seconds_to_next_month() : 2;
  return "{\"team\":" + jstr(team_name) + ",\"month\":" + jstr(month) + ",\"lease\":" + std::to_string(lease) +
         ",\"executions\":" + std::to_string(totals->executions) + ",\"cap\":" + std::to_string(cap) +
         ",\"capReached\":" + (reached ? "true" : "false") + ",\"retryAfter\":" + std::to_string(retry) +
         ",\"pool\":" + jstr(r->at(0, 7)) + "}";
}

// A node's report: {node, month, counters: [{project, month, group,
// executions}], teams: [{team, used}]} (used: executions run under the
// team's previous lease); answers a lease per team named.
http::response report_usage(call& c) {
  const auto node = c.field("node");
  const auto month = c.field("month");
  if (node.empty() || node.size() > 200) return problem(422, "invalid", "node: the node's name and incarnation");
  if (!is_month(month)) return problem(422, "invalid", "month: YYYY-MM (UTC), found \"" + month + "\"");
  simdjson::dom::array counters, teams;
  if (c.body["counters"].get(counters)) return problem(422, "invalid", "counters: an array");
  if (c.body["teams"].get(teams)) return problem(422, "invalid", "teams: an array of {team, used}");
  std::set<std::string> names;
  std::string counters_json = "[";
  std::size_t i = 0;
  for (auto e : counters) {
    std::string_view project, m;
    uint64_t group = 0, executions = 0;
    if (e["project"].get(project) || e["month"].get(m) || e["group"].get(group) || e["executions"].get(executions) ||
        !is_month(m) || group > 0x7fffffff || executions > (uint64_t{1} << 62) ||
        project.find('.') == std::string_view::npos)
      return problem(422, "invalid",
                     "counters[" + std::to_string(i) +
                         "]: {project: TEAM.PROJECT, month: YYYY-MM, "
                         "group, executions}");
    names.emplace(project.substr(0, project.find('.')));
    counters_json += std::string(i ? "," : "") + "{\"project\":" + jstr(project) + ",\"month\":" + jstr(m) +
                     ",\"group\":" + std::to_string(group) + ",\"executions\":" + std::to_string(executions) + "}";
    ++i;
  }
  counters_json += "]";
  struct ask {
    std::string team;
    int64_t used = 0;
    bool wanted = false;
  };
  std::vector<ask> asked;
  for (auto e : teams) {
    std::string_view name;
    uint64_t used = 0;
    bool wanted = false;
    if (e["team"].get(name) || e["used"].get(used) || used > (uint64_t{1} << 40))
      return problem(422, "invalid", "teams: an array of {team, used, wanted}");
    if (e["wanted"].error() != simdjson::NO_SUCH_FIELD && e["wanted"].get(wanted))
      return problem(422, "invalid", "teams[].wanted: true or false");
    asked.push_back({std::string(name), static_cast<int64_t>(used), wanted});
    names.emplace(name);
  }
  std::string names_json = "[";
  for (auto& n : names) names_json += (names_json.size() > 1 ? "," : "") + jstr(n);
  names_json += "]";
  // What the node says of itself: its pool and addresses (optional: nodes
  // before dedicated placement did not say).
  const auto pool = c.field("pool"), admin = c.field("admin"), flows = c.field("flows");
  if (!pool.empty() && pool != "shared" && !valid_pool_name(pool))
    return problem(422, "invalid", "pool: a pool's name, found \"" + pool + "\"");
  if (admin.size() > 300 || flows.size() > 300) return problem(422, "invalid", "admin, flows: URLs");
  if (!admin.empty())
    if (auto st = record_node(c.db, node, pool, admin, flows); !st) return db_failed(st.error());
  auto out = transaction(c.db, [&](connection& t) -> result<std::string> {
    // Every team involved, locked in one order: reports from several nodes
    // settle one after another.
    auto locked = t.exec(
        "SELECT id, name FROM teams WHERE name IN (SELECT jsonb_array_elements_text($1::jsonb)) ORDER BY id "
        "FOR UPDATE",
        {names_json});
    if (!locked) return fail(locked.error());
    auto up = t.exec(
        "INSERT INTO usage_counters (team_id, project, month, key_group, executions) "
        "SELECT t.id, c.project, c.month, c.\"group\", c.executions "
        "FROM jsonb_to_recordset($1::jsonb) AS c(project text, month text, \"group\" integer, executions bigint) "
        "JOIN teams t ON t.name = split_part(c.project, '.', 1) ORDER BY c.project, c.month, c.\"group\" "
        "ON CONFLICT (project, month, key_group) DO UPDATE SET executions = EXCLUDED.executions, updated_at = now() "
        "WHERE usage_counters.executions < EXCLUDED.executions "
        "RETURNING team_id, month",
        {counters_json});
    if (!up) return fail(up.error());
    std::set<std::pair<int64_t, std::string>> touched;
    for (std::size_t k = 0; k < up->all.size(); ++k) touched.emplace(std::stoll(up->at(k, 0)), up->at(k, 1));
    for (auto& [team, m] : touched)
      if (auto s = settle(t, team, m); !s) return fail(s.error());
    std::string leases = "[";
    for (auto& [name, used, wanted] : asked) {
      int64_t team = 0;
      for (std::size_t k = 0; k < locked->all.size(); ++k)
        if (locked->at(k, 1) == name) team = std::stoll(locked->at(k, 0));
      if (!team) continue;  // no such team: no lease (its projects' sources refuse)
      auto one = lease_for(t, team, name, month, node, used, wanted);
      if (!one) return fail(one.error());
      leases += (leases.size() > 1 ? "," : "") + *one;
    }
    return leases + "]";
  });
  if (!out) return db_failed(out.error());
  return json(200, "{\"leases\":" + *out + "}");
}

// A team's usage, month by month (newest first), per project, against its plan.
http::response team_usage(call& c) {
  const auto team = std::to_string(c.team);
  auto plan = c.db.exec(
      "SELECT p.name, p.executions_per_month, "
      "(SELECT coalesce(sum(executions), 0) FROM credit_grants WHERE team_id = $1) - "
      "(SELECT coalesce(sum(credits_used), 0) FROM team_months WHERE team_id = $1) "
      "FROM teams t JOIN plans p ON p.name = t.plan WHERE t.id = $1",
      {team});
  auto months = c.db.exec(
      "SELECT month, executions, credits_used FROM team_months WHERE team_id = $1 ORDER BY month DESC", {team});
  auto projects = c.db.exec(
      "SELECT month, project, sum(executions) FROM usage_counters WHERE team_id = $1 GROUP BY month, project "
      "ORDER BY month DESC, project",
      {team});
  if (!plan || !months || !projects)
    return db_failed(!plan ? plan.error() : !months ? months.error() : projects.error());
  if (plan->empty()) return db_failed("the team has no plan");
  const int64_t included = std::stoll(plan->at(0, 1));
  std::string out = "{\"plan\":" + jstr(plan->at(0, 0)) + ",\"executionsPerMonth\":" + plan->at(0, 1) +
                    ",\"creditsBalance\":" + plan->at(0, 2) + ",\"currentMonth\":" + jstr(current_month()) +
                    ",\"months\":[";
  for (std::size_t i = 0; i < months->all.size(); ++i) {
    const auto& m = months->at(i, 0);
    const int64_t executions = std::stoll(months->at(i, 1)), credits = std::stoll(months->at(i, 2));
    std::string per;
    for (std::size_t k = 0; k < projects->all.size(); ++k)
      if (projects->at(k, 0) == m)
        per += std::string(per.empty() ? "" : ",") + "{\"project\":" + jstr(projects->at(k, 1)) +
               ",\"executions\":" + projects->at(k, 2) + "}";
    out += std::string(i ? "," : "") + "{\"month\":" + jstr(m) + ",\"executions\":" + std::to_string(executions) +
           ",\"creditsUsed\":" + std::to_string(credits) +
           ",\"planUsed\":" + std::to_string(std::min(included, executions - credits)) +
           ",\"overPlan\":" + std::to_string(std::max<int64_t>(0, executions - credits - included)) +
           ",\"projects\":[" + per + "]}";
  }
  return json(200, out + "]}");
}

// The same, as CSV: month,project,executions (one row per project and month).
http::response team_usage_csv(call& c) {
  auto r = c.db.exec(
      "SELECT month, project, sum(executions) FROM usage_counters WHERE team_id = $1 GROUP BY month, project "
      "ORDER BY month, project",
      {std::to_string(c.team)});
  if (!r) return db_failed(r.error());
  http::response out;
  out.status = 200;
  out.content_type = "text/csv; charset=utf-8";
  out.body = "month,project,executions\r\n";
  for (std::size_t i = 0; i < r->all.size(); ++i)
    out.body += r->at(i, 0) + "," + r->at(i, 1) + "," + r->at(i, 2) + "\r\n";  // names are [a-z0-9-.]
  return out;
}

http::response team_credits(call& c) {
  auto r = c.db.exec("SELECT id, executions, reason, created_at FROM credit_grants WHERE team_id = $1 ORDER BY id DESC",
                     {std::to_string(c.team)});
  auto used =
      c.db.exec("SELECT coalesce(sum(credits_used), 0) FROM team_months WHERE team_id = $1", {std::to_string(c.team)});
  if (!r || !used) return db_failed(!r ? r.error() : used.error());
  int64_t granted = 0;
  std::string grants;
  for (std::size_t i = 0; i < r->all.size(); ++i) {
    granted += std::stoll(r->at(i, 1));
    grants += std::string(i ? "," : "") + "{\"id\":" + r->at(i, 0) + ",\"executions\":" + r->at(i, 1) +
              ",\"reason\":" + jstr(r->at(i, 2)) + ",\"at\":" + jstr(r->at(i, 3)) + "}";
  }
  const int64_t spent = std::stoll(used->at(0, 0));
  return json(200, "{\"granted\":" + std::to_string(granted) + ",\"used\":" + std::to_string(spent) +
                       ",\"balance\":" + std::to_string(granted - spent) + ",\"grants\":[" + grants + "]}");
}

// An operator gives a team executions: {executions, reason}.
http::response grant_credits(call& c) {
  auto n = int_field(c, "executions");
  const auto reason = c.field("reason");
  if (!n || *n <= 0) return problem(422, "invalid", "executions: a positive whole number");
  if (reason.empty() || reason.size() > 500) return problem(422, "invalid", "reason: why (up to 500 characters)");
  auto r = c.db.exec(
      "INSERT INTO credit_grants (team_id, executions, reason, granted_by) "
      "SELECT id, $2, $3, $4 FROM teams WHERE name = $1 RETURNING id",
      {c.param("team"), std::to_string(*n), reason, std::to_string(c.who.account)});
  if (!r) return db_failed(r.error());
  if (r->empty()) return problem(404, "not found", "no team \"" + c.param("team") + "\"");
  return json(201, "{\"id\":" + r->at(0, 0) + ",\"team\":" + jstr(c.param("team")) +
                       ",\"executions\":" + std::to_string(*n) + "}");
}

// An operator changes a plan's numbers: any of executionsPerMonth,
// timeoutMs, memoryMiB, logRetentionDays, monthlyPriceCents.
http::response change_plan(call& c) {
  static constexpr std::pair<const char*, const char*> fields[] = {
      {"executionsPerMonth", "executions_per_month"},
      {"timeoutMs", "timeout_ms"},
      {"memoryMiB", "memory_mib"},
      {"logRetentionDays", "log_retention_days"},
      {"monthlyPriceCents", "monthly_price_cents"},
      {"overageCentsPerMillion", "overage_cents_per_million"},
      {"maxFunctionBytes", "max_function_bytes"}};
  std::vector<param> values{c.param("plan")};
  std::string sets;
  for (auto [json_name, column] : fields) {
    auto v = int_field(c, json_name);
    if (!v) continue;
    const bool may_be_zero =
        std::string_view(column) == "monthly_price_cents" || std::string_view(column) == "overage_cents_per_million";
    if (*v < 0 || (*v == 0 && !may_be_zero) || *v > (int64_t{1} << 40))
      return problem(422, "invalid", std::string(json_name) + ": a positive whole number");
    values.push_back(std::to_string(*v));
    sets += std::string(sets.empty() ? "" : ", ") + column + " = $" + std::to_string(values.size());
  }
  if (c.has_body && c.body["stripePrice"].error() != simdjson::NO_SUCH_FIELD) {
    std::string_view price;
    if (c.body["stripePrice"].get(price) || price.empty() || price.size() > 200)
      return problem(422, "invalid", "stripePrice: the id of the plan's price at Stripe (price_...)");
    values.push_back(std::string(price));
    sets += std::string(sets.empty() ? "" : ", ") + "stripe_price = $" + std::to_string(values.size());
  }
  if (sets.empty())
    return problem(422, "invalid",
                   "nothing to change: give executionsPerMonth, timeoutMs, memoryMiB, logRetentionDays, "
                   "monthlyPriceCents, overageCentsPerMillion, maxFunctionBytes or stripePrice");
  auto r = c.db.exec("UPDATE plans SET " + sets + " WHERE name = $1 RETURNING name", values);
  if (!r) return db_failed(r.error());
  if (r->empty()) return problem(404, "not found", "no plan \"" + c.param("plan") + "\"");
  return json(200, "{\"plan\":" + jstr(c.param("plan")) + "}");
}

// The operator's list of teams: plan, members, this month's executions,
// credits left, subscription.
http::response operator_teams(call& c) {
  auto r = c.db.exec(
      "SELECT t.name, t.plan, (SELECT count(*) FROM memberships m WHERE m.team_id = t.id), "
      "coalesce((SELECT executions FROM team_months tm WHERE tm.team_id = t.id AND tm.month = $1), 0), "
      "(SELECT coalesce(sum(executions), 0) FROM credit_grants g WHERE g.team_id = t.id) - "
      "(SELECT coalesce(sum(credits_used), 0) FROM team_months tm WHERE tm.team_id = t.id), "
      "coalesce((SELECT s.plan || ': ' || s.status FROM subscriptions s WHERE s.team_id = t.id), ''), "
      "coalesce(t.pool, 'shared') FROM teams t ORDER BY t.name",
      {current_month()});
  if (!r) return db_failed(r.error());
  std::string out = "[";
  for (std::size_t i = 0; i < r->all.size(); ++i)
    out += std::string(i ? "," : "") + "{\"name\":" + jstr(r->at(i, 0)) + ",\"plan\":" + jstr(r->at(i, 1)) +
           ",\"members\":" + r->at(i, 2) + ",\"executions\":" + r->at(i, 3) + ",\"creditsBalance\":" + r->at(i, 4) +
           ",\"subscription\":" + (r->at(i, 5).empty() ? std::string("null") : jstr(r->at(i, 5))) +
           ",\"pool\":" + jstr(r->at(i, 6)) + "}";
  return json(200, out + "]");
}

}  // namespace

void add_metering_routes(std::vector<route>& out) {
  out.push_back({"POST", "/api/v1/internal/usage", "reportUsage",
                 "For engine nodes: cumulative execution counters, and a lease of executions per team", access::node,
                 role::none, true, report_usage});
  out.push_back({"GET", "/api/v1/teams/{team}/usage", "teamUsage",
                 "Executions by month and project, credits used, against the plan", access::signed_in, role::viewer,
                 false, team_usage});
  out.push_back({"GET", "/api/v1/teams/{team}/usage.csv", "teamUsageCsv", "Executions by month and project, as CSV",
                 access::signed_in, role::viewer, false, team_usage_csv});
  out.push_back({"GET", "/api/v1/teams/{team}/credits", "teamCredits", "Credits granted, used and left",
                 access::signed_in, role::viewer, false, team_credits});
  out.push_back({"POST", "/api/v1/operator/teams/{team}/credits", "grantCredits",
                 "Give a team executions, used before its plan's", access::operator_only, role::none, true,
                 grant_credits});
  out.push_back({"GET", "/api/v1/operator/teams", "operatorTeams",
                 "Every team: plan, members, this month's executions, credits left, subscription, pool",
                 access::operator_only, role::none, false, operator_teams});
  out.push_back({"PUT", "/api/v1/operator/plans/{plan}", "changePlan", "Change a plan's numbers", access::operator_only,
                 role::none, true, change_plan});
}

}  // namespace flowstate::manager
