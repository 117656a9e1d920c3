// The engine: opens the store, spawns the shards, activates project
// revisions (deploys) and answers the admin API's questions. This file:
// start-up, project registration, recovery, submission and drain; the rest of
// engine_impl is in the other engine_*.cpp files (see engine_impl.hpp).
#include <caf/all.hpp>
#include <caf/io/middleman.hpp>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "engine_impl.hpp"
#include "errors.hpp"
#include "flowstate/drivers/sink.hpp"
#include "flowstate/runtime/decimal.hpp"
#include "flowstate/runtime/file_source.hpp"
#include "flowstate/runtime/git_repo.hpp"
#include "flowstate/runtime/keys.hpp"
#include "flowstate/runtime/project_loader.hpp"
#include "flowstate/runtime/thread_name.hpp"
#include "outbox.hpp"
#include "peers.hpp"
#include "records.hpp"
#include "replication.hpp"
#include "sinks.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::work_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::project_ptr)

namespace flowstate::engine_detail {
namespace {

namespace fs = std::filesystem;

// CAF's threads (scheduler workers, its clock) named for top -H, perf and
// the benchmarks' context-switch counts.
class name_caf_threads final : public caf::thread_hook {
 public:
  void init(caf::actor_system&) override {}
  void thread_started() override { name_this_thread("fs-caf"); }
  void thread_terminates() override {}
};

caf::actor_system_config& configure(caf::actor_system_config& cfg, unsigned threads, const std::string& policy) {
  cfg.add_thread_hook<name_caf_threads>();
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

}  // namespace

engine_impl::engine_impl(engine_options o) : options_(std::move(o)) {
  // A cluster node runs no key group until its gate says which are its
  // own: its store may hold followers' copies and entries of commits its
  // replicas never acknowledged (a failover went past them).
  core_.gate_pending.store(!options_.node_name.empty() || static_cast<bool>(options_.project_ids));
}

engine_impl::~engine_impl() {
  drain(0);
  peers_.reset();
  for (auto& a : core_.shards) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  if (core_.outbox) caf::anon_send_exit(core_.outbox, caf::exit_reason::user_shutdown);
  if (core_.sinks) caf::anon_send_exit(core_.sinks, caf::exit_reason::user_shutdown);
  if (sink_io_) sink_io_->stop();  // no driver callback after this
  if (timers_) caf::anon_send_exit(timers_, caf::exit_reason::user_shutdown);
  core_.shards.clear();
  system_.reset();
  for (auto& [_, p] : projects_)
    for (auto* pools : {p->pools.get(), p->retired_pools.get()})
      if (pools)
        for (auto* w : {pools->js.get(), pools->py.get()})
          if (w) w->stop();
  // The revisions hold the sinks, whose sockets and timers belong to the
  // drivers' I/O context: they go before it.
  std::atomic_store(&snapshot_, std::shared_ptr<const routing_snapshot>());
  projects_.clear();
  sink_io_.reset();
}

status engine_impl::open() {
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
  std::fprintf(stderr, "flowstate: store %s, incarnation %s\n", store_->store_id().c_str(),
               store_->incarnation().c_str());
  if (auto at = store_->upgraded_from_format1_at_ms())
    legacy_idempotency_until_ms_ = *at + static_cast<int64_t>(options_.idempotency_ttl_ms);
  core_.max_in_flight = options_.max_in_flight_per_shard;
  core_.sink_backlog = options_.sink_backlog;
  core_.state_cache_bytes = options_.state_cache_bytes;
  core_.shards_planned = options_.shards;
  configure(config_, options_.scheduler_threads, options_.scheduler_policy);
  if (!options_.peer_listen.empty()) {
    // CAF 0.17's middleman has no heartbeat and no connection timeout by
    // default: a peer that vanished without a FIN would be waited for
    // forever. Nodes of another cluster are refused at the handshake.
    config_.load<caf::io::middleman>();
    config_.set("middleman.heartbeat-interval", caf::timespan{std::chrono::seconds(1)});
    config_.set("middleman.connection-timeout", caf::timespan{std::chrono::seconds(5)});
    config_.set("middleman.app-identifiers", std::vector<std::string>{"flowstate-" + options_.cluster_name});
  }
  system_ = std::make_unique<caf::actor_system>(config_);
  core_.in_flight = std::make_unique<std::atomic<std::size_t>[]>(options_.shards);
  core_.state_cache_bytes_used = std::make_unique<std::atomic<std::size_t>[]>(options_.shards);
  for (unsigned i = 0; i < options_.shards; ++i) {
    core_.in_flight[i] = 0;
    core_.shards.push_back(spawn_shard(*system_, core_, i));
  }
  std::atomic_store(&snapshot_, std::make_shared<const routing_snapshot>());
  outbox_links links;
  links.accept_here = [this](std::vector<delivery_entry>&& entries, delivery_callback done) {
    accept_delivery(std::move(entries), [done](std::vector<delivery_status> s) { done(std::move(s)); });
  };
  links.send = [this](const std::string& name, const std::vector<delivery_entry>& entries, delivery_callback done) {
    if (!peers_) return done(std::nullopt);
    peers_->deliver(name, entries, 10000, std::move(done));
  };
  core_.outbox = spawn_outbox(*system_, core_, std::move(links));
  sink_io_ = std::make_unique<drivers::sinks::io_thread>();
  sinks_links to_sinks;
  to_sinks.active = [this](uint32_t project) -> project_ptr {
    auto snap = std::atomic_load(&snapshot_);
    auto it = snap->projects.find(project);
    return it == snap->projects.end() ? nullptr : it->second;
  };
  to_sinks.submit = [this](work_ptr item) { submit(std::move(item)); };
  core_.sinks = spawn_sinks(*system_, core_, std::move(to_sinks));
  timers_ = spawn_timers();
  if (!options_.peer_listen.empty()) {
    peers_ = std::make_unique<peers>(
        *system_, options_.node_name, options_.cluster_secret,
        [this](http::request&& req, http::responder_ptr reply) {
          handle_flow_request(std::move(req), std::move(reply));
        },
        [this](peer_query&& q, std::function<void(http::response)> done) {
          answer_peer_async(std::move(q), std::move(done));
        },
        [this](std::vector<delivery_entry>&& entries, peers::delivery_done done) {
          accept_delivery(std::move(entries), std::move(done));
        });
    auto bound = peers_->listen(options_.peer_listen);
    if (!bound) return fail(bound.error());
    peer_address_ = *bound;
  }
  return status::success();
}

status engine_impl::connect_peer(const std::string& name, const std::string& address, const std::string& incarnation) {
  if (!peers_) return fail("this node has no --peer-listen: it cannot talk to other nodes");
  return peers_->connect(name, address, incarnation);
}

bool engine_impl::peer_connected(const std::string& name, const std::string& incarnation) const {
  return peers_ && peers_->connected(name, incarnation);
}

status engine_impl::add_project(const std::string& dir_in) {
  std::error_code ec;
  auto dir = fs::weakly_canonical(fs::absolute(dir_in), ec).string();
  if (ec || !fs::is_directory(dir)) return fail(dir_in + ": not a directory");
  auto head = head_commit(dir);
  if (!head) return fail(dir_in + ": " + head.error());
  auto entry = std::make_unique<project_entry>();
  entry->dir = dir;
  auto id = options_.project_ids ? cluster_project_id(dir, *head) : project_id_for(dir);
  if (!id) return fail(dir_in + ": " + id.error());
  entry->id = *id;
  auto recorded = store_->read(column::meta, meta_key("active", entry->id));
  if (!recorded) return fail(dir_in + ": " + recorded.error());
  std::string revision = *recorded ? **recorded : *head;
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
    if (projects_.count(e->id))
      return fail(dir_in + ": project id " + std::to_string(e->id) + " is already served here by " +
                  projects_.at(e->id)->dir);
    projects_[e->id] = std::move(entry);
  }
  if (auto st = check_routes(*e, **rt, e->routes); !st) {
    std::unique_lock lock(mutex_);
    projects_.erase(e->id);
    return fail(dir_in + ": " + st.error());
  }
  if (!*recorded) {
    commit_batch b;
    b.put(column::meta, meta_key("active", e->id), revision);
    if (auto st = store_->write_now(std::move(b), true); !st) return fail(st.error());
  }
  activate(*e, std::move(*rt));
  return status::success();
}

status engine_impl::recover() {
  if (options_.project_ids) {
    // A cluster node runs the queue of a group once the placement gives it
    // the group (placement_changed): its store may hold copies of groups
    // another node owns (moved away, or a move that did not finish). What
    // is queued from now on is numbered from here.
    start_seq_ = store_->next_sequence();
    ready_ = true;
    return status::success();
  }
  if (auto st = requeue(); !st) return st;
  ready_ = true;
  return status::success();
}

status engine_impl::requeue() {
  std::vector<project_entry*> entries;
  {
    std::shared_lock lock(mutex_);
    for (auto& [_, p] : projects_) entries.push_back(p.get());
  }
  const uint64_t epoch = store_->epoch();
  for (auto* e : entries) {
    auto rt = e->active;
    auto [begin, end] = queue_range(rt->tenant, rt->project_id, 0, key_group_count);
    std::size_t n = 0;
    auto scanned = store_->scan_range(column::queue, begin, end, [&](std::string_view key, std::string_view value) {
      key_reader kr(key);
      auto tenant = kr.u32();
      auto project = kr.u32();
      auto group = kr.u32();
      auto seq = kr.u64();
      auto q = decode_queued(value);
      if (!tenant || !project || !group || !seq || !q) return true;
      if (!core_.runs_here(*group)) return true;  // another node's group (a copy left here)
      auto item = std::make_shared<work_item>();
      item->project = rt;
      item->queue_seq = *seq;
      item->store_epoch = epoch;
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
    if (!scanned) return fail("reading the queue of project " + rt->name + ": " + scanned.error());
  }
  return status::success();
}

void engine_impl::drain(uint32_t timeout_ms) {
  if (drained_.exchange(true)) return;
  stop_maintenance();
  core_.draining = true;
  // No tick after this: a run of the timers in progress ends first (its
  // items count as in flight before the wait below).
  if (timers_ && system_) {
    caf::scoped_actor self{*system_};
    self->send_exit(timers_, caf::exit_reason::user_shutdown);
    self->wait_for(timers_);
  }
  // No new input from here (`draining` pauses the sources); what was taken
  // finishes, and the sources close once its acknowledgements are on their
  // way (an MQTT session sends them, then DISCONNECT). A source that asked
  // `may_read` just before `draining` was set may still be handing its
  // message over, not counted yet: its handler on the sources' thread ends
  // first.
  if (sink_io_) sink_io_->sync();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while ((core_.total_in_flight() > 0 || sources_pending_.load() > 0) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop_mqtt_sources();
  stop_custom_sources();
  // Migration steps and the outbox use the store: they end before it closes
  // (a step may start another).
  for (;;) {
    std::vector<std::future<void>> jobs;
    {
      std::lock_guard lock(jobs_mutex_);
      jobs.swap(jobs_);
    }
    if (jobs.empty()) break;
    for (auto& job : jobs) job.wait();
  }
  {
    // Its senders use the store and the peers; its gate keeps refusing
    // acknowledgements the followers did not give.
    std::lock_guard lock(replication_mutex_);
    replicator_.reset();
  }
  for (auto* a : {&core_.outbox, &core_.sinks})
    if (*a && system_) {
      caf::scoped_actor self{*system_};
      self->send_exit(*a, caf::exit_reason::user_shutdown);
      self->wait_for(*a);
    }
  if (sink_io_) sink_io_->stop();
  if (store_) store_->close();
}

void engine_impl::submit(work_ptr item) {
  const uint32_t group = key_group_of(item->msg.key);
  // Being moved away: the committed queue entry goes with the group.
  if (item->queue_seq && core_.is_frozen(group)) return;
  auto shard = core_.shard_of(item->msg.key);
  item->shard = shard;
  core_.in_flight[shard].fetch_add(1);
  core_.group_in_flight[group].fetch_add(1);
  caf::anon_send(core_.shards[shard], std::move(item));
}

void engine_impl::undeliverable(const project_ptr& rt, const queued_input& q, std::string queue_entry_key) {
  auto e = make_error(*store_, *rt, 0, q.block, q.msg, "Undeliverable",
                      "block " + q.block + " of flow " + q.flow + " was removed by a deploy", "{}");
  e.flow = q.flow;
  commit_batch b;
  put_error(b, *rt, e);
  b.erase(column::queue, std::move(queue_entry_key));
  store_->commit(std::move(b), rt->durability, [] {});
}

result<uint32_t> engine_impl::project_id_for(const std::string& dir) {
  auto key = meta_key("project-id", dir);
  auto next_key = meta_key("next-project-id", "");
  auto number = [&](const std::string& k) -> result<std::optional<uint32_t>> {
    auto v = store_->read(column::meta, k);
    if (!v) return fail(v.error());
    if (!*v) return std::optional<uint32_t>();
    uint32_t n = 0;
    auto [end, ec] = std::from_chars((*v)->data(), (*v)->data() + (*v)->size(), n);
    if (ec != std::errc() || end != (*v)->data() + (*v)->size())
      return fail("meta record of " + dir + ": expected a decimal number, found \"" + **v + "\"");
    return std::optional<uint32_t>(n);
  };
  auto known = number(key);
  if (!known) return fail(known.error());
  if (*known) return **known;
  auto next = number(next_key);
  if (!next) return fail(next.error());
  uint32_t id = *next ? **next : 1;
  commit_batch b;
  b.put(column::meta, key, std::to_string(id));
  b.put(column::meta, next_key, std::to_string(id + 1));
  if (auto st = store_->write_now(std::move(b), true); !st) return fail(st.error());
  return id;
}

result<uint32_t> engine_impl::cluster_project_id(const std::string& dir, const std::string& head) {
  // The name at the revision this node would activate: the one recorded
  // under the directory's id if it has one, else HEAD.
  auto local = store_->read(column::meta, meta_key("project-id", dir));
  if (!local) return fail(local.error());
  std::optional<uint32_t> local_id;
  std::string revision = head;
  if (*local) {
    local_id = parse_decimal<uint32_t>(**local);
    if (!local_id) return fail("meta record of " + dir + ": expected a decimal number, found \"" + **local + "\"");
    auto recorded = store_->read(column::meta, meta_key("active", *local_id));
    if (!recorded) return fail(recorded.error());
    if (*recorded) revision = **recorded;
  }
  auto files = open_git_commit(dir, revision);
  if (!files) return fail(files.error());
  auto name = project_name_of(**files);
  if (!name) return fail(name.error());
  auto id = options_.project_ids(*name);
  if (!id) return fail("the cluster's id of project " + *name + ": " + id.error());
  if (local_id && *local_id != *id)
    return fail("project " + *name + " has id " + std::to_string(*local_id) + " in this data directory but " +
                std::to_string(*id) +
                " in the cluster: its records would be under another project's keys. Serve it "
                "from a data directory of its own (this one was written by a node outside the cluster, or by another "
                "cluster)");
  {
    std::shared_lock lock(mutex_);
    if (projects_.count(*id)) return fail("project id " + std::to_string(*id) + " is already served here");
  }
  if (!local_id) {
    commit_batch b;
    b.put(column::meta, meta_key("project-id", dir), std::to_string(*id));
    // Ids this node gives itself later (served outside the cluster) stay
    // clear of the cluster's.
    auto next = store_->read(column::meta, meta_key("next-project-id", ""));
    if (!next) return fail(next.error());
    auto n = *next ? parse_decimal<uint32_t>(**next) : std::optional<uint32_t>(1);
    if (!n || *n <= *id) b.put(column::meta, meta_key("next-project-id", ""), std::to_string(*id + 1));
    if (auto st = store_->write_now(std::move(b), true); !st) return fail(st.error());
  }
  return *id;
}

project_entry* engine_impl::find(const std::string& name) const {
  std::shared_lock lock(mutex_);
  for (auto& [_, e] : projects_)
    if (e->active && e->active->name == name) return e.get();
  return nullptr;
}

}  // namespace flowstate::engine_detail

namespace flowstate {

result<std::unique_ptr<engine>> engine::start(engine_options options) {
  // Decided (and logged) at start-up, not at the first worker.
  (void)sandbox::isolation_status();
  auto e = std::make_unique<engine_detail::engine_impl>(std::move(options));
  if (auto st = e->open(); !st) return fail(st.error());
  e->start_maintenance();
  return std::unique_ptr<engine>(std::move(e));
}

}  // namespace flowstate
