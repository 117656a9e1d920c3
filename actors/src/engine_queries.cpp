// The admin API's questions and error operations: projects, states, the
// trace, error records (show, replay, discard), the schema registry, and the
// Prometheus metrics.
#include <simdjson.h>
#include <caf/all.hpp>

#include <algorithm>
#include <charconv>
#include <future>
#include <map>
#include <optional>

#include "block_stats.hpp"
#include "engine_impl.hpp"
#include "errors.hpp"
#include "flowstate/runtime/decimal.hpp"
#include "flowstate/runtime/git_repo.hpp"
#include "flowstate/runtime/keys.hpp"
#include "metrics_exposition.hpp"
#include "peers.hpp"
#include "records.hpp"
#include "replication.hpp"
#include "sinks.hpp"
#include "trace.hpp"
#include "types.hpp"

namespace flowstate::engine_detail {
namespace {

// The `detail` of a problem+json response, else its body.
std::string detail_of(const http::response& r) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view detail;
  if (!parser.parse(r.body).get(doc) && !doc["detail"].get_string().get(detail)) return std::string(detail);
  return r.body;
}

// An error id's record key in project (tenant, project), if the id has the
// form of one.
std::optional<std::string> error_record_key(uint32_t tenant, uint32_t project, const std::string& id) {
  auto parsed = parse_error_id(id);
  if (!parsed) return std::nullopt;
  return error_key(tenant, project, parsed->first, parsed->second);
}

}  // namespace

std::shared_ptr<block_stats> engine_impl::stats_for(uint32_t project, const std::string& flow,
                                                    const std::string& block) {
  std::lock_guard lock(stats_mutex_);
  auto& slot = stats_[{project, flow, block}];
  if (!slot) slot = std::make_shared<block_stats>();
  return slot;
}

std::string engine_impl::metrics_text() const {
  std::vector<std::pair<project_ptr, std::shared_ptr<worker_pools>>> active;
  {
    std::shared_lock lock(mutex_);
    for (auto& [_, e] : projects_)
      if (e->active) active.emplace_back(e->active, e->pools);
  }
  metrics_exposition m;
  {
    std::lock_guard lock(stats_mutex_);
    for (auto& [at, stats] : stats_) {
      auto& [project_id, flow, block] = at;
      std::string project;
      for (auto& [rt, _] : active)
        if (rt->project_id == project_id) project = rt->name;
      if (project.empty()) continue;
      m.block(project, flow, block, *stats);
    }
  }
  m.node(core_.total_in_flight(), core_.state_cache_used());
  m.outbox(core_.outbox_pending.load(), core_.outbox_delivered.load(), core_.inbox_accepted.load(),
           core_.inbox_repeats.load());
  {
    std::lock_guard lock(core_.sinks_mu);
    for (auto& [at, c] : core_.sink_stats) {
      auto& [project_id, flow, block] = at;
      for (auto& [rt, _] : active)
        if (rt->project_id == project_id) m.sink(rt->name, flow, block, c.pending, c.delivered, c.retries, c.failed);
    }
  }
  if (peers_) {
    auto [requests, batches] = peers_->forwarded();
    m.forwarded(requests, batches);
    std::lock_guard lock(replication_mutex_);
    if (replicator_) {
      for (auto& p : replicator_->progress())
        m.replica(p.first, p.end, p.follower, p.last > p.acked ? p.last - p.acked : 0, p.in_sync);
      m.replication(replicator_->in_sync_changes(), failovers_.load());
    }
  }
  const auto& iso = isolation();
  std::vector<std::string_view> levels;
  for (auto level : {sandbox::sandbox_level::namespaces, sandbox::sandbox_level::landlock, sandbox::sandbox_level::off,
                     sandbox::sandbox_level::none})
    levels.push_back(sandbox::level_name(level));
  m.sandbox(sandbox::level_name(iso.level), levels, iso.degradations.size());
  for (auto& [rt, pools] : active) {
    auto queued = count_errors(*store_, rt->tenant, rt->project_id);
    if (!queued) continue;  // a read error: no sample rather than a wrong one
    auto trace_bytes = trace_bytes_total(*store_, rt->tenant, rt->project_id);
    m.project(rt->name, rt->revision, *queued, trace_bytes ? *trace_bytes : 0);
    if (!pools) continue;
    for (auto [language, worker] : {std::pair{"js", pools->js.get()}, std::pair{"py", pools->py.get()}})
      m.workers(rt->name, language, worker ? worker->worker_pids().size() : 0);
  }
  return m.text();
}

std::vector<project_info> engine_impl::projects() const {
  std::shared_lock lock(mutex_);
  std::vector<project_info> out;
  for (auto& [id, e] : projects_)
    out.push_back({e->active->name, e->dir, id, e->active->revision, e->pools ? e->pools->limits : sandbox::limits{},
                   e->active->trace.full_ms, e->active->trace.keep_ms});
  return out;
}

result<std::optional<std::string>> engine_impl::state_get(const std::string& name, const std::string& flow,
                                                          const std::string& block, const std::string& key) const {
  // In a cluster the key's state is on its owner.
  if (auto gate = core_.current_gate()) {
    auto d = (*gate)(key_group_of(key));
    if (d.refuse) return fail(detail_of(*d.refuse));
    if (!d.forward_to.empty()) {
      if (!peers_) return fail("the key belongs to node " + d.forward_to + " and this node has no --peer-listen");
      auto r = peers_->ask(d.forward_to, {"state", {name, flow, block, key}}, 10000);
      if (!r) return fail("the key's owner: " + r.error());
      if (r->status == 200) return std::optional<std::string>(std::move(r->body));
      if (r->status == 404) return std::optional<std::string>();
      return fail("node " + d.forward_to + ": " + detail_of(*r));
    }
  }
  return local_state_get(name, flow, block, key);
}

result<std::optional<std::string>> engine_impl::local_state_get(const std::string& name, const std::string& flow,
                                                                const std::string& block,
                                                                const std::string& key) const {
  auto* e = find(name);
  if (!e) return fail("no project named \"" + name + "\"");
  auto rt = e->active;
  int f = rt->find_flow(flow);
  if (f < 0) return fail("project " + name + " has no flow \"" + flow + "\"");
  if (rt->flows[static_cast<std::size_t>(f)].find_block(block) < 0)
    return fail("flow " + flow + " has no block \"" + block + "\"");
  return store_->read(column::state, state_key(rt->tenant, rt->project_id, key_group_of(key), flow, block, key));
}

result<project_ptr> engine_impl::active_named(const std::string& name) const {
  project_ptr rt;
  {
    std::shared_lock lock(mutex_);
    for (auto& [_, e] : projects_)
      if (e->active && (name.empty() || e->active->name == name)) {
        if (rt) return fail("the node serves several projects: name one");
        rt = e->active;
      }
  }
  if (!rt) return fail(name.empty() ? "the node serves no project" : "no project named \"" + name + "\"");
  return rt;
}

namespace {

// A trace query as the args of a peer query, and back.
std::vector<std::string> trace_args(const std::string& name, const trace_query& q) {
  std::vector<std::string> out{name,
                               q.flow,
                               q.block,
                               q.key,
                               q.trace_id,
                               q.errors_only ? "1" : "0",
                               std::to_string(q.since_ms),
                               std::to_string(q.until_ms),
                               std::to_string(q.limit)};
  if (!q.after.empty()) out.push_back(q.after);  // a 10th field: nodes of an earlier version read 9
  return out;
}

std::optional<trace_query> trace_from_args(const std::vector<std::string>& a) {
  if (a.size() != 9 && a.size() != 10) return std::nullopt;  // 9: a node of an earlier version (no cursor)
  trace_query q;
  q.flow = a[1];
  q.block = a[2];
  q.key = a[3];
  q.trace_id = a[4];
  q.errors_only = a[5] == "1";
  auto since = parse_decimal<uint64_t>(a[6]), until = parse_decimal<uint64_t>(a[7]);
  auto limit = parse_decimal<std::size_t>(a[8]);
  if (!since || !until || !limit) return std::nullopt;
  q.since_ms = static_cast<int64_t>(*since);
  q.until_ms = static_cast<int64_t>(*until);
  q.limit = *limit;
  if (a.size() == 10) q.after = a[9];
  return q;
}

// The commit time of a trace event (its "timeMs").
int64_t event_time(std::string_view event) {
  auto at = event.find("\"timeMs\":");
  if (at == std::string_view::npos) return 0;
  return std::strtoll(event.data() + at + 9, nullptr, 10);
}

}  // namespace

namespace {

// A cursor of the whole cluster's trace: each node's own cursor,
// "NODE:CURSOR,NODE:CURSOR" (node names hold no ':' or ','). A cursor
// without ':' is one node's: the asked node's.
std::map<std::string, std::string> split_cursor(const std::string& after, const std::string& self) {
  std::map<std::string, std::string> out;
  if (after.empty()) return out;
  if (after.find(':') == std::string::npos) {
    out[self] = after;
    return out;
  }
  std::size_t at = 0;
  while (at <= after.size()) {
    auto end = std::min(after.find(',', at), after.size());
    auto part = std::string_view(after).substr(at, end - at);
    if (auto colon = part.find(':'); colon != std::string_view::npos)
      out[std::string(part.substr(0, colon))] = std::string(part.substr(colon + 1));
    at = end + 1;
  }
  return out;
}

std::string join_cursor(const std::map<std::string, std::string>& cursors) {
  std::string out;
  for (auto& [node, cursor] : cursors)
    if (!cursor.empty()) out += (out.empty() ? "" : ",") + node + ":" + cursor;
  return out;
}

// An event's own cursor, and the event with another in its place.
std::string_view cursor_field(std::string_view event) {
  auto at = event.find("\"cursor\":\"");
  if (at == std::string_view::npos) return {};
  at += 10;
  return event.substr(at, event.find('"', at) - at);
}

void replace_cursor(std::string& event, const std::string& cursor) {
  auto at = event.find("\"cursor\":\"");
  if (at == std::string::npos) return;
  at += 10;
  event.replace(at, event.find('"', at) - at, cursor);
}

}  // namespace

result<std::vector<std::string>> engine_impl::trace(const std::string& name, const trace_query& q) const {
  auto rt = active_named(name);
  if (!rt) return fail(rt.error());
  const std::string& self = options_.node_name;
  auto cursors = split_cursor(q.after, self);
  // Following reads forward. A node without a position in the cursor (it
  // had no event yet, or joined since) starts at `since`, else at the
  // earliest position the cursor holds.
  const bool following = !q.after.empty() || q.follow;
  std::string start;
  if (following) {
    uint64_t earliest = 0;
    for (auto& [_, c] : cursors) {
      uint64_t t = 0;
      auto dash = c.find('-');
      if (dash != std::string::npos && std::from_chars(c.data(), c.data() + dash, t).ec == std::errc())
        earliest = earliest ? std::min(earliest, t) : t;
    }
    start = std::to_string(q.since_ms > 0 ? 0 : earliest) + "-0";  // `since` bounds the scan itself
  }
  auto position = [&](const std::string& node) {
    auto it = cursors.find(node);
    return it != cursors.end() ? it->second : start;
  };
  trace_query mine = q;
  mine.after = position(self);
  auto local = query_trace(*store_, (*rt)->tenant, (*rt)->project_id, mine);
  if (!local || !peers_ || !core_.has_gate.load() || q.this_node_only) return local;
  // In a cluster each node keeps the events of what it ran: every node is
  // asked, each from its own cursor, and the events merged by time; every
  // event's cursor is the whole cluster's up to it. Following, a node that
  // does not answer is left at its cursor and caught up when it answers
  // again.
  std::vector<std::pair<std::string, std::string>> events;  // (node, event)
  for (auto& ev : *local) events.emplace_back(self, std::move(ev));
  for (auto& node : peers_->connected_names()) {
    trace_query theirs = q;
    theirs.after = position(node);
    auto r = peers_->ask(node, {"trace", trace_args(name, theirs)}, 10000);
    std::string problem = !r ? r.error() : r->status != 200 ? detail_of(*r) : "";
    simdjson::dom::parser parser;
    simdjson::dom::array got;
    if (problem.empty() && parser.parse(r->body).get_array().get(got)) problem = "not a JSON array";
    if (!problem.empty()) {
      if (following) continue;
      return fail("the trace of node " + node + ": " + problem);
    }
    for (auto ev : got) events.emplace_back(node, std::string(simdjson::minify(ev)));
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const auto& a, const auto& b) { return event_time(a.second) < event_time(b.second); });
  // Following: the first `limit` after the cursors; else the newest `limit`,
  // the older ones passed over (their cursors count as seen).
  std::size_t first = 0, end = events.size();
  if (events.size() > q.limit) {
    if (following)
      end = q.limit;
    else
      first = events.size() - q.limit;
  }
  for (std::size_t i = 0; i < first; ++i) cursors[events[i].first] = std::string(cursor_field(events[i].second));
  std::vector<std::string> out;
  out.reserve(end - first);
  for (std::size_t i = first; i < end; ++i) {
    auto& [node, ev] = events[i];
    cursors[node] = std::string(cursor_field(ev));
    replace_cursor(ev, join_cursor(cursors));
    out.push_back(std::move(ev));
  }
  return out;
}

http::response engine_impl::answer_peer(const peer_query& q) const {
  auto ok = [](std::string body) {
    http::response r;
    r.body = std::move(body);
    return r;
  };
  if (q.kind == "state" && q.args.size() == 4) {
    auto v = local_state_get(q.args[0], q.args[1], q.args[2], q.args[3]);
    if (!v) return http::problem(500, "cannot read", v.error());
    if (!*v) return http::problem(404, "no state", "");
    return ok(std::move(**v));
  }
  if (q.kind == "qos2-check" && q.args.size() == 6) {
    // (tenant, project, group, client id, packet id, token): whether the
    // group's record of the packet id holds the token (engine_mqtt.cpp).
    auto tenant = parse_decimal<uint32_t>(q.args[0]), project = parse_decimal<uint32_t>(q.args[1]);
    auto group = parse_decimal<uint32_t>(q.args[2]);
    auto packet = parse_decimal<uint16_t>(q.args[4]);
    if (!tenant || !project || !group || *group >= key_group_count || !packet)
      return http::problem(400, "bad question", "qos2-check: tenant, project, group, client id, packet id, token");
    if (!core_.runs_here(*group)) return http::problem(409, "elsewhere", "the key group does not run here");
    auto holds =
        qos2_record_holds(idempotency_key(*tenant, *project, *group, qos2_record_name(q.args[3], *packet)), q.args[5]);
    if (!holds) return http::problem(500, "cannot read", "the packet id's record");
    return ok(*holds ? "yes" : "no");
  }
  if (q.kind == "errors" && q.args.size() == 4) {
    auto limit = parse_decimal<std::size_t>(q.args[3]);
    auto v = local_errors(q.args[0], q.args[1], q.args[2], limit.value_or(100));
    if (!v) return http::problem(500, "cannot read", v.error());
    std::string out = "[";
    for (auto& e : *v) out += (out.size() > 1 ? "," : "") + e;
    return ok(out + "]");
  }
  if (q.kind == "trace") {
    auto tq = trace_from_args(q.args);
    if (!tq) return http::problem(400, "bad question", "a trace query has 9 fields");
    auto rt = active_named(q.args[0]);
    if (!rt) return http::problem(404, "no project", rt.error());
    auto v = query_trace(*store_, (*rt)->tenant, (*rt)->project_id, *tq);
    if (!v) return http::problem(500, "cannot read", v.error());
    std::string out = "[";
    for (auto& e : *v) out += (out.size() > 1 ? "," : "") + e;
    return ok(out + "]");
  }
  if (q.kind == "graph") return ok(local_graph());
  if (q.kind == "stats" && q.args.size() == 1) {
    auto v = local_stats_json(q.args[0]);
    if (!v) return http::problem(404, "no project", v.error());
    return ok(std::move(*v));
  }
  if (q.kind == "error-show" && q.args.size() == 2) {
    auto v = local_error_show(q.args[0], q.args[1]);
    if (!v) return http::problem(500, "cannot read", v.error());
    if (!*v) return http::problem(404, "no error", "");
    return ok(std::move(**v));
  }
  if (q.kind == "git-pack" && q.args.size() == 2) {
    // The git objects of a revision, for a node that lacks them.
    auto* e = find(q.args[0]);
    if (!e) return http::problem(404, "no project", "no project named \"" + q.args[0] + "\" here");
    auto pack = pack_commit(e->dir, q.args[1]);
    if (!pack) return http::problem(500, "cannot pack", pack.error());
    return ok(std::move(*pack));
  }
  return http::problem(400, "unknown question", "this node does not answer \"" + q.kind + "\"");
}

status engine_impl::pack_from_peer(const std::string& dir, const std::string& project, const std::string& revision,
                                   const std::string& from) {
  auto r = peers_->ask(from, {"git-pack", {project, revision}}, 60000);
  if (!r) return fail("fetching revision " + revision + " from node " + from + ": " + r.error());
  if (r->status != 200) return fail("node " + from + " could not send revision " + revision + ": " + r->body);
  return add_pack(dir, r->body);
}

status engine_impl::fetch_revision(const std::string& project, const std::string& revision, const std::string& from) {
  auto* e = find(project);
  if (!e) return fail("no project named \"" + project + "\"");
  auto have = commit_exists(e->dir, revision);
  if (have && *have) return status::success();
  if (!peers_) return fail("revision " + revision + " is not in " + e->dir + " and this node cannot ask others");
  if (auto st = pack_from_peer(e->dir, project, revision, from); !st) return st;
  have = commit_exists(e->dir, revision);
  if (!have || !*have) return fail("node " + from + " sent objects without revision " + revision);
  return status::success();
}

// The `at` of an error record (ISO 8601, so its text sorts by time).
std::string_view error_time(std::string_view record) {
  auto at = record.find("\"at\":\"");
  if (at == std::string_view::npos) return {};
  auto end = record.find('"', at + 6);
  return end == std::string_view::npos ? std::string_view() : record.substr(at + 6, end - at - 6);
}

result<std::vector<std::string>> engine_impl::errors(const std::string& name, const std::string& flow,
                                                     const std::string& type, std::size_t limit) const {
  auto out = local_errors(name, flow, type, limit);
  if (!out || !peers_ || !core_.has_gate.load()) return out;
  // In a cluster each error is kept by its key's owner: every node is asked.
  for (auto& node : peers_->connected_names()) {
    auto r = peers_->ask(node, {"errors", {name, flow, type, std::to_string(limit)}}, 10000);
    if (!r) return fail("the errors of node " + node + ": " + r.error());
    if (r->status != 200) return fail("the errors of node " + node + ": " + detail_of(*r));
    simdjson::dom::parser parser;
    simdjson::dom::array records;
    if (parser.parse(r->body).get_array().get(records))
      return fail("the errors of node " + node + ": not a JSON array");
    for (auto rec : records) out->push_back(simdjson::minify(rec));
  }
  std::stable_sort(out->begin(), out->end(),
                   [](const std::string& a, const std::string& b) { return error_time(a) < error_time(b); });
  if (out->size() > limit) out->resize(limit);
  return out;
}

result<std::vector<std::string>> engine_impl::local_errors(const std::string& name, const std::string& flow,
                                                           const std::string& type, std::size_t limit) const {
  std::vector<std::string> out;
  std::vector<project_ptr> targets;
  {
    std::shared_lock lock(mutex_);
    for (auto& [_, e] : projects_)
      if (name.empty() || e->active->name == name) targets.push_back(e->active);
  }
  // Oldest first: records are ordered by key group, then sequence; the
  // sequence orders them in time across groups.
  std::vector<std::pair<uint64_t, std::string>> found;
  for (auto& rt : targets) {
    auto scanned = store_->scan_prefix(column::errors, project_prefix(rt->tenant, rt->project_id),
                                       [&](std::string_view key, std::string_view value) {
                                         // A follower's copy: its leader lists it.
                                         if (auto g = key_group_of_record(key); g && !core_.runs_here(*g)) return true;
                                         std::string v(value);
                                         if (!flow.empty() && v.find("\"flow\":\"" + flow + "\"") == std::string::npos)
                                           return true;
                                         if (!type.empty() && v.find("\"type\":\"" + type + "\"") == std::string::npos)
                                           return true;
                                         found.emplace_back(error_seq_of(key), std::move(v));
                                         return true;
                                       });
    if (!scanned) return fail(scanned.error());
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& f : found) {
    if (out.size() >= limit) break;
    out.push_back(std::move(f.second));
  }
  return out;
}

result<std::string> engine_impl::error_owner(const std::string& id) const {
  auto parsed = parse_error_id(id);
  auto gate = core_.current_gate();
  if (!parsed || parsed->first >= key_group_count || !gate) return std::string();  // here (a bad id is told here)
  auto d = (*gate)(parsed->first);
  if (d.refuse) return fail(detail_of(*d.refuse));
  if (!d.forward_to.empty() && !peers_)
    return fail("error " + id + " is kept by node " + d.forward_to + " and this node has no --peer-listen");
  return d.forward_to;
}

result<http::response> engine_impl::ask_error_owner(const std::string& node, const std::string& kind,
                                                    const std::string& name, const std::string& id) const {
  auto r = peers_->ask(node, {kind, {name, id}}, 10000);
  if (!r) return fail("error " + id + " is kept by node " + node + ", which did not answer: " + r.error());
  return r;
}

result<std::optional<std::string>> engine_impl::error_show(const std::string& name, const std::string& id) const {
  auto owner = error_owner(id);
  if (!owner) return fail(owner.error());
  if (owner->empty()) return local_error_show(name, id);
  auto r = ask_error_owner(*owner, "error-show", name, id);
  if (!r) return fail(r.error());
  if (r->status == 200) return std::optional<std::string>(std::move(r->body));
  if (r->status == 404) return std::optional<std::string>();
  return fail("node " + *owner + ": " + detail_of(*r));
}

status engine_impl::error_replay(const std::string& name, const std::string& id) {
  return error_change("error-replay", name, id, true);
}

status engine_impl::error_discard(const std::string& name, const std::string& id) {
  return error_change("error-discard", name, id, true);
}

status engine_impl::error_change(const std::string& kind, const std::string& name, const std::string& id,
                                 bool may_ask) {
  auto owner = error_owner(id);
  if (!owner) return fail(owner.error());
  if (!owner->empty() && !may_ask)  // asked by a node whose view differs: not passed on again
    return fail("node " + options_.node_name + " does not keep error " + id + " (its view: node " + *owner +
                "); try again in a moment");
  if (owner->empty()) return kind == "error-replay" ? local_error_replay(name, id) : local_error_discard(name, id);
  auto r = ask_error_owner(*owner, kind, name, id);
  if (!r) return fail(r.error());
  if (r->status == 200) return status::success();
  return fail(detail_of(*r));
}

result<std::optional<std::string>> engine_impl::local_error_show(const std::string& name, const std::string& id) const {
  auto* e = find(name);
  auto rkey = e ? error_record_key(e->active->tenant, e->id, id) : std::nullopt;
  if (!rkey) return std::optional<std::string>();
  return store_->read(column::errors, *rkey);
}

status engine_impl::local_error_replay(const std::string& name, const std::string& id) {
  auto* e = find(name);
  if (!e) return fail("no project named \"" + name + "\"");
  auto parsed = parse_error_id(id);
  if (!parsed) return fail("error ids look like 17-4711 (key group, then sequence), got \"" + id + "\"");
  std::lock_guard guard(e->deploy_mutex);  // no activation while we pick the block
  auto rt = e->active;
  auto rkey = error_key(rt->tenant, e->id, parsed->first, parsed->second);
  auto record = store_->read(column::errors, rkey);
  if (!record) return fail(record.error());
  if (!*record) return fail("no error " + id + " in project " + name);
  auto err = parse_error_record(**record);
  if (!err) return fail(err.error());
  int f = rt->find_flow(err->flow);
  int b = f < 0 ? -1 : rt->flows[static_cast<std::size_t>(f)].find_block(err->block);
  const auto kind = b < 0 ? block_kind::http_request
                          : rt->flows[static_cast<std::size_t>(f)].blocks[static_cast<std::size_t>(b)].kind;
  if (kind == block_kind::sink || kind == block_kind::query) return replay_to_sink(*rt, rkey, *err, parsed->first, id);
  if (kind != block_kind::function)
    return fail("block " + err->block + " of flow " + err->flow +
                " no longer runs a function or a sink; discard the error instead");
  auto item = std::make_shared<work_item>();
  item->project = rt;
  item->flow = static_cast<uint32_t>(f);
  item->block = static_cast<uint32_t>(b);
  item->msg.id = err->message_id;
  item->msg.key = err->key;
  item->msg.trace_id = err->trace_id;
  item->msg.time_ms = err->accepted_ms;
  item->msg.payload = err->input_json;
  item->queue_seq = store_->next_sequence();
  commit_batch batch;
  batch.erase(column::errors, rkey);
  batch.add_count(error_count_key(rt->tenant, e->id, parsed->first), minus(1));
  batch.put(column::queue, queue_key(rt->tenant, e->id, key_group_of(item->msg.key), item->queue_seq),
            encode_queued({err->flow, err->block, item->msg}));
  item->store_epoch = store_->epoch();
  if (auto st = commit_in_group(parsed->first, std::move(batch), rt->durability, "error " + id); !st) return st;
  submit(std::move(item));
  return status::success();
}

// A sink's failed delivery, replayed: a new delivery of the same output
// (same id), in the commit that removes the error.
status engine_impl::replay_to_sink(const project_rt& rt, const std::string& rkey, const error_fields& err,
                                   uint32_t group, const std::string& id) {
  message m;
  m.id = err.message_id;
  m.key = err.key;
  m.trace_id = err.trace_id;
  m.time_ms = err.accepted_ms;
  m.payload = err.input_json;
  const uint64_t seq = store_->next_sequence();
  const uint32_t key_group = key_group_of(m.key);
  auto queued = encode_queued({err.flow, err.block, std::move(m)});
  commit_batch batch;
  batch.erase(column::errors, rkey);
  batch.add_count(error_count_key(rt.tenant, rt.project_id, group), minus(1));
  batch.put(column::outbox, sink_entry_key(rt.tenant, rt.project_id, key_group, seq), queued);
  if (auto st = commit_in_group(group, std::move(batch), rt.durability, "error " + id); !st) return st;
  auto entries = std::make_shared<std::vector<sink_entry>>();
  entries->push_back({rt.tenant, rt.project_id, key_group, seq, std::move(queued), nullptr, {}});
  caf::anon_send(core_.sinks, std::move(entries));
  return status::success();
}

status engine_impl::local_error_discard(const std::string& name, const std::string& id) {
  auto* e = find(name);
  if (!e) return fail("no project named \"" + name + "\"");
  auto parsed = parse_error_id(id);
  if (!parsed) return fail("error ids look like 17-4711 (key group, then sequence), got \"" + id + "\"");
  auto rt = e->active;
  auto rkey = error_key(rt->tenant, e->id, parsed->first, parsed->second);
  auto record = store_->read(column::errors, rkey);
  if (!record) return fail(record.error());
  if (!*record) return fail("no error " + id + " in project " + name);
  commit_batch batch;
  batch.erase(column::errors, rkey);
  batch.add_count(error_count_key(rt->tenant, e->id, parsed->first), minus(1));
  return commit_in_group(parsed->first, std::move(batch), rt->durability, "error " + id);
}

status engine_impl::commit_in_group(uint32_t group, commit_batch&& batch, durability_mode mode,
                                    const std::string& what) {
  if (group >= key_group_count) return fail("no key group " + std::to_string(group));
  // A group being moved (its records are being copied) is not changed.
  group_admission admitted(core_, group);
  if (!admitted.here())
    return fail("key group " + std::to_string(group) + " of " + what +
                " is moving to another node; try again in a moment");
  return commit_and_wait(std::move(batch), mode);
}

namespace {
// A team's registry types: meta ("team-schema", TEAM, URL); the node's:
// meta ("schema", URL).
std::string team_schema_key(const std::string& team, std::string_view url) {
  return key_builder{}.str("team-schema").str(team).str(url).take();
}
}  // namespace

status engine_impl::schema_add(const std::string& url, const std::string& schema_json, const std::string& team) {
  if (url.find("://") == std::string::npos)
    return fail("a registry type is a full URL like https://example.com/Telemetry.json");
  if (auto problem = schema_problem(schema_json, registry_for(team))) return fail(url + ": " + *problem);
  commit_batch b;
  b.put(column::meta, team.empty() ? meta_key("schema", url) : team_schema_key(team, url), schema_json);
  return store_->write_now(std::move(b), true);
}

result<std::vector<std::string>> engine_impl::schema_urls(const std::string& team) const {
  std::vector<std::string> out;
  auto list = [&](std::string prefix, int skip) {
    return store_->scan_prefix(column::meta, prefix, [&](std::string_view key, std::string_view) {
      key_reader r(key);
      for (int i = 0; i < skip; ++i) (void)r.str();
      if (auto url = r.str()) out.push_back(std::move(*url));
      return true;
    });
  };
  if (auto st = list(key_builder{}.str("schema").take(), 1); !st) return fail(st.error());
  if (!team.empty())
    if (auto st = list(key_builder{}.str("team-schema").str(team).take(), 2); !st) return fail(st.error());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

registry_lookup engine_impl::registry_for(const std::string& team) const {
  if (team.empty()) return registry_lookup_;
  return [this, team](std::string_view url) -> std::optional<std::string> {
    auto v = store_->read(column::meta, team_schema_key(team, url));
    if (!v) {
      std::fprintf(stderr, "flowstate: schema registry of team %s: %s\n", team.c_str(), v.error().c_str());
      return std::nullopt;
    }
    if (*v) return std::move(*v);
    return registry_lookup_(url);
  };
}

status engine_impl::commit_and_wait(commit_batch&& batch, durability_mode mode) {
  std::promise<status> done;
  auto outcome = done.get_future();
  // Exactly one of the two callbacks runs, once.
  store_->commit(
      std::move(batch), mode, [&done] { done.set_value(status::success()); },
      [&done](const std::string& reason) { done.set_value(fail(reason)); });
  return outcome.get();
}

}  // namespace flowstate::engine_detail
