#pragma once
// The engine behind the `engine` facade: its projects, their workers and
// routes, and the store and shards it opened. Private to actors/src; its
// methods are defined by concern in engine.cpp (start-up, recovery, drain),
// engine_http.cpp, engine_build.cpp, engine_queries.cpp and
// engine_maintenance.cpp.
#include <caf/actor_system_config.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core.hpp"
#include "flowstate/actors/engine.hpp"
#include "flowstate/runtime/keys.hpp"
#include "flowstate/sandbox/limits.hpp"
#include "flowstate/sandbox/worker_client.hpp"
#include "model.hpp"

namespace caf {
class actor_system;
}

namespace flowstate::drivers::sinks {
class io_thread;
}
namespace flowstate::drivers::custom {
struct driver_options;
struct kind_name;
}  // namespace flowstate::drivers::custom
namespace flowstate::drivers::mqtt {
struct publish;
}
namespace flowstate {
class file_source;
struct project_revision;
class parse_cache;  // flowstate/runtime/project_loader.hpp
namespace engine_detail {
class peers;
class replicator;
struct peer_query;
struct delivery_entry;
enum class delivery_status : uint8_t;
}  // namespace engine_detail
std::shared_ptr<parse_cache> make_parse_cache();
}  // namespace flowstate

namespace flowstate::engine_detail {

struct queued_input;  // records.hpp
struct error_fields;  // records.hpp

// "key groups [first, end)", for messages (engine_migrate.cpp).
std::string groups_text(uint32_t first, uint32_t end);
// A QoS 2 packet id's record name in a cluster (engine_mqtt.cpp).
std::string qos2_record_name(const std::string& client_id, uint16_t packet_id);

// A project's share of the flow listener: its host and path prefix, its
// routes (relative to the prefix) and its public/ files.
struct site {
  std::string host;    // "" = any host
  std::string prefix;  // "" = none, else "/todo"
  uint32_t project_id = 0;
  http::route_table routes;
  std::shared_ptr<const http::static_site> files;
};

// What the flow listener reads per request: the routes of every project and
// each project's active revision. Replaced whole at every activation.
struct routing_snapshot {
  std::vector<site> sites;  // most specific first: named hosts, then longer prefixes
  std::unordered_map<uint32_t, project_ptr> projects;
};

// The worker processes of a project for one set of limits, started on first
// use: JS (V8) and Python.
struct worker_pools {
  sandbox::limits limits;
  uint64_t generation = 0;  // tells load-cache entries of different pools apart
  std::unique_ptr<sandbox::worker_client> js, py;
  ~worker_pools() {
    for (auto* w : {js.get(), py.get()})
      if (w) w->stop();
  }
};

// Where worker pools go when their last revision lets go of them. The last
// reference may be dropped on a worker client's own I/O thread (a call's
// callback holding the last work item of a retired revision), which must not
// stop that client: the maintenance thread deletes them instead.
class pools_graveyard {
 public:
  void bury(worker_pools* p) {
    std::lock_guard lock(mutex_);
    dead_.push_back(p);
  }
  void empty() {
    std::vector<worker_pools*> dead;
    {
      std::lock_guard lock(mutex_);
      dead.swap(dead_);
    }
    for (auto* p : dead) delete p;
  }
  ~pools_graveyard() { empty(); }

 private:
  std::mutex mutex_;
  std::vector<worker_pools*> dead_;
};

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
  // The last build's parsed YAML: a deploy parses only the files it changed.
  std::shared_ptr<parse_cache> parsed = make_parse_cache();
  std::mutex deploy_mutex;
};

// Keys of the meta column: (what, name) and (what, project id).
inline std::string meta_key(std::string_view what, std::string_view name) {
  return key_builder{}.str(what).str(name).take();
}
inline std::string meta_key(std::string_view what, uint32_t id) { return key_builder{}.str(what).u32(id).take(); }

// Function loads build() waits for (each naming its file), and the functions
// a build loaded.
using load_futures = std::vector<std::pair<std::future<std::string>, std::string>>;
using loaded_ids = std::vector<std::pair<sandbox::worker_client*, uint64_t>>;

// Times the phases of a deploy into deploy_outcome::timings_ms; does
// nothing without a destination (a project's first build at start-up).
class phase_clock {
 public:
  explicit phase_clock(std::vector<std::pair<std::string, double>>* out = nullptr)
      : out_(out), last_(std::chrono::steady_clock::now()) {}
  void mark(const char* phase) {
    if (!out_) return;
    auto now = std::chrono::steady_clock::now();
    out_->emplace_back(phase, std::chrono::duration<double, std::milli>(now - last_).count());
    last_ = now;
  }

 private:
  std::vector<std::pair<std::string, double>>* out_;
  std::chrono::steady_clock::time_point last_;
};

// Hosted mode: the refusal of new input for a project whose team's lease of
// executions has no room (429 QuotaExceeded) or is stale (503); nullopt to
// accept. engine_metering.cpp.
std::optional<http::response> quota_refusal_of(const project_rt& rt);

class engine_impl final : public engine {
 public:
  explicit engine_impl(engine_options o);
  ~engine_impl() override;

  status open();
  status add_project(const std::string& dir_in) override;
  status recover() override;

  // Not ready while the store refuses writes (disk full) or before recovery.
  bool ready() const override { return ready_.load() && store_writable(); }
  bool store_writable() const override { return !core_.writes_paused.load() && store_->health().ok(); }
  const sandbox::isolation_report& isolation() const override { return sandbox::isolation_status(); }
  std::size_t in_flight() const override { return core_.total_in_flight(); }

  std::shared_ptr<block_stats> stats_for(uint32_t project, const std::string& flow, const std::string& block);
  std::string metrics_text() const override;
  result<std::vector<metered_count>> metered_counts() const override;
  deploy_outcome push(const std::string& project, std::string_view pack, const std::string& revision,
                      const std::string& expected) override;
  result<std::string> flows_json(const std::string& project) const override;
  // The active revision of the project named `name` ("" = the only one).
  result<project_ptr> active_named(const std::string& name) const;

  void handle_flow_request(http::request&& req, http::responder_ptr reply) override;
  std::string store_id() const override { return store_->store_id(); }
  std::string incarnation() const override { return store_->incarnation(); }
  void set_key_group_gate(key_group_gate gate) override {
    const bool any = static_cast<bool>(gate);
    std::atomic_store(&core_.gate, std::make_shared<const key_group_gate>(std::move(gate)));
    core_.has_gate.store(any);
    core_.gate_pending.store(false);
  }
  std::string peer_address() const override { return peer_address_; }
  void set_cluster_info(std::function<std::string()> describe) override {
    std::atomic_store(&cluster_info_, std::make_shared<const std::function<std::string()>>(std::move(describe)));
  }
  std::optional<std::string> cluster_info() const override {
    auto f = std::atomic_load(&cluster_info_);
    if (!f || !*f) return std::nullopt;
    return (*f)();
  }
  status connect_peer(const std::string& name, const std::string& address, const std::string& incarnation) override;
  bool peer_connected(const std::string& name, const std::string& incarnation) const override;

  result<move_outcome> move_groups(uint32_t first, uint32_t end, const std::string& from, const std::string& to,
                                   bool transfer,
                                   const std::function<status(const log_position&)>& write_placement) override;
  void placement_changed() override;
  void set_leaving(bool leaving) override;
  void set_led_ranges(std::vector<led_range> ranges, in_sync_writer write) override;
  std::string replication_info() const override;
  result<std::string> cluster_graph() const override;
  // This node's part of the graph (engine_graph.cpp).
  std::string local_graph() const;
  // This node's counts for the flows answer (engine_stats.cpp).
  result<std::string> local_stats_json(const std::string& project) const;

  deploy_outcome deploy(const std::string& name, const std::string& revision, const std::string& expected) override;
  void set_deploy_hook(deploy_hook hook) override {
    std::atomic_store(&deploy_hook_, std::make_shared<const deploy_hook>(std::move(hook)));
  }
  void set_cluster_deploy(const std::string& project, const std::string& revision, uint64_t number) override;
  deploy_outcome deploy_here(const std::string& name, const std::string& revision, const std::string& expected,
                             bool dry_run, uint64_t cluster_deploy = 0) override;
  status fetch_revision(const std::string& project, const std::string& revision, const std::string& from) override;
  status create_from_peer(const std::string& project, const std::string& revision, const std::string& from) override;
  std::vector<project_info> projects() const override;
  result<std::optional<std::string>> state_get(const std::string& name, const std::string& flow,
                                               const std::string& block, const std::string& key) const override;
  result<std::vector<std::string>> trace(const std::string& name, const trace_query& q) const override;
  std::shared_ptr<void> watch_trace(std::function<void()> on_new_events) override {
    return core_.trace_watch.add(std::move(on_new_events));
  }
  result<std::vector<std::string>> errors(const std::string& name, const std::string& flow, const std::string& type,
                                          std::size_t limit) const override;
  result<std::optional<std::string>> error_show(const std::string& name, const std::string& id) const override;
  status error_replay(const std::string& name, const std::string& id) override;
  status error_discard(const std::string& name, const std::string& id) override;
  status schema_add(const std::string& url, const std::string& schema_json, const std::string& team) override;
  result<std::vector<std::string>> schema_urls(const std::string& team) const override;
  // The registry a team's projects see: the team's types, then the node's.
  registry_lookup registry_for(const std::string& team) const;
  void drain(uint32_t timeout_ms) override;

  // Background upkeep off the data path (error queue bounds), every second.
  void start_maintenance();
  void stop_maintenance();

 private:
  // Trace retention (trace.full, trace.keep, trace.quota) of every project.
  void trim_traces();
  // Keeps each project's error queue within its bound: the oldest go first.
  void thin_errors();

  void submit(work_ptr item);
  // Submits every queued input of every project (start-up, and after the
  // store resumed writing), in the store's current epoch.
  status requeue();
  // After a failed write (disk full): pauses new input, resumes the store
  // once it can write again and re-reads the queue. Maintenance thread.
  void watch_store();
  // Commits and waits until durable, or the reason it was not written.
  status commit_and_wait(commit_batch&& batch, durability_mode mode);
  void undeliverable(const project_ptr& rt, const queued_input& q, std::string queue_entry_key);
  // For a request with an Idempotency-Key: true when it was answered (its
  // stored response replayed) or waits for the first request with that key.
  bool answered_by_idempotency_key(work_item& item, std::string_view idempotency_key, const http::responder_ptr& reply);
  // A flow without http.Response: the message is queued durably, the client
  // gets 202 once that commit is durable, and its functions run after.
  void accept_with_202(work_ptr item, http::responder_ptr reply);
  // The project number of the project at `dir`, given at its first start.
  result<uint32_t> project_id_for(const std::string& dir);
  result<uint32_t> cluster_project_id(const std::string& dir, const std::string& head);
  // Errors as this node's store holds them (errors() asks every node).
  // Error records by id: kept by the owner of the id's key group, asked
  // through peers ("" = this node).
  result<std::string> error_owner(const std::string& id) const;
  result<http::response> ask_error_owner(const std::string& node, const std::string& kind, const std::string& name,
                                         const std::string& id) const;
  status error_change(const std::string& kind, const std::string& name, const std::string& id, bool may_ask);
  result<std::optional<std::string>> local_error_show(const std::string& name, const std::string& id) const;
  status local_error_replay(const std::string& name, const std::string& id);
  status local_error_discard(const std::string& name, const std::string& id);
  status replay_to_sink(const project_rt& rt, const std::string& rkey, const error_fields& err, uint32_t group,
                        const std::string& id);
  // Commits a change of key group `group`'s records made off the shards
  // (an error's replay or discard): fails while the group moves.
  status commit_in_group(uint32_t group, commit_batch&& batch, durability_mode mode, const std::string& what);
  result<std::vector<std::string>> local_errors(const std::string& name, const std::string& flow,
                                                const std::string& type, std::size_t limit) const;
  // Messages another node's outbox sends (or this node's own, for a key
  // group that came here): committed to the queue with their
  // de-duplication marks, then run. `done` gets one status per entry.
  void accept_delivery(std::vector<delivery_entry>&& entries, std::function<void(std::vector<delivery_status>)> done);
  // Moving key groups (engine_migrate.cpp). This node's part as the source:
  // copy to `to`, hold, drain, copy what changed.
  struct moved_out {
    uint64_t seq = 0;               // above every record copied
    uint64_t records = 0;           // sent (the first copy, then what changed)
    double held_ms = 0;             // since the groups were held
    engine::log_position position;  // the source's replication log at the hold
  };
  result<moved_out> move_out(uint32_t first, uint32_t end, const std::string& to, bool transfer);
  // The source after the placement changed: deletes its copy; the groups
  // stay held until this node's gate sends them elsewhere.
  status release_groups(uint32_t first, uint32_t end);
  // The source when the move failed: serves the groups again (the queue
  // entries it kept unrun run now). Nothing while its copy is under way.
  void abort_move(uint32_t first, uint32_t end);
  // The target: records of moving groups arrive (begin erases what it held).
  status import_begin(uint32_t first, uint32_t end);
  status import_records(const std::vector<std::string>& args);
  status import_end(uint32_t first, uint32_t end, uint64_t seq);
  status import_abort(uint32_t first, uint32_t end);
  // Asked by a move's target: "moving" (moving_out_ or released_ here),
  // "idle" (runs here, moved nowhere) or "elsewhere".
  std::string move_status(uint32_t first, uint32_t end);
  // The target of a move whose end or abort never came (engine_import.cpp).
  void settle_stale_imports();
  // [begin, end) of groups [first, end) for every project served here.
  std::vector<std::pair<std::string, std::string>> group_spans(uint32_t first, uint32_t end) const;
  status erase_spans(uint32_t first, uint32_t end);
  // Runs the queue entries of groups [first, end) numbered below `below`.
  void requeue_groups(uint32_t first, uint32_t end, uint64_t below);
  // Cached states, marks and outbox entries of the groups: read again.
  void forget_groups(uint32_t first, uint32_t end, bool outbox_entries_moved);
  // Runs `job` on a thread of its own (migration steps off CAF's threads).
  void run_job(std::function<void()> job);
  // timer.Interval sources (engine_timers.cpp): the actor that wakes at the
  // next tick, what it runs, and one key's due ticks.
  caf::actor spawn_timers();
  // mqtt.Subscribe sources (engine_mqtt.cpp).
  struct mqtt_source;
  void sync_mqtt_sources();
  void stop_mqtt_sources();
  void accept_mqtt(uint32_t project, const std::string& flow, const drivers::mqtt::subscribe_config& cfg,
                   const std::string& client_id, drivers::mqtt::publish&& p, std::function<void(bool)> acked);
  void forget_mqtt_session(const std::string& client_id, std::function<void(bool)> done);
  void accept_message(const project_ptr& rt, uint32_t f, commit_batch b, std::vector<std::string> marks,
                      std::string payload, result<std::string> key, result<std::optional<std::string>> identity,
                      const std::string& fallback_key, const std::string& tag, std::function<void(bool)> acked,
                      std::string qos2_record = {});
  void accept_publish(const project_ptr& rt, uint32_t f, const drivers::mqtt::subscribe_config& cfg,
                      const std::string& client_id, drivers::mqtt::publish&& p, std::vector<std::string> marks,
                      std::function<void(bool)> acked);
  void recheck_qos2(const project_ptr& rt, uint32_t f, const std::string& client_id, drivers::mqtt::publish&& p,
                    std::string qos2_key, uint32_t group, std::string token, std::function<void(bool)> acked);
  std::optional<bool> qos2_record_holds(const std::string& record, const std::string& token) const;
  std::mutex lane_mutex_;  // source_lane outbox entries: sequence and commit in one order
  bool join_pending(const std::string& mark, const std::function<void(bool)>& acked);
  std::optional<uint32_t> outbox_source_group(std::optional<group_admission>& admitted);
  std::map<std::string, std::pair<project_ptr, uint32_t>> active_sources(block_kind kind);
  bool sources_may_read(uint32_t project);
  bool runs_a_key_group();
  // Custom drivers' sources (engine_custom.cpp).
  struct custom_source;
  result<drivers::custom::driver_options> custom_driver(project_entry& e, file_source& files,
                                                        const drivers::custom::kind_name& k, const std::string& file,
                                                        const std::string& config_json);
  void sync_custom_sources();
  void stop_custom_sources();
  int64_t run_timers(int64_t now);
  void emit_ticks(const project_ptr& rt, uint32_t flow, const std::string& key, int64_t now);
  // A request for a group being moved waits here (until 10 s).
  void hold(http::request&& req, http::responder_ptr reply);
  void answer_held_too_long();
  void dispatch_held_again();
  // A question another node asked; migration steps run on their own thread.
  void answer_peer_async(peer_query&& q, std::function<void(http::response)> done);
  http::response answer_slow_peer(const peer_query& q);
  // Another node's question about this node's records.
  http::response answer_peer(const peer_query& q) const;
  http::response answer_replication(const peer_query& q);
  // The state as this node's store holds it (state_get asks the owner).
  result<std::optional<std::string>> local_state_get(const std::string& name, const std::string& flow,
                                                     const std::string& block, const std::string& key) const;
  project_entry* find(const std::string& name) const;
  // Adds revision's git objects, asked of node `from`, to the repository in `dir`.
  status pack_from_peer(const std::string& dir, const std::string& project, const std::string& revision,
                        const std::string& from);
  std::mutex push_mutex_;  // projects created by push, one at a time
  // A project created under DATA/projects/NAME at `revision`, its git
  // objects put in its new repository by `objects`; what a failure left is
  // removed. Under push_mutex_.
  deploy_outcome create_pushed(const std::string& project, const std::string& revision,
                               const std::function<status(const std::string& dir)>& objects);

  // Loads a revision from git objects, validates it and loads its functions
  // into the project's worker; its HTTP routes go to routes_out.
  result<project_ptr> build(project_entry& e, const std::string& revision, uint64_t epoch,
                            std::vector<http::route>& routes_out, phase_clock* clock = nullptr);

  // The id of what `cache_key` names in the revision's workers, and whether
  // it is new (the caller loads it then). Either way the revision uses it.
  std::pair<uint64_t, bool> cached_id(project_entry& e, std::string cache_key, sandbox::worker_client* worker,
                                      project_rt& rt, loaded_ids& fresh);

  struct module_set_ref {
    uint64_t id = 0;  // 0: the revision's Python functions import no module set
    std::string hash;
  };

  // The modules (functions/, vendor/) a revision's Python functions import,
  // loaded into its Python worker once per distinct content. The set's id is
  // one of rt's function ids, so it is retired and unloaded like a function.
  module_set_ref load_module_set(project_entry& e, file_source& files, const project_revision& rev, project_rt& rt,
                                 loaded_ids& fresh, load_futures& loads, std::vector<std::string>& problems);

  // Refuses routes that collide within the project or with another project.
  status check_routes(const project_entry& e, const project_rt& rt, const std::vector<http::route>& routes);

  // Unloads functions and forgets them in the project's load cache.
  void unload(const std::vector<std::pair<sandbox::worker_client*, uint64_t>>& ids, project_entry& e);

  // The worker pool of `pools` for `language` (js or py), started on first
  // use: isolated, with the pools' limits.
  result<sandbox::worker_client*> worker_for(worker_pools& pools, const std::string& language);

  void activate(project_entry& e, project_ptr rt);
  void rebuild_snapshot();

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
  // A read error reads as "not in the registry": it can only refuse a
  // deploy (the message names the type), never lose data.
  registry_lookup registry_lookup_ = [this](std::string_view url) -> std::optional<std::string> {
    auto v = store_->read(column::meta, meta_key("schema", url));
    if (!v) {
      std::fprintf(stderr, "flowstate: schema registry: %s\n", v.error().c_str());
      return std::nullopt;
    }
    return std::move(*v);
  };
  std::thread maintenance_;
  std::mutex maintenance_mutex_;
  std::condition_variable maintenance_cv_;
  bool stopping_ = false;
  std::shared_ptr<pools_graveyard> graveyard_ = std::make_shared<pools_graveyard>();
  std::map<uint32_t, int64_t> last_age_trim_;  // maintenance thread: project id -> ms
  int64_t last_resume_attempt_ms_ = 0;         // maintenance thread
  // Until then, an Idempotency-Key is also looked up under its format-1 key
  // (records a format upgrade could not place in a key group; 0: none).
  int64_t legacy_idempotency_until_ms_ = 0;
  std::unique_ptr<peers> peers_;  // in a cluster
  // Replicas (replication.hpp): created at the first set_led_ranges().
  mutable std::mutex replication_mutex_;
  std::unique_ptr<replicator> replicator_;
  in_sync_writer in_sync_writer_;                                      // under replication_mutex_
  std::atomic<uint64_t> failovers_{0};                                 // ranges taken over from a replica held here
  std::vector<bool> led_ = std::vector<bool>(key_group_count, false);  // under replication_mutex_
  // The groups the placement gives this node, set as soon as it learns it
  // (before the gate routes them here): a follower's frame for them is
  // refused from then on.
  std::unique_ptr<std::atomic<bool>[]> leading_ = std::make_unique<std::atomic<bool>[]>(key_group_count);
  // De-duplication marks of received messages, by (tenant, project, source
  // group, destination group), as committed in store epoch inbox_epoch_.
  std::mutex inbox_mutex_;
  std::map<std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>, uint64_t> inbox_marks_;
  uint64_t inbox_epoch_ = 0;
  // The marks whose commits are durable: a repeat above them is answered
  // "later" (its first copy's commit may still fail), not "accepted".
  std::mutex inbox_durable_mutex_;
  std::map<std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>, uint64_t> inbox_durable_marks_;
  // Idempotency records of received source messages (a source's `id:`)
  // whose commits are not durable yet: a copy of one waits ("later").
  std::mutex inbox_identities_mutex_;
  std::set<std::string> inbox_identities_;
  // In a cluster, where to start looking for a key group this node runs, for
  // the outbox entry of a source message whose key another node runs.
  std::atomic<uint32_t> outbox_group_hint_{0};
  bool leaving_ = false;  // set_leaving (under mqtt_mutex_)
  // Moving key groups: ranges whose records went to another node (held
  // until the gate sends them there), ranges received (their queue entries
  // below `seq` run once the gate runs them here), requests held meanwhile,
  // and the threads of migration steps asked by other nodes.
  struct moved_range {
    uint32_t first = 0, end = 0;
    uint64_t seq = 0;
    int64_t since_ms = 0;
    bool copying = false;          // moving_out_: move_out() is still at work
    bool abort_requested = false;  // moving_out_: asked to abort while copying
    bool releasing = false;        // moving_out_: release_groups() is at it
    // importing_ and received_: which import (a new one replaces it), and
    // when its source was last asked whether it still moves the groups.
    uint64_t serial = 0;
    int64_t checked_ms = 0;
    // moving_out_, a transfer (move_groups): this node keeps its copy as a
    // follower's of the target's log, holding the source's log up to here.
    std::string transfer_log{};
    uint64_t transfer_index = 0;
  };
  std::mutex moves_mutex_;
  std::vector<moved_range> released_, received_, moving_out_;
  std::vector<moved_range> importing_;  // between import-begin and import-end (or abort)
  uint64_t import_serial_ = 0;          // under moves_mutex_
  std::mutex import_steps_mutex_;       // one import step at a time (a stale import's deletion too)
  // A cluster node: the sequence when it started (queue entries below it
  // were there before), and the groups whose queue it has run since.
  uint64_t start_seq_ = 0;
  std::vector<bool> queue_run_ = std::vector<bool>(key_group_count, false);
  struct held_request {
    http::request req;
    http::responder_ptr reply;
    int64_t since_ms = 0;
  };
  std::mutex held_mutex_;
  std::vector<held_request> held_;
  std::mutex jobs_mutex_;
  caf::actor timers_;
  // The sinks' network thread (http.Post, ...): built before any revision
  // (their sinks use it), stopped after the sinks actor.
  std::unique_ptr<drivers::sinks::io_thread> sink_io_;
  std::mutex timers_mutex_;
  std::map<std::string, int64_t> timers_pending_;  // state key -> last tick handed to the store, not yet written
  std::mutex mqtt_mutex_;
  std::map<std::string, std::shared_ptr<mqtt_source>> mqtt_sources_;  // by "project/flow/block"
  // QoS 2 packet ids and `id:` identities accepted by a commit not yet
  // durable, with the acknowledgements waiting for it.
  std::map<std::string, std::vector<std::function<void(bool)>>> mqtt_pending_;
  // Source messages (MQTT, custom) whose accepting commit is not settled:
  // a drain waits for them before it closes the sources, so that their
  // acknowledgements leave.
  std::atomic<uint32_t> sources_pending_{0};
  std::map<std::string, std::shared_ptr<custom_source>> custom_sources_;  // by "project/flow/block", mqtt_mutex_
  std::vector<std::future<void>> jobs_;
  std::shared_ptr<const std::function<std::string()>> cluster_info_;  // atomic_load/store
  std::string peer_address_;
  std::shared_ptr<const deploy_hook> deploy_hook_;  // atomic_load/store
};

}  // namespace flowstate::engine_detail
