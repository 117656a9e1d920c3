#include "metrics_exposition.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <map>
#include <vector>

#include "block_stats.hpp"

namespace flowstate::engine_detail {

struct metrics_exposition::families {
  prometheus::Registry registry;
  prometheus::Family<prometheus::Counter>& executions = prometheus::BuildCounter()
                                                            .Name("flowstate_executions_total")
                                                            .Help("Executions of function blocks, by outcome")
                                                            .Register(registry);
  prometheus::Family<prometheus::Histogram>& durations =
      prometheus::BuildHistogram()
          .Name("flowstate_execution_duration_seconds")
          .Help("Duration of function calls, from sending to the worker to its answer")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& in_flight = prometheus::BuildGauge()
                                                         .Name("flowstate_in_flight_messages")
                                                         .Help("Messages accepted or re-run and not yet finished")
                                                         .Register(registry);
  prometheus::Family<prometheus::Gauge>& state_cache =
      prometheus::BuildGauge()
          .Name("flowstate_state_cache_bytes")
          .Help("Bytes of the latest states held in memory, all shards")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& outbox_pending =
      prometheus::BuildGauge()
          .Name("flowstate_outbox_pending")
          .Help("Messages for key groups of other nodes, committed here and not yet acknowledged by their owner")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& outbox_delivered =
      prometheus::BuildCounter()
          .Name("flowstate_outbox_delivered_total")
          .Help("Outbox messages acknowledged by the node owning their key group, since this start")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& inbox_accepted =
      prometheus::BuildCounter()
          .Name("flowstate_inbox_accepted_total")
          .Help("Messages from other nodes' outboxes committed into this node's queue, since this start")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& inbox_repeats =
      prometheus::BuildCounter()
          .Name("flowstate_inbox_repeats_total")
          .Help("Messages from other nodes recognised as already committed here and dropped, since this start")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& forwarded_requests =
      prometheus::BuildCounter()
          .Name("flowstate_forwarded_requests_total")
          .Help("HTTP requests this node sent to the node owning their key, since this start")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& forwarded_batches =
      prometheus::BuildCounter()
          .Name("flowstate_forwarded_batches_total")
          .Help("Messages that carried those requests (requests that arrive together go to a node as one)")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& replica_lag =
      prometheus::BuildGauge()
          .Name("flowstate_replica_lag_entries")
          .Help("Log entries of a range this node leads that a follower does not have durable yet")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& replica_in_sync =
      prometheus::BuildGauge()
          .Name("flowstate_replica_in_sync")
          .Help("1 when the follower is in the range's in-sync set, else 0")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& in_sync_changes =
      prometheus::BuildCounter()
          .Name("flowstate_in_sync_changes_total")
          .Help("Followers this node put into or took out of its ranges' in-sync sets, since this start")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& failovers =
      prometheus::BuildCounter()
          .Name("flowstate_failovers_total")
          .Help("Ranges this node took over as leader from a replica it held (failovers), since this start")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& sink_pending =
      prometheus::BuildGauge()
          .Name("flowstate_sink_pending")
          .Help("Outputs committed for a sink block and not yet taken by its target (the sink's outbox)")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& sink_deliveries =
      prometheus::BuildCounter()
          .Name("flowstate_sink_deliveries_total")
          .Help(
              "Sink deliveries since this start, by outcome: delivered, retried (a try that failed and will be "
              "tried again), failed (an error record)")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& sandbox_level =
      prometheus::BuildGauge()
          .Name("flowstate_sandbox_level")
          .Help("The workers' sandbox: 1 for the level in force (none: no level can be set up, functions do not run)")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& sandbox_degradations =
      prometheus::BuildGauge()
          .Name("flowstate_sandbox_degradations")
          .Help("Layers of the sandbox level this machine cannot provide")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& project_info = prometheus::BuildGauge()
                                                            .Name("flowstate_project_info")
                                                            .Help("The active revision of each project (value 1)")
                                                            .Register(registry);
  prometheus::Family<prometheus::Gauge>& errors_queued = prometheus::BuildGauge()
                                                             .Name("flowstate_errors_queued")
                                                             .Help("Errors in a project's error queue")
                                                             .Register(registry);
  prometheus::Family<prometheus::Gauge>& trace_bytes =
      prometheus::BuildGauge()
          .Name("flowstate_trace_bytes")
          .Help("Bytes of a project's execution trace (as of the last second)")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& worker_processes = prometheus::BuildGauge()
                                                                .Name("flowstate_worker_processes")
                                                                .Help("Live worker processes of a project, by language")
                                                                .Register(registry);
};

metrics_exposition::metrics_exposition() : f_(std::make_unique<families>()) {}
metrics_exposition::~metrics_exposition() = default;

void metrics_exposition::block(const std::string& project, const std::string& flow, const std::string& block,
                               const block_stats& s) {
  for (std::size_t i = 0; i < outcome_names.size(); ++i) {
    auto n = s.executions[i].load(std::memory_order_relaxed);
    if (n == 0 && i != 0) continue;  // "ok" always; an error type once it happened
    f_->executions
        .Add({{"project", project}, {"flow", flow}, {"block", block}, {"outcome", std::string(outcome_names[i])}})
        .Increment(double(n));
  }
  // The shards count per bucket (not cumulatively), as ObserveMultiple takes.
  std::vector<double> per_bucket(s.durations.size());
  for (std::size_t b = 0; b < s.durations.size(); ++b) per_bucket[b] = double(s.durations[b].load());
  f_->durations
      .Add({{"project", project}, {"flow", flow}, {"block", block}},
           prometheus::Histogram::BucketBoundaries(duration_buckets.begin(), duration_buckets.end()))
      .ObserveMultiple(per_bucket, double(s.duration_sum_ns.load(std::memory_order_relaxed)) / 1e9);
}

void metrics_exposition::sandbox(std::string_view level_in_force, const std::vector<std::string_view>& levels,
                                 std::size_t degradations) {
  for (auto level : levels) f_->sandbox_level.Add({{"level", std::string(level)}}).Set(level == level_in_force ? 1 : 0);
  f_->sandbox_degradations.Add({}).Set(double(degradations));
}

void metrics_exposition::node(std::size_t in_flight, std::size_t state_cache_bytes) {
  f_->in_flight.Add({}).Set(double(in_flight));
  f_->state_cache.Add({}).Set(double(state_cache_bytes));
}

void metrics_exposition::outbox(uint64_t pending, uint64_t delivered, uint64_t accepted, uint64_t repeats) {
  f_->outbox_pending.Add({}).Set(double(pending));
  f_->outbox_delivered.Add({}).Increment(double(delivered));
  f_->inbox_accepted.Add({}).Increment(double(accepted));
  f_->inbox_repeats.Add({}).Increment(double(repeats));
}

void metrics_exposition::sink(const std::string& project, const std::string& flow, const std::string& block,
                              uint64_t pending, uint64_t delivered, uint64_t retried, uint64_t failed) {
  const std::map<std::string, std::string> where{{"project", project}, {"flow", flow}, {"block", block}};
  f_->sink_pending.Add(where).Set(double(pending));
  for (auto [outcome, n] :
       {std::pair{"delivered", delivered}, std::pair{"retried", retried}, std::pair{"failed", failed}}) {
    auto labels = where;
    labels["outcome"] = outcome;
    f_->sink_deliveries.Add(labels).Increment(double(n));
  }
}

void metrics_exposition::forwarded(uint64_t requests, uint64_t batches) {
  f_->forwarded_requests.Add({}).Increment(double(requests));
  f_->forwarded_batches.Add({}).Increment(double(batches));
}

void metrics_exposition::replica(uint32_t first, uint32_t end, const std::string& follower, uint64_t lag,
                                 bool in_sync) {
  const std::map<std::string, std::string> labels{{"groups", std::to_string(first) + "-" + std::to_string(end)},
                                                  {"follower", follower}};
  f_->replica_lag.Add(labels).Set(double(lag));
  f_->replica_in_sync.Add(labels).Set(in_sync ? 1 : 0);
}

void metrics_exposition::replication(uint64_t in_sync_changes, uint64_t failovers) {
  f_->in_sync_changes.Add({}).Increment(double(in_sync_changes));
  f_->failovers.Add({}).Increment(double(failovers));
}

void metrics_exposition::project(const std::string& name, const std::string& revision, uint64_t errors_queued,
                                 uint64_t trace_bytes) {
  f_->project_info.Add({{"project", name}, {"revision", revision}}).Set(1);
  f_->errors_queued.Add({{"project", name}}).Set(double(errors_queued));
  f_->trace_bytes.Add({{"project", name}}).Set(double(trace_bytes));
}

void metrics_exposition::workers(const std::string& project, std::string_view language, std::size_t processes) {
  f_->worker_processes.Add({{"project", project}, {"language", std::string(language)}}).Set(double(processes));
}

std::string metrics_exposition::text() const { return prometheus::TextSerializer().Serialize(f_->registry.Collect()); }

}  // namespace flowstate::engine_detail
