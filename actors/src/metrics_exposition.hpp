#pragma once
// The node's metrics (GET /metrics) as prometheus-cpp families in a registry,
// written by prometheus-cpp's text serializer. prometheus-cpp stays in
// metrics_exposition.cpp.
//
// The shards count with relaxed atomics (block_stats, also read by the UI's
// statistics), where prometheus-cpp's Histogram::Observe would take a mutex
// per call: each scrape copies those counts into a fresh registry, so a
// project that is gone disappears from the next scrape with nothing to remove.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace flowstate::engine_detail {

struct block_stats;

class metrics_exposition {
 public:
  // Registers every family docs/operations.md documents.
  metrics_exposition();
  ~metrics_exposition();
  metrics_exposition(const metrics_exposition&) = delete;
  metrics_exposition& operator=(const metrics_exposition&) = delete;

  // flowstate_executions_total by outcome and the duration histogram.
  void block(const std::string& project, const std::string& flow, const std::string& block, const block_stats& s);
  // flowstate_in_flight_messages and flowstate_state_cache_bytes.
  void node(std::size_t in_flight, std::size_t state_cache_bytes);
  // flowstate_outbox_pending, flowstate_outbox_delivered_total,
  // flowstate_inbox_accepted_total, flowstate_inbox_repeats_total.
  void outbox(uint64_t pending, uint64_t delivered, uint64_t accepted, uint64_t repeats);
  // flowstate_sink_pending and flowstate_sink_deliveries_total by outcome.
  void sink(const std::string& project, const std::string& flow, const std::string& block, uint64_t pending,
            uint64_t delivered, uint64_t retried, uint64_t failed);
  // flowstate_replica_lag_entries and flowstate_replica_in_sync of one
  // follower of a range this node leads (labels groups="A-B", follower).
  void replica(uint32_t first, uint32_t end, const std::string& follower, uint64_t lag, bool in_sync);
  // flowstate_in_sync_changes_total, flowstate_failovers_total.
  void replication(uint64_t in_sync_changes, uint64_t failovers);
  // flowstate_forwarded_requests_total, flowstate_forwarded_batches_total.
  void forwarded(uint64_t requests, uint64_t batches);
  // flowstate_sandbox_level (1 for the level in force, 0 for the others of
  // `levels`) and flowstate_sandbox_degradations.
  void sandbox(std::string_view level_in_force, const std::vector<std::string_view>& levels, std::size_t degradations);
  // flowstate_project_info, flowstate_errors_queued, flowstate_trace_bytes.
  void project(const std::string& name, const std::string& revision, uint64_t errors_queued, uint64_t trace_bytes);
  // flowstate_worker_processes.
  void workers(const std::string& project, std::string_view language, std::size_t processes);

  // The Prometheus text exposition format (version 0.0.4).
  std::string text() const;

 private:
  struct families;
  std::unique_ptr<families> f_;
};

}  // namespace flowstate::engine_detail
