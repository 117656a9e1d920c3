#pragma once
// Engine-internal values shared by the shards, the ingress and the engine.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flowstate/drivers/http_routes.hpp"
#include "flowstate/drivers/http_static.hpp"
#include "flowstate/drivers/http_types.hpp"
#include "flowstate/drivers/timer.hpp"
#include "flowstate/runtime/durability.hpp"
#include "types.hpp"

namespace flowstate {
class commit_batch;  // flowstate/runtime/store.hpp
}
namespace flowstate::sandbox {
class worker_client;
}
namespace flowstate::drivers::sinks {
class sink;  // flowstate/drivers/sink.hpp
}
namespace flowstate::drivers::custom {
struct driver_options;
}
namespace flowstate::drivers::mqtt {
struct subscribe_config;  // flowstate/drivers/mqtt_config.hpp
}

namespace flowstate {
class quota_account;  // flowstate/actors/quota.hpp
}

namespace flowstate::engine_detail {

struct worker_pools;  // engine_impl.hpp: a project's workers, for one set of limits
struct block_stats;   // block_stats.hpp

enum class block_kind {
  function,
  http_request,
  http_response,
  timer,
  flow_publish,
  flow_subscribe,
  sink,
  mqtt_subscribe,
  query,         // influxdb.Query: its answer is the next block's input
  custom_source  // a custom driver (npm:..., python:...) as the first block
};

struct block_rt {
  std::string id;
  std::string name;
  std::string kind_name;  // as the flow file writes it: "js.Function", "http.Request", ...
  block_kind kind = block_kind::function;
  uint64_t function_id = 0;                  // in `worker`
  sandbox::worker_client* worker = nullptr;  // the project's JS or Python workers
  std::optional<std::string> key_pointer;
  type_check input, output, state;                               // validator null: untyped
  std::shared_ptr<block_stats> stats;                            // by (project, flow, block id): kept across deploys
  std::shared_ptr<const drivers::timer::interval_config> timer;  // a timer.Interval or timer.Cron source
  std::string topic;                                             // flow.Publish, flow.Subscribe
  std::vector<uint32_t> subscribers;                             // flow.Publish: the flows subscribed to its topic
  std::shared_ptr<drivers::sinks::sink> sink;  // a sink's or a query's driver (http.Post, influxdb.Query, ...)
  std::shared_ptr<const drivers::mqtt::subscribe_config> mqtt;    // an mqtt.Subscribe source
  std::string driver_config;                                      // a driver block's configuration (JSON)
  std::shared_ptr<const drivers::custom::driver_options> custom;  // a custom source (custom_source)
};

struct flow_rt {
  std::string name;
  std::vector<block_rt> blocks;
  int on_error = -1;             // flow index receiving this flow's errors
  bool receives_errors = false;  // some flow's on_error: its errors are not routed again
  // The block index of id, or -1.
  int find_block(const std::string& id) const {
    for (std::size_t i = 0; i < blocks.size(); ++i)
      if (blocks[i].id == id) return static_cast<int>(i);
    return -1;
  }
};

// One activated revision of a project: immutable once built, shared by every
// shard; a deploy builds a new one with a higher epoch (the fence).
struct project_rt {
  uint32_t tenant = 0;
  uint32_t project_id = 0;
  std::string name;
  std::string revision;
  uint64_t epoch = 0;
  // In a cluster: the cluster's number of the deploy that made this
  // revision active (etcd deploys/NAME), once known; 0 on an embedded node.
  mutable std::atomic<uint64_t> cluster_deploy{0};
  durability_mode durability = durability_mode::sync;
  uint32_t timeout_ms = 5000;
  struct {
    uint64_t full_ms = 0, keep_ms = 0, quota_bytes = 0;  // flowstate.yaml `trace:`
  } trace;
  std::vector<flow_rt> flows;
  // Functions loaded for this revision, to unload when it is retired.
  std::vector<std::pair<sandbox::worker_client*, uint64_t>> function_ids;
  // Those of function_ids this revision loaded (the others were already
  // loaded for an earlier revision with the same source).
  std::vector<std::pair<sandbox::worker_client*, uint64_t>> fresh_function_ids;
  // The workers of function_ids, kept alive as long as this revision is.
  std::shared_ptr<worker_pools> pools;
  std::string http_host, http_prefix;              // where it sits on the flow listener
  std::shared_ptr<const http::static_site> files;  // public/
  // The secrets its driver configurations use (name, value): redacted from
  // error records and logs (docs/secrets.md). Memory only.
  std::vector<std::pair<std::string, std::string>> secrets;
  // Hosted mode: its team's lease of executions (quota.hpp); null otherwise.
  std::shared_ptr<quota_account> quota;
  int find_flow(const std::string& name) const {
    for (std::size_t i = 0; i < flows.size(); ++i)
      if (flows[i].name == name) return static_cast<int>(i);
    return -1;
  }
};

using project_ptr = std::shared_ptr<const project_rt>;

struct message {
  std::string id;
  std::string key;
  std::string trace_id;
  int64_t time_ms = 0;
  std::string payload;  // JSON
};

// A message waiting for, or running at, one block of one flow.
struct work_item {
  project_ptr project;
  uint32_t flow = 0;
  uint32_t block = 0;
  message msg;
  uint64_t queue_seq = 0;     // its durable queue entry, 0 when it has none
  http::responder_ptr reply;  // the client waiting, if any
  // Storage key of the request's Idempotency-Key ("" when none): the
  // response is recorded under it in the commit that produces it.
  std::string idempotency_key;
  // In a cluster, the node and range epoch the request ran under, for the
  // answer's Flowstate-Served-By header ("NODE@EPOCH").
  std::string served_by;
  std::size_t shard = 0;
  int64_t started_ns = 0;  // steady clock, when its call was sent (for the trace)
  // store::epoch() when its input was accepted (0: when it starts). After a
  // failed write, an item of an older epoch may come from a commit that was
  // never written: it is dropped, and the queue is read again on resume.
  uint64_t store_epoch = 0;
  // A source's message accepted by the commit of its result rather than by
  // a queue entry of its own (queue_seq is 0): the source's records (a QoS 2
  // packet id, an identity) go into that commit, and `accepted` hears
  // whether it was written (true once durable; false: nothing of it was,
  // the source sends the message again).
  std::shared_ptr<commit_batch> acceptance;
  std::function<void(bool)> accepted;
};

using work_ptr = std::shared_ptr<work_item>;

}  // namespace flowstate::engine_detail
