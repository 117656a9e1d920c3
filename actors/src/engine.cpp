// The engine: opens the store, spawns the shards, activates project
// revisions (deploys) and answers the admin API's questions.
#include "flowstate/actors/engine.hpp"

#include <caf/all.hpp>

#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>

#include "block_stats.hpp"
#include "core.hpp"
#include "errors.hpp"
#include "flowstate/actors/project_limits.hpp"
#include "flowstate/drivers/http_routes.hpp"
#include "flowstate/drivers/http_static.hpp"
#include "flowstate/runtime/fault.hpp"
#include "flowstate/runtime/file_source.hpp"
#include "flowstate/runtime/git_repo.hpp"
#include "flowstate/runtime/keys.hpp"
#include "flowstate/runtime/project_loader.hpp"
#include "flowstate/runtime/python_modules.hpp"
#include "flowstate/sandbox/bundle.hpp"
#include "flowstate/sandbox/limits.hpp"
#include "flowstate/sandbox/worker_client.hpp"
#include "metrics_text.hpp"
#include "records.hpp"
#include "trace.hpp"
#include "types.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::work_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::project_ptr)

namespace flowstate {
namespace {

using namespace engine_detail;
namespace fs = std::filesystem;

// What the flow listener reads per request: the routes of every project and
// each project's active revision. Replaced whole at every activation.
// A project's share of the flow listener: its host and path prefix, its
// routes (relative to the prefix) and its public/ files.
struct site {
  std::string host;    // "" = any host
  std::string prefix;  // "" = none, else "/todo"
  uint32_t project_id = 0;
  http::route_table routes;
  std::shared_ptr<const http::static_site> files;
};

struct routing_snapshot {
  std::vector<site> sites;  // most specific first: named hosts, then longer prefixes
  std::unordered_map<uint32_t, project_ptr> projects;
};

// The request's host without its port.
std::string_view host_of(const http::request& req) {
  auto h = req.header("host");
  if (!h.empty() && h.front() == '[') return h.substr(0, h.find(']') + 1);
  return h.substr(0, h.find(':'));
}

// The path under the site's prefix, or nullopt when it is not under it.
std::optional<std::string_view> under_prefix(std::string_view path, const std::string& prefix) {
  if (prefix.empty()) return path;
  if (path.substr(0, prefix.size()) != prefix) return std::nullopt;
  auto rest = path.substr(prefix.size());
  if (rest.empty()) return std::string_view("/");
  if (rest.front() != '/') return std::nullopt;
  return rest;
}

// W3C traceparent "00-<32 hex trace id>-<16 hex parent>-<2 hex flags>".
std::string trace_id_from(std::string_view traceparent) {
  if (traceparent.size() < 55 || traceparent[2] != '-' || traceparent[35] != '-') return {};
  auto id = traceparent.substr(3, 32);
  for (char c : id)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return {};
  if (id == std::string_view("00000000000000000000000000000000")) return {};
  return std::string(id);
}

}  // namespace

// The worker processes of a project for one set of limits, started on first
// use: JS (V8) and Python.
struct engine_detail::worker_pools {
  sandbox::limits limits;
  uint64_t generation = 0;  // tells load-cache entries of different pools apart
  std::unique_ptr<sandbox::worker_client> js, py;
  ~worker_pools() {
    for (auto* w : {js.get(), py.get()})
      if (w) w->stop();
  }
};

namespace {

struct project_entry {
  std::string dir;
  uint32_t id = 0;
  project_ptr active;
  std::string host, prefix;  // of the active revision's manifest
  std::shared_ptr<const http::static_site> files;
  // The active revision's workers (also held by every revision using them):
  // a deploy that changes the project's limits gets new ones.
  std::shared_ptr<worker_pools> pools;
  std::vector<http::route> routes;
  std::vector<std::pair<sandbox::worker_client*, uint64_t>> retired_functions;  // of the revision before active
  std::shared_ptr<worker_pools> retired_pools;                                  // theirs
  // Functions loaded in the workers, by worker generation, language, file and
  // (bundled) source: a deploy loads only what changed, so a new function
  // answers fast however many the project has.
  std::map<std::string, uint64_t> loaded;
  std::mutex deploy_mutex;
};

std::string meta_key(std::string_view what, std::string_view name) { return key_builder{}.str(what).str(name).take(); }
std::string meta_key(std::string_view what, uint32_t id) { return key_builder{}.str(what).u32(id).take(); }

caf::actor_system_config& configure(caf::actor_system_config& cfg, unsigned threads, const std::string& policy) {
  cfg.set("scheduler.max-threads", static_cast<size_t>(threads));
  // "sharing": one queue and a condition variable, no polling while idle;
  // "stealing": CAF's default work stealing, which polls with short sleeps.
  cfg.set("scheduler.policy", policy == "stealing" ? caf::atom("stealing") : caf::atom("sharing"));
  // One busy shard must not starve the others; sleep less when idle polling.
  cfg.set("scheduler.max-throughput", static_cast<size_t>(64));
  cfg.set("work-stealing.moderate-sleep-duration", caf::timespan{std::chrono::microseconds(20)});
  cfg.set("work-stealing.relaxed-sleep-duration", caf::timespan{std::chrono::milliseconds(1)});
  cfg.set("logger.console", caf::atom("none"));
  return cfg;
}

class engine_impl final : public engine {
 public:
  explicit engine_impl(engine_options o) : options_(std::move(o)) {}

  ~engine_impl() override {
    drain(0);
    for (auto& a : core_.shards) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    core_.shards.clear();
    system_.reset();
    for (auto& [_, p] : projects_)
      for (auto* pools : {p->pools.get(), p->retired_pools.get()})
        if (pools)
          for (auto* w : {pools->js.get(), pools->py.get()})
            if (w) w->stop();
  }

  status open() {
    fs::create_directories(options_.data_dir);
    store_options so;
    so.path = (fs::path(options_.data_dir) / "store").string();
    // Stored Idempotency-Key responses go after the TTL, in compactions.
    so.expired[column::idempotency] = [ttl = options_.idempotency_ttl_ms](std::string_view, std::string_view value) {
      return idempotency_expired(value, ttl, now_ms());
    };
    auto opened = store::open(so);
    if (!opened) return fail(opened.error());
    store_ = std::move(*opened);
    core_.db = store_.get();
    core_.max_in_flight = options_.max_in_flight_per_shard;
    core_.state_cache_bytes = options_.state_cache_bytes;
    core_.shards_planned = options_.shards;
    configure(config_, options_.scheduler_threads, options_.scheduler_policy);
    system_ = std::make_unique<caf::actor_system>(config_);
    core_.in_flight = std::make_unique<std::atomic<std::size_t>[]>(options_.shards);
    core_.state_cache_bytes_used = std::make_unique<std::atomic<std::size_t>[]>(options_.shards);
    for (unsigned i = 0; i < options_.shards; ++i) {
      core_.in_flight[i] = 0;
      core_.shards.push_back(spawn_shard(*system_, core_, i));
    }
    std::atomic_store(&snapshot_, std::make_shared<const routing_snapshot>());
    return status::success();
  }

  status add_project(const std::string& dir_in) override {
    std::error_code ec;
    auto dir = fs::weakly_canonical(fs::absolute(dir_in), ec).string();
    if (ec || !fs::is_directory(dir)) return fail(dir_in + ": not a directory");
    auto head = head_commit(dir);
    if (!head) return fail(dir_in + ": " + head.error());
    auto entry = std::make_unique<project_entry>();
    entry->dir = dir;
    entry->id = project_id_for(dir);
    auto recorded = store_->get(column::meta, meta_key("active", entry->id));
    std::string revision = recorded ? *recorded : *head;
    if (revision.empty())
      return fail(dir_in + ": the repository has no commit yet (commit the project, e.g. git add -A && git commit)");
    auto rt = build(*entry, revision, 1, entry->routes);
    if (!rt) return fail(dir_in + " at " + revision.substr(0, 12) + ":\n" + rt.error());
    auto* e = entry.get();
    {
      std::unique_lock lock(mutex_);
      for (auto& [_, other] : projects_)
        if (other->active->name == (*rt)->name)
          return fail(dir_in + ": another project is already named \"" + (*rt)->name + "\"");
      projects_[e->id] = std::move(entry);
    }
    if (auto st = check_routes(*e, **rt, e->routes); !st) {
      std::unique_lock lock(mutex_);
      projects_.erase(e->id);
      return fail(dir_in + ": " + st.error());
    }
    if (!recorded) {
      commit_batch b;
      b.put(column::meta, meta_key("active", e->id), revision);
      if (auto st = store_->write_now(std::move(b), true); !st) return fail(st.error());
    }
    activate(*e, std::move(*rt));
    return status::success();
  }

  status recover() override {
    std::vector<project_entry*> entries;
    {
      std::shared_lock lock(mutex_);
      for (auto& [_, p] : projects_) entries.push_back(p.get());
    }
    for (auto* e : entries) {
      auto rt = e->active;
      auto [begin, end] = queue_range(rt->tenant, rt->project_id, 0, key_group_count);
      std::size_t n = 0;
      store_->scan_range(column::queue, begin, end, [&](std::string_view key, std::string_view value) {
        key_reader kr(key);
        auto tenant = kr.u32();
        auto project = kr.u32();
        auto group = kr.u32();
        auto seq = kr.u64();
        auto q = decode_queued(value);
        if (!tenant || !project || !group || !seq || !q) return true;
        auto item = std::make_shared<work_item>();
        item->project = rt;
        item->queue_seq = *seq;
        item->msg = std::move(q->msg);
        int f = rt->find_flow(q->flow);
        int b = f < 0 ? -1 : rt->flows[static_cast<std::size_t>(f)].find_block(q->block);
        if (b < 0) {
          undeliverable(rt, *q, std::string(key));
          return true;
        }
        item->flow = static_cast<uint32_t>(f);
        item->block = static_cast<uint32_t>(b);
        submit(std::move(item));
        ++n;
        return true;
      });
      if (n) std::fprintf(stderr, "flowstate: %s: re-running %zu queued input(s)\n", rt->name.c_str(), n);
    }
    ready_ = true;
    return status::success();
  }

  bool ready() const override { return ready_.load(); }
  std::size_t in_flight() const override { return core_.total_in_flight(); }

  std::shared_ptr<block_stats> stats_for(uint32_t project, const std::string& flow, const std::string& block) {
    std::lock_guard lock(stats_mutex_);
    auto& slot = stats_[{project, flow, block}];
    if (!slot) slot = std::make_shared<block_stats>();
    return slot;
  }

  std::string metrics_text() const override {
    std::vector<std::pair<project_ptr, std::shared_ptr<worker_pools>>> active;
    {
      std::shared_lock lock(mutex_);
      for (auto& [_, e] : projects_)
        if (e->active) active.emplace_back(e->active, e->pools);
    }
    metrics_writer m;
    m.family("flowstate_executions_total", "counter", "Executions of function blocks, by outcome");
    m.family("flowstate_execution_duration_seconds", "histogram",
             "Duration of function calls, from sending to the worker to its answer");
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
    m.family("flowstate_in_flight_messages", "gauge", "Messages accepted or re-run and not yet finished");
    m.sample("flowstate_in_flight_messages", {}, double(core_.total_in_flight()));
    m.family("flowstate_state_cache_bytes", "gauge", "Bytes of the latest states held in memory, all shards");
    m.sample("flowstate_state_cache_bytes", {}, double(core_.state_cache_used()));
    m.family("flowstate_project_info", "gauge", "The active revision of each project (value 1)");
    m.family("flowstate_errors_queued", "gauge", "Errors in a project's error queue");
    m.family("flowstate_trace_bytes", "gauge", "Bytes of a project's execution trace (as of the last second)");
    m.family("flowstate_worker_processes", "gauge", "Live worker processes of a project, by language");
    for (auto& [rt, pools] : active) {
      m.sample("flowstate_project_info", {{"project", rt->name}, {"revision", rt->revision}}, 1);
      auto count = store_->get(column::metering, error_count_key(rt->tenant, rt->project_id));
      uint64_t queued = count ? decode_count(*count) : 0;
      m.sample("flowstate_errors_queued", {{"project", rt->name}}, queued > (uint64_t{1} << 62) ? 0 : double(queued));
      m.sample("flowstate_trace_bytes", {{"project", rt->name}},
               double(trace_bytes_total(*store_, rt->tenant, rt->project_id)));
      if (!pools) continue;
      for (auto [language, worker] : {std::pair{"js", pools->js.get()}, std::pair{"py", pools->py.get()}})
        m.sample("flowstate_worker_processes", {{"project", rt->name}, {"language", language}},
                 worker ? double(worker->worker_pids().size()) : 0);
    }
    return m.take();
  }

  void handle_flow_request(http::request&& req, http::responder_ptr reply) override {
    if (core_.draining.load()) {
      auto r = http::problem(503, "draining", "the node is shutting down");
      r.headers.emplace_back("Retry-After", "1");
      reply->send(std::move(r));
      return;
    }
    auto snap = std::atomic_load(&snapshot_);
    auto [path, query] = http::split_target(req.target);
    auto host = host_of(req);
    const site* fallback = nullptr;
    std::optional<http::route_match> m;
    const site* matched = nullptr;
    for (auto& s : snap->sites) {
      if (!s.host.empty() && s.host != host) continue;
      auto sub = under_prefix(path, s.prefix);
      if (!sub) continue;
      if (!fallback) fallback = &s;
      if ((m = s.routes.match(req.method, *sub))) {
        matched = &s;
        break;
      }
    }
    if (!m) {
      if (fallback && fallback->files) {
        auto sub = under_prefix(path, fallback->prefix);
        if (auto r = fallback->files->serve(req.method, *sub, req.header("if-none-match")))
          return reply->send(std::move(*r));
      }
      return reply->send(http::problem(404, "not found", "no route matches " + req.method + " " + std::string(path)));
    }
    auto pit = snap->projects.find(matched->project_id);
    if (pit == snap->projects.end()) {
      reply->send(http::problem(404, "not found", "the project of this route is not active"));
      return;
    }
    const auto& rt = pit->second;
    const auto& flow = rt->flows[m->matched->flow_index];
    // The message sees the path under the project's prefix.
    if (!matched->prefix.empty()) req.target = req.target.substr(matched->prefix.size());
    auto payload = http::build_request_message(req, *m);
    if (!payload) {
      reply->send(http::problem(400, "bad request", payload.error()));
      return;
    }
    if (flow.blocks.size() < 2 || flow.blocks[1].kind != block_kind::function) {
      http::response r;
      r.status = 202;
      r.content_type.clear();
      reply->send(std::move(r));
      return;
    }
    auto item = std::make_shared<work_item>();
    item->project = rt;
    item->flow = m->matched->flow_index;
    item->block = 1;
    item->msg.id = new_message_id();
    item->msg.key = std::move(m->key);
    item->msg.trace_id = trace_id_from(req.header("traceparent"));
    if (item->msg.trace_id.empty()) item->msg.trace_id = item->msg.id;
    item->msg.time_ms = now_ms();
    item->msg.payload = std::move(*payload);
    if (const auto& kp = flow.blocks[1].key_pointer) {
      auto key = key_at_pointer(item->msg.payload, *kp);
      if (!key) {
        commit_batch b;
        auto e =
            make_error(*store_, *rt, item->flow, flow.blocks[1].id, item->msg, "PreconditionFailed", key.error(), "{}");
        auto routed = record_error(b, *store_, rt, item->flow, e);
        store_->commit(std::move(b), rt->durability,
                       [reply, r = error_response(e)]() mutable { reply->send(std::move(r)); });
        if (routed) submit(std::move(routed));
        return;
      }
      item->msg.key = std::move(*key);
    }
    auto shard = core_.shard_of(item->msg.key);
    if (core_.in_flight[shard].load() >= core_.max_in_flight) {
      auto r = http::problem(503, "overloaded", "too much work in flight; retry shortly");
      r.headers.emplace_back("Retry-After", "1");
      reply->send(std::move(r));
      return;
    }
    if (auto idem = req.header("idempotency-key"); !idem.empty()) {
      item->idempotency_key = key_builder{}.u32(rt->tenant).u32(rt->project_id).str(idem).take();
      if (core_.idempotency.join(item->idempotency_key, reply) == idempotency_registry::outcome::waiting) return;
      auto stored = store_->get(column::idempotency, item->idempotency_key);
      if (stored && !idempotency_expired(*stored, options_.idempotency_ttl_ms, now_ms())) {
        if (auto r = decode_response(*stored)) {
          core_.idempotency.complete(item->idempotency_key, *r);
          r->headers.emplace_back("Idempotent-Replayed", "true");
          return reply->send(std::move(*r));
        }
      }
    }
    if (m->matched->timeout_ms)
      reply->set_deadline(
          m->matched->timeout_ms,
          http::problem(504, "Timeout",
                        "no response within the route's timeout of " + std::to_string(m->matched->timeout_ms) +
                            " ms; the message was accepted and is still processed"));
    item->reply = std::move(reply);
    submit(std::move(item));
  }

  deploy_outcome deploy(const std::string& name, const std::string& revision, const std::string& expected) override {
    deploy_outcome out;
    project_entry* e = find(name);
    if (!e) return {404, "no project named \"" + name + "\"", "", ""};
    std::lock_guard guard(e->deploy_mutex);
    out.replaced = e->active->revision;
    out.revision = out.replaced;
    if (!expected.empty() && expected != out.replaced) {
      out.http_status = 409;
      out.detail = "the active revision is " + out.replaced + ", not " + expected + " (a concurrent deploy?)";
      return out;
    }
    auto full = resolve(e->dir, revision);
    if (!full) return {422, "revision " + revision + ": " + full.error(), out.replaced, out.replaced};
    if (*full == out.replaced) return out;
    std::vector<http::route> routes;
    auto rt = build(*e, *full, e->active->epoch + 1, routes);
    if (!rt) return {422, rt.error(), out.replaced, out.replaced};
    if (auto st = check_routes(*e, **rt, routes); !st) {
      unload((*rt)->fresh_function_ids, *e);
      return {422, st.error(), out.replaced, out.replaced};
    }
    fault_point("deploy.before_record");
    commit_batch b;
    b.put(column::meta, meta_key("active", e->id), *full);
    if (auto st = store_->write_now(std::move(b), true); !st) return {500, st.error(), out.replaced, out.replaced};
    fault_point("deploy.after_record");
    {
      std::unique_lock lock(mutex_);
      e->routes = std::move(routes);
    }
    activate(*e, std::move(*rt));
    fault_point("deploy.after_activate");
    out.revision = *full;
    return out;
  }

  std::vector<project_info> projects() const override {
    std::shared_lock lock(mutex_);
    std::vector<project_info> out;
    for (auto& [id, e] : projects_)
      out.push_back(
          {e->active->name, e->dir, id, e->active->revision, e->pools ? e->pools->limits : sandbox::limits{}});
    return out;
  }

  result<std::optional<std::string>> state_get(const std::string& name, const std::string& flow,
                                               const std::string& block, const std::string& key) const override {
    auto* e = find(name);
    if (!e) return fail("no project named \"" + name + "\"");
    auto rt = e->active;
    int f = rt->find_flow(flow);
    if (f < 0) return fail("project " + name + " has no flow \"" + flow + "\"");
    if (rt->flows[static_cast<std::size_t>(f)].find_block(block) < 0)
      return fail("flow " + flow + " has no block \"" + block + "\"");
    return store_->get(column::state, state_key(rt->tenant, rt->project_id, key_group_of(key), flow, block, key));
  }

  result<std::vector<std::string>> trace(const std::string& name, const trace_query& q) const override {
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
    return query_trace(*store_, rt->tenant, rt->project_id, q);
  }

  std::vector<std::string> errors(const std::string& name, const std::string& flow, const std::string& type,
                                  std::size_t limit) const override {
    std::vector<std::string> out;
    std::vector<project_ptr> targets;
    {
      std::shared_lock lock(mutex_);
      for (auto& [_, e] : projects_)
        if (name.empty() || e->active->name == name) targets.push_back(e->active);
    }
    for (auto& rt : targets) {
      store_->scan_prefix(column::errors, project_prefix(rt->tenant, rt->project_id),
                          [&](std::string_view, std::string_view value) {
                            std::string v(value);
                            if (!flow.empty() && v.find("\"flow\":\"" + flow + "\"") == std::string::npos) return true;
                            if (!type.empty() && v.find("\"type\":\"" + type + "\"") == std::string::npos) return true;
                            out.push_back(std::move(v));
                            return out.size() < limit;
                          });
    }
    return out;
  }

  std::optional<std::string> error_show(const std::string& name, const std::string& id) const override {
    auto* e = find(name);
    auto seq = parse_id(id);
    if (!e || !seq) return std::nullopt;
    return store_->get(column::errors, error_key(e->active->tenant, e->id, *seq));
  }

  status error_replay(const std::string& name, const std::string& id) override {
    auto* e = find(name);
    if (!e) return fail("no project named \"" + name + "\"");
    auto seq = parse_id(id);
    if (!seq) return fail("error ids are numbers, got \"" + id + "\"");
    std::lock_guard guard(e->deploy_mutex);  // no activation while we pick the block
    auto rt = e->active;
    auto rkey = error_key(rt->tenant, e->id, *seq);
    auto record = store_->get(column::errors, rkey);
    if (!record) return fail("no error " + id + " in project " + name);
    auto err = parse_error_record(*record);
    if (!err) return fail(err.error());
    int f = rt->find_flow(err->flow);
    int b = f < 0 ? -1 : rt->flows[static_cast<std::size_t>(f)].find_block(err->block);
    if (b < 0 ||
        rt->flows[static_cast<std::size_t>(f)].blocks[static_cast<std::size_t>(b)].kind != block_kind::function)
      return fail("block " + err->block + " of flow " + err->flow +
                  " no longer runs a function; discard the error instead");
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
    batch.add_count(error_count_key(rt->tenant, e->id), minus(1));
    batch.put(column::queue, queue_key(rt->tenant, e->id, key_group_of(item->msg.key), item->queue_seq),
              encode_queued({err->flow, err->block, item->msg}));
    std::promise<void> durable;
    store_->commit(std::move(batch), rt->durability, [&durable] { durable.set_value(); });
    submit(std::move(item));
    durable.get_future().wait();
    return status::success();
  }

  status error_discard(const std::string& name, const std::string& id) override {
    auto* e = find(name);
    if (!e) return fail("no project named \"" + name + "\"");
    auto seq = parse_id(id);
    if (!seq) return fail("error ids are numbers, got \"" + id + "\"");
    auto rt = e->active;
    auto rkey = error_key(rt->tenant, e->id, *seq);
    if (!store_->get(column::errors, rkey)) return fail("no error " + id + " in project " + name);
    commit_batch batch;
    batch.erase(column::errors, rkey);
    batch.add_count(error_count_key(rt->tenant, e->id), minus(1));
    std::promise<void> durable;
    store_->commit(std::move(batch), rt->durability, [&durable] { durable.set_value(); });
    durable.get_future().wait();
    return status::success();
  }

  status schema_add(const std::string& url, const std::string& schema_json) override {
    if (url.find("://") == std::string::npos)
      return fail("a registry type is a full URL like https://example.com/Telemetry.json");
    if (auto problem = schema_problem(schema_json, registry_lookup_)) return fail(url + ": " + *problem);
    commit_batch b;
    b.put(column::meta, meta_key("schema", url), schema_json);
    return store_->write_now(std::move(b), true);
  }

  std::vector<std::string> schema_urls() const override {
    std::vector<std::string> out;
    auto prefix = key_builder{}.str("schema").take();
    store_->scan_prefix(column::meta, prefix, [&](std::string_view key, std::string_view) {
      key_reader r(key);
      (void)r.str();
      if (auto url = r.str()) out.push_back(std::move(*url));
      return true;
    });
    return out;
  }

  void drain(uint32_t timeout_ms) override {
    if (drained_.exchange(true)) return;
    stop_maintenance();
    core_.draining = true;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (core_.total_in_flight() > 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    if (store_) store_->close();
  }

 private:
  static std::optional<uint64_t> parse_id(const std::string& id) {
    if (id.empty() || id.size() > 19 || id.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return std::stoull(id);
  }

  // Keeps each project's error queue within its bound: the oldest go first.
  // Trace retention (trace.full, trace.keep, trace.quota) of every project.
  void trim_traces() {
    commit_batch counts;
    core_.trace_accounting.flush_into(counts);
    if (!counts.empty()) (void)store_->write_now(std::move(counts), false);
    std::vector<project_ptr> targets;
    {
      std::shared_lock lock(mutex_);
      for (auto& [_, e] : projects_)
        if (e->active) targets.push_back(e->active);
    }
    for (auto& rt : targets)
      enforce_trace_retention(*store_, rt->tenant, rt->project_id, rt->trace.full_ms, rt->trace.keep_ms,
                              rt->trace.quota_bytes, now_ms());
  }

  void thin_errors() {
    std::vector<project_ptr> targets;
    {
      std::shared_lock lock(mutex_);
      for (auto& [_, e] : projects_)
        if (e->active) targets.push_back(e->active);
    }
    for (auto& rt : targets) {
      auto count = store_->get(column::metering, error_count_key(rt->tenant, rt->project_id));
      auto n = count ? decode_count(*count) : 0;
      if (n <= options_.max_errors_per_project || n > (uint64_t{1} << 62)) continue;
      auto excess = n - options_.max_errors_per_project;
      commit_batch b;
      uint64_t removed = 0;
      store_->scan_prefix(column::errors, project_prefix(rt->tenant, rt->project_id),
                          [&](std::string_view key, std::string_view) {
                            b.erase(column::errors, std::string(key));
                            return ++removed < excess;
                          });
      if (!removed) continue;
      b.add_count(error_count_key(rt->tenant, rt->project_id), minus(removed));
      store_->commit(std::move(b), durability_mode::relaxed, [] {});
    }
  }

  void submit(work_ptr item) {
    auto shard = core_.shard_of(item->msg.key);
    item->shard = shard;
    core_.in_flight[shard].fetch_add(1);
    caf::anon_send(core_.shards[shard], std::move(item));
  }

  void undeliverable(const project_ptr& rt, const queued_input& q, std::string queue_entry_key) {
    auto e = make_error(*store_, *rt, 0, q.block, q.msg, "Undeliverable",
                        "block " + q.block + " of flow " + q.flow + " was removed by a deploy", "{}");
    e.flow = q.flow;
    commit_batch b;
    b.put(column::errors, error_key(rt->tenant, rt->project_id, std::stoull(e.id)), error_record_json(e));
    b.add_count(error_count_key(rt->tenant, rt->project_id), 1);
    b.erase(column::queue, std::move(queue_entry_key));
    store_->commit(std::move(b), rt->durability, [] {});
  }

  uint32_t project_id_for(const std::string& dir) {
    auto key = meta_key("project-id", dir);
    if (auto v = store_->get(column::meta, key)) return static_cast<uint32_t>(std::stoul(*v));
    auto next_key = meta_key("next-project-id", "");
    uint32_t id = 1;
    if (auto v = store_->get(column::meta, next_key)) id = static_cast<uint32_t>(std::stoul(*v));
    commit_batch b;
    b.put(column::meta, key, std::to_string(id));
    b.put(column::meta, next_key, std::to_string(id + 1));
    (void)store_->write_now(std::move(b), true);
    return id;
  }

  project_entry* find(const std::string& name) const {
    std::shared_lock lock(mutex_);
    for (auto& [_, e] : projects_)
      if (e->active && e->active->name == name) return e.get();
    return nullptr;
  }

  // Loads a revision from git objects, validates it and loads its functions
  // into the project's worker; its HTTP routes go to routes_out.
  result<project_ptr> build(project_entry& e, const std::string& revision, uint64_t epoch,
                            std::vector<http::route>& routes_out) {
    auto files = open_git_commit(e.dir, revision);
    if (!files) return fail(files.error());
    auto catalog = kind_catalog::defaults();
    auto rev = load_project(**files, catalog);
    if (!rev) return fail(rev.error());
    auto rt = std::make_shared<project_rt>();
    rt->project_id = e.id;
    rt->name = rev->manifest_.name;
    rt->revision = revision;
    rt->epoch = epoch;
    rt->durability = rev->manifest_.durability;
    rt->trace = {rev->manifest_.trace_full_ms, rev->manifest_.trace_keep_ms, rev->manifest_.trace_quota_bytes};
    std::vector<std::string> problems;
    auto limits = project_limits(plan_for(options_.plan, options_.plan_file, rt->name), rev->manifest_);
    if (!limits) problems.push_back(limits.error());
    // The same workers while the limits stay; new ones when they change.
    auto pools = e.pools;
    if (limits && (!pools || !(pools->limits == *limits))) {
      pools = std::make_shared<worker_pools>();
      pools->limits = *limits;
      pools->generation = next_function_id_++;
    }
    rt->pools = pools;
    rt->timeout_ms = limits ? limits->cpu_ms_per_call : rev->manifest_.timeout_ms;
    rt->http_host = rev->manifest_.http_host;
    rt->http_prefix = rev->manifest_.http_prefix;
    rt->files = http::static_site::load(**files, e.dir);
    if (!pools) return fail(problems.front());
    std::vector<http::route> routes;
    std::map<std::string, uint64_t> function_ids;
    std::vector<std::pair<sandbox::worker_client*, uint64_t>> fresh;  // loaded by this build
    std::vector<std::pair<std::future<std::string>, std::string>> loads;
    const module_set_ref modules = load_module_set(e, **files, *rev, *rt, fresh, loads, problems);
    for (auto& [fname, fdef] : rev->flows) {
      flow_rt flow;
      flow.name = fname;
      for (std::size_t i = 0; i < fdef.blocks.size(); ++i) {
        const auto& bd = fdef.blocks[i];
        block_rt b;
        b.id = bd.id;
        b.name = bd.name;
        b.key_pointer = bd.key_pointer;
        if (bd.kind == "js.Function" || bd.kind == "py.Function") b.stats = stats_for(e.id, fname, bd.id);
        auto where = fdef.file + ":" + std::to_string(bd.line) + ": ";
        auto typed = [&](const std::optional<std::string>& name, type_check& into, const char* what) {
          if (!name) return;
          auto t = compile_type(*name, **files, registry_lookup_);
          if (!t)
            problems.push_back(where + "block " + bd.id + ": " + what + " " + t.error());
          else
            into = std::move(*t);
        };
        typed(bd.input_type, b.input, "input");
        typed(bd.output_type, b.output, "output");
        typed(bd.state_type, b.state, "state");
        if (bd.kind == "js.Function" || bd.kind == "py.Function") {
          b.kind = block_kind::function;
          auto& fn = rev->functions.at(bd.name);
          auto worker = worker_for(*pools, fn.language);
          if (!worker) {
            problems.push_back(where + worker.error());
            flow.blocks.push_back(std::move(b));
            continue;
          }
          b.worker = *worker;
          auto it = function_ids.find(bd.name);
          if (it == function_ids.end()) {
            std::string source = fn.source;
            if (fn.language == "js") {
              // npm packages are bundled at deploy, from the project's node_modules.
              auto bundled = sandbox::bundle_js(e.dir, fn.file, fn.source);
              if (!bundled) {
                problems.push_back(bundled.error());
                flow.blocks.push_back(std::move(b));
                continue;
              }
              source = std::move(bundled->source);
            }
            // A Python function is reloaded when a module it may import changed.
            const uint64_t module_set = fn.language == "py" ? modules.id : 0;
            auto cache_key = fn.language + '\0' + fn.file + '\0' + source + '\0' + (module_set ? modules.hash : "");
            auto [id, is_new] = cached_id(e, std::move(cache_key), *worker, *rt, fresh);
            it = function_ids.emplace(bd.name, id).first;
            if (is_new) (*worker)->load(id, fn.name, fn.file, std::move(source), awaited(loads, fn.file), module_set);
          }
          b.function_id = it->second;
        } else if (bd.kind == "http.Request") {
          b.kind = block_kind::http_request;
          if (i != 0) problems.push_back(where + "http.Request is a source: it must be the first block");
          auto dit = rev->drivers.find(bd.name);
          auto parsed = http::parse_request_routes(dit->second.config_json);
          if (!parsed) {
            problems.push_back(dit->second.file + ": " + parsed.error());
          } else {
            for (auto& r : *parsed) {
              r.project_id = e.id;
              r.flow_index = static_cast<uint32_t>(rt->flows.size());
              routes.push_back(std::move(r));
            }
          }
        } else if (bd.kind == "http.Response") {
          b.kind = block_kind::http_response;
        } else {
          problems.push_back(where + bd.kind + " is not available on this node yet");
        }
        flow.blocks.push_back(std::move(b));
      }
      rt->flows.push_back(std::move(flow));
    }
    for (auto& [fname, fdef] : rev->flows) {
      if (!fdef.on_error) continue;
      int from = rt->find_flow(fname), to = rt->find_flow(*fdef.on_error);
      if (from < 0 || to < 0) continue;
      rt->flows[static_cast<std::size_t>(from)].on_error = to;
      rt->flows[static_cast<std::size_t>(to)].receives_errors = true;
      bool has_function = false;
      for (auto& b : rt->flows[static_cast<std::size_t>(to)].blocks) has_function |= b.kind == block_kind::function;
      if (!has_function)
        problems.push_back(fdef.file + ": on_error: flow " + *fdef.on_error +
                           " has no function block to receive errors");
    }
    for (auto& [future, file] : loads) {
      auto error = future.get();
      if (!error.empty()) problems.push_back(error.rfind(file, 0) == 0 ? error : file + ": " + error);
    }
    rt->fresh_function_ids = fresh;
    if (!problems.empty()) {
      unload(fresh, e);
      std::string joined;
      for (auto& p : problems) joined += (joined.empty() ? "" : "\n") + p;
      return fail(joined);
    }
    routes_out = std::move(routes);
    return project_ptr(std::move(rt));
  }

  using load_futures = std::vector<std::pair<std::future<std::string>, std::string>>;
  using loaded_ids = std::vector<std::pair<sandbox::worker_client*, uint64_t>>;

  // A load callback whose outcome build() waits for, naming `file`.
  static std::function<void(bool, std::string)> awaited(load_futures& loads, std::string file) {
    auto promise = std::make_shared<std::promise<std::string>>();
    loads.emplace_back(promise->get_future(), std::move(file));
    return [promise](bool ok, std::string error) {
      promise->set_value(ok ? std::string() : (error.empty() ? "cannot load" : error));
    };
  }

  // The id of what `cache_key` names in the revision's workers, and whether
  // it is new (the caller loads it then). Either way the revision uses it.
  std::pair<uint64_t, bool> cached_id(project_entry& e, std::string cache_key, sandbox::worker_client* worker,
                                      project_rt& rt, loaded_ids& fresh) {
    cache_key = std::to_string(rt.pools->generation) + '\0' + cache_key;  // other workers hold none of it
    if (auto hit = e.loaded.find(cache_key); hit != e.loaded.end()) {
      rt.function_ids.emplace_back(worker, hit->second);
      return {hit->second, false};
    }
    uint64_t id = next_function_id_++;
    rt.function_ids.emplace_back(worker, id);
    fresh.emplace_back(worker, id);
    e.loaded.emplace(std::move(cache_key), id);
    return {id, true};
  }

  struct module_set_ref {
    uint64_t id = 0;  // 0: the revision's Python functions import no module set
    std::string hash;
  };

  // The modules (functions/, vendor/) a revision's Python functions import,
  // loaded into its Python worker once per distinct content. The set's id is
  // one of rt's function ids, so it is retired and unloaded like a function.
  module_set_ref load_module_set(project_entry& e, file_source& files, const project_revision& rev, project_rt& rt,
                                 loaded_ids& fresh, load_futures& loads, std::vector<std::string>& problems) {
    bool has_python = false;
    for (auto& [_, flow] : rev.flows)
      for (auto& block : flow.blocks) has_python |= block.kind == "py.Function";
    if (!has_python) return {};
    auto set = collect_python_modules(files, rev);
    if (!set) {
      problems.push_back(set.error());
      return {};
    }
    auto worker = worker_for(*rt.pools, "py");
    if (set->empty() || !worker) return {};  // a worker that did not start is reported by the blocks
    auto [id, is_new] = cached_id(e, std::string("pymodules") + '\0' + set->hash, *worker, rt, fresh);
    if (is_new) (*worker)->load_modules(id, set->modules, awaited(loads, "functions/ and vendor/"));
    return {id, set->hash};
  }

  // Refuses routes that collide within the project or with another project.
  status check_routes(const project_entry& e, const project_rt& rt, const std::vector<http::route>& routes) {
    http::route_table table;
    std::shared_lock lock(mutex_);
    for (auto& [id, other] : projects_) {
      if (id == e.id || !other->active) continue;
      if (other->active->http_host != rt.http_host || other->active->http_prefix != rt.http_prefix) continue;
      for (auto& r : other->routes) (void)table.add(r);
    }
    for (auto& r : routes) {
      auto st = table.add(r);
      if (!st)
        return fail("flows: " + st.error() + " (of another project on the same host and prefix, or of this one)");
    }
    return status::success();
  }

  // Unloads functions and forgets them in the project's load cache.
  void unload(const std::vector<std::pair<sandbox::worker_client*, uint64_t>>& ids, project_entry& e) {
    std::set<uint64_t> gone;
    for (auto& [worker, id] : ids) {
      worker->unload(id);
      gone.insert(id);
    }
    for (auto it = e.loaded.begin(); it != e.loaded.end();)
      it = gone.count(it->second) ? e.loaded.erase(it) : std::next(it);
  }

  // The worker pool of `pools` for `language` (js or py), started on first
  // use: isolated, with the pools' limits.
  result<sandbox::worker_client*> worker_for(worker_pools& pools, const std::string& language) {
    if (language != "js" && language != "py") return fail("no worker for language \"" + language + "\"");
    const bool python = language == "py";
    auto& slot = python ? pools.py : pools.js;
    if (slot) return slot.get();
    sandbox::worker_options wo;
    wo.isolation.memory_mb = pools.limits.memory_mb;
    wo.isolation.python = python;
    wo.default_timeout_ms = pools.limits.cpu_ms_per_call;
    wo.wall_ms = pools.limits.wall_ms();
    wo.extra_args = pools.limits.worker_args();
    wo.worker_binary = python ? options_.python_worker_binary : options_.worker_binary;
    auto w = sandbox::worker_client::start(wo);
    if (!w) return fail(std::string("cannot start a ") + (python ? "Python" : "JavaScript") + " worker: " + w.error());
    slot = std::move(*w);
    return slot.get();
  }

  void activate(project_entry& e, project_ptr rt) {
    if (e.active) {
      // The revision before the previous one is retired: its functions go,
      // except those the previous or the new revision still use.
      std::set<uint64_t> in_use;
      for (auto& [_, id] : e.active->function_ids) in_use.insert(id);
      for (auto& [_, id] : rt->function_ids) in_use.insert(id);
      std::vector<std::pair<sandbox::worker_client*, uint64_t>> retire;
      for (auto& f : e.retired_functions)
        if (!in_use.count(f.second)) retire.push_back(f);
      unload(retire, e);
      e.retired_functions = e.active->function_ids;
      e.retired_pools = e.active->pools;  // the pools before that stop here, unless a revision still runs on them
    }
    if (rt->pools != e.pools) {
      // New workers: what the load cache holds for the others is of no use.
      const std::string current = std::to_string(rt->pools->generation) + '\0';
      for (auto it = e.loaded.begin(); it != e.loaded.end();)
        it = it->first.rfind(current, 0) == 0 ? std::next(it) : e.loaded.erase(it);
      e.pools = rt->pools;
    }
    e.active = rt;
    rebuild_snapshot();
    for (auto& shard : core_.shards) caf::anon_send(shard, rt);
  }

  void rebuild_snapshot() {
    auto snap = std::make_shared<routing_snapshot>();
    std::shared_lock lock(mutex_);
    for (auto& [id, e] : projects_) {
      if (!e->active) continue;
      snap->projects[id] = e->active;
      site s;
      s.host = e->active->http_host;
      s.prefix = e->active->http_prefix;
      s.project_id = id;
      s.files = e->active->files;
      for (auto& r : e->routes) (void)s.routes.add(r);
      snap->sites.push_back(std::move(s));
    }
    std::stable_sort(snap->sites.begin(), snap->sites.end(), [](const site& a, const site& b) {
      if (a.host.empty() != b.host.empty()) return !a.host.empty();
      return a.prefix.size() > b.prefix.size();
    });
    std::atomic_store(&snapshot_, std::shared_ptr<const routing_snapshot>(std::move(snap)));
  }

  engine_options options_;
  caf::actor_system_config config_;
  std::unique_ptr<caf::actor_system> system_;
  std::unique_ptr<store> store_;
  engine_core core_;
  mutable std::shared_mutex mutex_;
  std::map<uint32_t, std::unique_ptr<project_entry>> projects_;
  std::shared_ptr<const routing_snapshot> snapshot_;
  std::atomic<uint64_t> next_function_id_{1};
  mutable std::mutex stats_mutex_;
  std::map<std::tuple<uint32_t, std::string, std::string>, std::shared_ptr<block_stats>> stats_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> drained_{false};
  registry_lookup registry_lookup_ = [this](std::string_view url) {
    return store_->get(column::meta, meta_key("schema", url));
  };
  std::thread maintenance_;
  std::mutex maintenance_mutex_;
  std::condition_variable maintenance_cv_;
  bool stopping_ = false;

 public:
  // Background upkeep off the data path (error queue bounds), every second.
  void start_maintenance() {
    maintenance_ = std::thread([this] {
      std::unique_lock lock(maintenance_mutex_);
      while (!stopping_) {
        maintenance_cv_.wait_for(lock, std::chrono::seconds(1));
        if (stopping_) break;
        lock.unlock();
        thin_errors();
        trim_traces();
        lock.lock();
      }
    });
  }
  void stop_maintenance() {
    {
      std::lock_guard lock(maintenance_mutex_);
      stopping_ = true;
    }
    maintenance_cv_.notify_all();
    if (maintenance_.joinable()) maintenance_.join();
  }
};

}  // namespace

result<std::unique_ptr<engine>> engine::start(engine_options options) {
  auto e = std::make_unique<engine_impl>(std::move(options));
  if (auto st = e->open(); !st) return fail(st.error());
  e->start_maintenance();
  return std::unique_ptr<engine>(std::move(e));
}

}  // namespace flowstate
