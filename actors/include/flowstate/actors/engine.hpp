#pragma once
// The node's engine: the store, the shards (CAF actors), the function hosts
// and the active revision of every project. CAF stays out of this header.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/limit_settings.hpp"
#include "flowstate/runtime/result.hpp"
#include "flowstate/sandbox/isolation.hpp"
#include "flowstate/sandbox/limits.hpp"

namespace flowstate {

class usage_meter;  // flowstate/actors/quota.hpp

// Hosted mode: what a project's team's plan allows (docs/hosted.md "Plans").
struct hosted_plan_limits {
  limit_settings limits;            // timeout and memory per call: the ceiling
  bool custom_drivers = true;       // npm:/python: driver kinds
  uint64_t log_retention_ms = 0;    // the trace kept at most this long (0: no limit)
  uint64_t max_function_bytes = 0;  // a function's code, packages bundled in (0: no limit)
  std::string plan;                 // its name, for refusals
  std::string pool = "shared";      // the pool of nodes that runs the team's projects
  std::string pool_nodes;           // where that pool's nodes answer (admin API), for refusals
};

struct engine_options {
  std::string data_dir;              // holds store/ (RocksDB)
  std::string worker_binary;         // flowstate-worker (V8)
  std::string python_worker_binary;  // flowstate-pyworker (CPython)
  std::string driver_js_binary;      // flowstate-driver-js (custom npm drivers); empty: beside worker_binary
  unsigned shards = 4;               // key-group ranges, one actor each
  unsigned scheduler_threads = 2;
  std::string scheduler_policy = "sharing";  // or "stealing" (CAF's default)
  // Work in flight per shard before sources get 503 + Retry-After.
  std::size_t max_in_flight_per_shard = 2048;
  // Deliveries a project's sinks may have pending (a target down) before
  // its sources get 503 + Retry-After (docs/drivers.md "Sinks").
  std::size_t sink_backlog = 10000;
  // The operator's master key, which opens the projects' secrets.yaml
  // (docs/secrets.md); none: a project using secrets is refused at deploy.
  std::optional<std::array<unsigned char, 32>> master_key;
  // The latest states kept in memory, over all shards; beyond it the least
  // recently used are read from the store again.
  std::size_t state_cache_bytes = std::size_t{256} << 20;
  // The operator's plan: the ceiling of every project's limits (a project's
  // flowstate.yaml may only lower them: `timeout:`, `limits:`), overlaid by
  // the plan file's values (`flowstate serve --plan FILE`).
  sandbox::limits plan = default_plan();
  flowstate::plan_file plan_file;
  // Hosted mode (docs/hosted.md): the plan of a project's team, from the
  // control plane, overlaid on the above at each deploy (an error refuses
  // the deploy). Unset: no control plane.
  std::function<result<hosted_plan_limits>(const std::string& project)> hosted_plan;
  // Hosted mode: this node's pool (`--pool`); a project whose team the
  // control plane places on another pool is refused (dedicated placement).
  std::string pool = "shared";
  // Hosted mode: where each project's routes are on the flow listener, the
  // service's choice (flowstate.yaml's `http:` is not used): at host
  // PROJECT.TEAM.DOMAIN when a domain is given, else under the path prefix
  // /TEAM/PROJECT. So no tenant can take another's paths. Unset: not hosted.
  std::optional<std::string> hosted_domain;
  // Hosted mode: each project's team's lease of executions, which its
  // sources' admission checks (docs/hosted.md "Metering and quotas").
  std::shared_ptr<usage_meter> meter;
  static sandbox::limits default_plan() {
    sandbox::limits l;
    l.cpu_ms_per_call = 30000;
    l.memory_mb = 256;
    return l;
  }
  // How long a response stored for an HTTP Idempotency-Key answers repeats.
  uint64_t idempotency_ttl_ms = 24ull * 3600 * 1000;
  // Error records kept per project; beyond it the oldest are removed.
  std::size_t max_errors_per_project = 10000;
  // In a cluster: a project's id by its name, the same on every node (kept
  // in etcd). Unset: this node assigns ids itself, by project directory.
  std::function<result<uint32_t>(const std::string& name)> project_ids;
  // In a cluster: this node's name, where other nodes reach it (HOST:PORT,
  // CAF's middleman), and the secret every node-to-node frame carries.
  std::string node_name, peer_listen, cluster_secret, cluster_name;
};

struct project_info {
  std::string name;
  std::string dir;
  uint32_t id = 0;
  std::string revision;    // the active commit
  sandbox::limits limits;  // what its functions run within
  // How long its trace is kept in full, and at all (flowstate.yaml `trace:`,
  // capped by a hosted plan's log retention).
  uint64_t trace_full_ms = 0, trace_keep_ms = 0;
};

// The outcome of a deploy request, as the admin API answers it.
struct deploy_outcome {
  int http_status = 200;  // 200, 404, 409 (race), 422 (invalid)
  std::string detail;     // the refusal, one problem per line
  std::string revision;   // active after the call
  std::string replaced;   // active before the call
  // Where the node's time went, phase by phase in order (ms): read (files
  // from git, parsed and checked), build (types, routes, bundles, loads
  // sent), functions (waiting for the workers to compile new functions),
  // record (the new active revision made durable), activate.
  std::vector<std::pair<std::string, double>> timings_ms = {};
};

// A query of a project's execution trace (`flowstate logs`, GET
// /api/v1/projects/{p}/trace).
struct trace_query {
  std::string flow, block, key, trace_id;  // "" = any
  bool errors_only = false;
  int64_t since_ms = 0, until_ms = 0;  // commit time, ms since the epoch; 0 = unbounded
  std::string after;                   // a cursor: only events after it, oldest first (to follow)
  std::size_t limit = 100;             // the newest `limit` matches, or the first `limit` after `after`
  // In a cluster, every node's events are merged by time, and the cursors
  // are the whole cluster's ("NODE:CURSOR,..."), unless this is set.
  bool this_node_only = false;
  // A follower's query (GET /api/v1/trace?follow=true): reads forward from
  // `after` or `since_ms`, and in a cluster skips a node that does not
  // answer (it is caught up from its position later).
  bool follow = false;
};

class engine {
 public:
  static result<std::unique_ptr<engine>> start(engine_options options);
  virtual ~engine() = default;

  // Registers a project repository and activates its recorded revision (or
  // HEAD the first time). Blocking; at start-up.
  virtual status add_project(const std::string& dir) = 0;
  // Re-runs every input that was queued but not committed before a crash.
  // Blocking; after every add_project.
  virtual status recover() = 0;
  virtual bool ready() const = 0;
  // Whether the store writes (false while a write failed for lack of space
  // and writing has not resumed).
  virtual bool store_writable() const = 0;
  // Messages accepted or re-run and not yet finished, over all shards.
  virtual std::size_t in_flight() const = 0;
  // The workers' sandbox (docs/security.md): its level, or `none` and why no
  // function can run on this node (the sandbox fails closed).
  virtual const sandbox::isolation_report& isolation() const = 0;
  // The node's metrics in the Prometheus text format (GET /metrics).
  virtual std::string metrics_text() const = 0;
  // The executions metered in this node's store, cumulative per (project,
  // UTC month, key group), of the active projects: what a hosted node
  // reports to the control plane. Any thread; reads the store.
  struct metered_count {
    std::string project, month;
    uint32_t key_group = 0;
    uint64_t executions = 0;
  };
  virtual result<std::vector<metered_count>> metered_counts() const = 0;

  // A request on the flow listener (any thread, never blocks).
  virtual void handle_flow_request(http::request&& req, http::responder_ptr reply) = 0;

  // The data directory's identity and this start's (runtime store_id(),
  // incarnation()): what a cluster node registers under.
  virtual std::string store_id() const = 0;
  virtual std::string incarnation() const = 0;
  // In a cluster: asked for the key group of every request a route accepts,
  // before anything is committed. `refuse`: answer with it; `forward_to`: a
  // node's name, the request is sent to it and its response returned here;
  // neither: the request runs here. Unset: every group runs here (the
  // embedded node). Called on I/O threads: it must not block.
  struct gate_decision {
    std::optional<http::response> refuse;
    std::string forward_to;
    // Runs here, but a new request is answered this (the range has fewer
    // in-sync replicas than the cluster's min_in_sync).
    std::optional<http::response> refuse_new;
    // Runs here: the epoch of the range as this node's placement has it
    // (its answer says `Flowstate-Served-By: NODE@EPOCH`).
    uint64_t epoch = 0;
  };
  using key_group_gate = std::function<gate_decision(uint32_t key_group)>;
  virtual void set_key_group_gate(key_group_gate gate) = 0;
  // In a cluster (engine_options::peer_listen): the address other nodes
  // reach this one at, and connecting to another node (blocking: not on I/O
  // threads).
  virtual std::string peer_address() const = 0;
  virtual status connect_peer(const std::string& name, const std::string& address, const std::string& incarnation) = 0;
  // Connected to `name` in this incarnation.
  virtual bool peer_connected(const std::string& name, const std::string& incarnation) const = 0;
  // In a cluster: the cluster as this node sees it, as JSON (GET
  // /api/v1/cluster); nullopt on an embedded node.
  virtual void set_cluster_info(std::function<std::string()> describe) = 0;
  virtual std::optional<std::string> cluster_info() const = 0;
  // In a cluster: the actor graph as JSON (GET /api/v1/cluster/graph):
  // every connected node's shard actors, worker pools, outbox and inbox,
  // and the messages delivered between nodes. Blocking (asks every node).
  virtual result<std::string> cluster_graph() const = 0;
  // In a cluster, on the controller: moves key groups [first, end) from node
  // `from` to node `to` (either may be this node; docs/cluster.md "Moving
  // key groups"). `from` copies their records to `to` while they serve,
  // then holds new requests for them, lets what runs finish and copies what
  // changed meanwhile; then `write_placement` (the
  // controller's etcd transaction) decides: on success `from` deletes its
  // copy and sends what it held to `to`, otherwise both undo and `from`
  // serves on. Blocking.
  // A `write_placement` error starting with this: etcd did not say whether
  // the placement was written. Nothing is undone then: the source releases
  // the groups once its view shows the new owner, or serves them again if
  // the placement still names it after two minutes.
  static constexpr std::string_view placement_outcome_unknown = "placement outcome unknown: ";
  struct move_outcome {
    double pause_ms = 0;     // from holding the groups' requests to releasing them
    double duration_ms = 0;  // the whole move
    uint64_t records = 0;    // records copied
  };
  // `transfer`: `to` is an in-sync follower of the groups' range. Nothing
  // is copied: `from` holds the groups, waits until `to` has its
  // replication log up to the hold, and `to` leads from its own copy once
  // the placement names it (the range's other followers keep theirs).
  // `write_placement` gets where the source's replication log stood when
  // it held the groups (empty without followers), for the placement
  // record's `adopt`.
  struct log_position {
    std::string log;
    uint64_t index = 0;
  };
  virtual result<move_outcome> move_groups(uint32_t first, uint32_t end, const std::string& from, const std::string& to,
                                           bool transfer,
                                           const std::function<status(const log_position&)>& write_placement) = 0;
  // In a cluster with replicas (docs/cluster.md "Replicas and failover"):
  // every range this node leads as the placement says (followers and the
  // in-sync set as etcd has them), and how to write a range's in-sync set
  // into etcd. Called on each change of the view, before placement_changed().
  // A range this node followed and leads now (a failover) runs its queue;
  // one it led and does not lead now is forgotten here.
  struct led_range {
    uint32_t first = 0, end = 0;
    uint64_t epoch = 0;
    std::vector<std::string> followers, in_sync;
    uint32_t min_in_sync = 1;
    std::string adopt_log;  // the placement record's `adopt` (a move's)
    uint64_t adopt_index = 0;
  };
  using in_sync_writer = std::function<status(uint32_t first, const std::vector<std::string>& in_sync)>;
  virtual void set_led_ranges(std::vector<led_range> ranges, in_sync_writer write) = 0;
  // Each follower's position as JSON ([{"first","end","follower","state",
  // "acked","last","inSync"}]), and the ranges this node holds copies of.
  virtual std::string replication_info() const = 0;
  // The placement this node sees changed (the gate answers differently):
  // groups moved away or received are settled and held requests go on.
  virtual void placement_changed() = 0;
  // This node is leaving the cluster (`cluster drain`): its MQTT sources
  // give up their shared subscriptions, so that the broker hands new
  // messages to the other nodes, and read what it handed them before while
  // they still run key groups. False again: they subscribe again.
  virtual void set_leaving(bool leaving) = 0;

  // Admin operations; they block (git, fsync): call them off the I/O threads.
  // A deploy: on an embedded node, deploy_here; in a cluster, through the
  // hook (the cluster orders deploys and every node activates the revision).
  virtual deploy_outcome deploy(const std::string& project, const std::string& revision,
                                const std::string& expected) = 0;
  using deploy_hook = std::function<deploy_outcome(const std::string& project, const std::string& revision,
                                                   const std::string& expected)>;
  virtual void set_deploy_hook(deploy_hook hook) = 0;
  // Activates the revision on this node only (`expected` empty: whatever is
  // active). With `dry_run`, builds and checks it (functions compiled in the
  // workers) and activates nothing. In a cluster, `cluster_deploy` is the
  // deploy's number (see set_cluster_deploy), set before it is active.
  virtual deploy_outcome deploy_here(const std::string& project, const std::string& revision,
                                     const std::string& expected, bool dry_run, uint64_t cluster_deploy = 0) = 0;
  // In a cluster: `revision`, if active here, is the cluster's deploy
  // `number`. Messages it produces for other nodes carry the number, and a
  // node holds a message whose number is above its own until it catches up.
  virtual void set_cluster_deploy(const std::string& project, const std::string& revision, uint64_t number) = 0;
  // In a cluster: makes the revision's git objects present in the project's
  // repository here, from node `from` when they are missing.
  virtual status fetch_revision(const std::string& project, const std::string& revision, const std::string& from) = 0;
  // In a cluster: creates a project another node created by a push (as
  // push() would, under DATA/projects/NAME) at `revision`, its git objects
  // fetched from node `from`. Nothing when the project is here already.
  virtual status create_from_peer(const std::string& project, const std::string& revision, const std::string& from) = 0;
  virtual std::vector<project_info> projects() const = 0;
  // A remote deploy (`flowstate deploy` to a node that does not share the
  // client's file system): `pack`, git objects from the client's
  // repository, is added to the project's repository here, then `revision`
  // is deployed as by deploy(). A project this node does not have is
  // created under DATA/projects/NAME, where the node finds it again at
  // its next start (pushed_projects); its flowstate.yaml must name it
  // `project`. In a cluster the creation is the project's first cluster
  // deploy (expected: no_revision), and the other nodes create it from
  // this one.
  virtual deploy_outcome push(const std::string& project, std::string_view pack, const std::string& revision,
                              const std::string& expected) = 0;
  // The projects created by push on this node: DATA/projects/*, sorted.
  static std::vector<std::string> pushed_projects(const std::string& data_dir);
  // The committed state of (flow, block, key) as JSON; nullopt when none.
  virtual result<std::optional<std::string>> state_get(const std::string& project, const std::string& flow,
                                                       const std::string& block, const std::string& key) const = 0;
  // The active revision's flows as JSON: each block's kind, name, id, key
  // pointer and types, and for function blocks their live statistics
  // (executions by outcome, duration quantiles from the histogram).
  virtual result<std::string> flows_json(const std::string& project) const = 0;
  // Execution trace events (JSON objects), oldest first.
  virtual result<std::vector<std::string>> trace(const std::string& project, const trace_query& q) const = 0;
  // Calls `on_new_events` (on the store's thread: it must not block) each
  // time a commit with trace events is durable, until the returned handle is
  // dropped; drop it before the engine.
  virtual std::shared_ptr<void> watch_trace(std::function<void()> on_new_events) = 0;
  // Error records (std:Error JSON objects), oldest first.
  virtual result<std::vector<std::string>> errors(const std::string& project, const std::string& flow,
                                                  const std::string& type, std::size_t limit) const = 0;

  // One error record; nullopt when absent; an error when the store cannot
  // be read.
  virtual result<std::optional<std::string>> error_show(const std::string& project, const std::string& id) const = 0;
  // Puts the failed input back at the tail of its key's queue (same
  // messageId, current state and revision) and removes the error, in one
  // commit. Blocking until durable.
  virtual status error_replay(const std::string& project, const std::string& id) = 0;
  virtual status error_discard(const std::string& project, const std::string& id) = 0;

  // The node's schema registry: fully qualified type URLs -> JSON Schemas.
  // `team` "": the node-wide registry (the node's admin token); in hosted
  // mode a team's own, which its projects see before the node-wide one and
  // no other team sees. schema_urls lists the node-wide types and the team's.
  virtual status schema_add(const std::string& url, const std::string& schema_json, const std::string& team = "") = 0;
  virtual result<std::vector<std::string>> schema_urls(const std::string& team = "") const = 0;

  // SIGTERM: refuse new messages, wait for in-flight ones (up to timeout_ms),
  // flush commits, stop. Idempotent.
  virtual void drain(uint32_t timeout_ms) = 0;
};

}  // namespace flowstate
