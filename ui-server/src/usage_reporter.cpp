#include "flowstate/ui_server/usage_reporter.hpp"

#include <simdjson.h>

#include <chrono>
#include <cstdio>

#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/iso_time.hpp"
#include "flowstate/runtime/thread_name.hpp"
#include "flowstate/ui_server/control_plane.hpp"

namespace flowstate::admin {
namespace {

constexpr int64_t lease_use_ms = 8000;  // the control plane keeps a lease for 10 s
constexpr auto report_every = std::chrono::seconds(1);
constexpr auto look_every = std::chrono::milliseconds(100);  // for a lease half used

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

usage_reporter::usage_reporter(std::shared_ptr<control_plane> plane) : plane_(std::move(plane)) {}

void usage_reporter::set_node(std::string node) {
  std::lock_guard lock(mu_);
  node_ = std::move(node);
}

void usage_reporter::set_pool(std::string pool) {
  std::lock_guard lock(mu_);
  pool_ = std::move(pool);
}

void usage_reporter::set_addresses(std::string admin, std::string flows) {
  std::lock_guard lock(mu_);
  admin_ = std::move(admin);
  flows_ = std::move(flows);
}

usage_reporter::~usage_reporter() { stop(); }

result<std::shared_ptr<quota_account>> usage_reporter::account_for(const std::string& project) {
  const auto dot = project.find('.');
  if (dot == std::string::npos || dot == 0)
    return fail("a hosted project is named TEAM.PROJECT (its flowstate.yaml name), found \"" + project + "\"");
  const auto team = project.substr(0, dot);
  std::shared_ptr<quota_account> account;
  {
    std::lock_guard lock(mu_);
    auto& a = accounts_[team];
    if (a && a->admit() == std::nullopt) return a;
    if (!a) a = std::make_shared<quota_account>(team);
    account = a;
  }
  // A team new here (or whose lease ran out): asked now, so that the
  // project's first requests find a lease.
  if (auto st = report({account}); !st) return fail(st.error());
  if (auto refused = account->admit(); refused && refused->status == 503) return fail(refused->detail);
  return account;
}

void usage_reporter::start(counters_source counters) {
  {
    std::lock_guard lock(mu_);
    counters_ = std::move(counters);
  }
  thread_ = std::thread([this] {
    name_this_thread("fs-usage");
    std::unique_lock lock(mu_);
    auto last = std::chrono::steady_clock::now();
    while (!stopping_) {
      wake_.wait_for(lock, look_every, [&] { return stopping_; });
      if (stopping_) break;
      std::vector<std::shared_ptr<quota_account>> all;
      bool due = std::chrono::steady_clock::now() - last >= report_every;
      for (auto& [_, a] : accounts_) {
        all.push_back(a);
        due = due || a->wants_renewal();
      }
      if (!due) continue;
      last = std::chrono::steady_clock::now();
      lock.unlock();
      (void)report(all);  // a failure is kept in each account (its refusals say it)
      lock.lock();
    }
  });
}

void usage_reporter::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

status usage_reporter::report(const std::vector<std::shared_ptr<quota_account>>& teams) {
  std::lock_guard one(report_mu_);
  counters_source counters;
  {
    std::lock_guard lock(mu_);
    counters = counters_;
  }
  // What each team has run, read before the counters: every execution in
  // a base is already in the store the counters are read from.
  std::string node, pool, admin, flows;
  {
    std::lock_guard lock(mu_);
    node = node_;
    pool = pool_;
    admin = admin_;
    flows = flows_;
  }
  std::map<std::string, uint64_t> bases, used;
  std::map<std::string, bool> wanted;
  for (auto& a : teams) {
    wanted[a->team()] = a->wanted() || a->refused_recently();
    used[a->team()] = a->used_since_renewal();
    bases[a->team()] = a->consumed();
  }
  const int64_t asked_at = quota_account::steady_ms();
  const auto month = utc_month(wall_ms());
  std::string body = "{\"node\":";
  http::append_json_string(body, node);
  body += ",\"pool\":";
  http::append_json_string(body, pool);
  if (!admin.empty()) {
    body += ",\"admin\":";
    http::append_json_string(body, admin);
    body += ",\"flows\":";
    http::append_json_string(body, flows);
  }
  body += ",\"month\":\"" + month + "\",\"counters\":[";
  if (counters) {
    auto all = counters();
    if (!all) {
      for (auto& a : teams) a->unreachable("this node cannot read its counters: " + all.error());
      return fail(all.error());
    }
    bool first = true;
    for (auto& c : *all) {
      body += first ? "{\"project\":" : ",{\"project\":";
      first = false;
      http::append_json_string(body, c.project);
      body += ",\"month\":\"" + c.month + "\",\"group\":" + std::to_string(c.key_group) +
              ",\"executions\":" + std::to_string(c.executions) + "}";
    }
  }
  body += "],\"teams\":[";
  for (std::size_t i = 0; i < teams.size(); ++i) {
    body += i ? ",{\"team\":" : "{\"team\":";
    http::append_json_string(body, teams[i]->team());
    body +=
        ",\"used\":" + std::to_string(used[teams[i]->team()]) + (wanted[teams[i]->team()] ? ",\"wanted\":true}" : "}");
  }
  body += "]}";
  auto answer = plane_->post("/api/v1/internal/usage", body);
  std::string why;
  if (!answer)
    why = answer.error();
  else if (answer->first != 200)
    why = "answered " + std::to_string(answer->first) + ": " + answer->second.substr(0, 300);
  if (!why.empty()) {
    for (auto& a : teams) a->unreachable(why);
    if (!failing_.exchange(true))  // once per outage, in the node's log
      std::fprintf(stderr, "flowstate: usage report to the control plane failed: %s\n", why.c_str());
    return fail("the control plane's usage report: " + why);
  }
  if (failing_.exchange(false)) std::fprintf(stderr, "flowstate: usage reports reach the control plane again\n");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array leases;
  if (parser.parse(answer->second).get(doc) || doc["leases"].get(leases))
    return fail("the control plane's usage answer is not {leases}: " + answer->second.substr(0, 200));
  std::map<std::string, bool> granted;
  for (auto l : leases) {
    std::string_view team, m;
    uint64_t lease = 0, retry = 0;
    bool reached = false;
    if (l["team"].get(team) || l["month"].get(m) || l["lease"].get(lease) || l["capReached"].get(reached) ||
        l["retryAfter"].get(retry))
      continue;
    std::string_view placed = "shared";
    if (l["pool"].get(placed)) placed = "shared";  // a control plane before dedicated placement
    for (auto& a : teams)
      if (a->team() == team) {
        a->placed_elsewhere(placed == pool ? std::string() : std::string(placed));
        a->renew(bases[a->team()], lease, reached, static_cast<unsigned>(std::min<uint64_t>(retry, 86400 * 31)),
                 std::string(m), asked_at + lease_use_ms);
        granted[a->team()] = true;
      }
  }
  for (auto& a : teams)
    if (!granted[a->team()]) a->unreachable("it knows no team \"" + a->team() + "\"");
  return status::success();
}

}  // namespace flowstate::admin
