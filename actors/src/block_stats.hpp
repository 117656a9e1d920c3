#pragma once
// Live statistics of one (project, flow, block id): executions by outcome
// and a histogram of their durations, for /metrics (and the UI's live
// stats). Kept by name, so they survive deploys; updated with relaxed
// atomics by the shards, read by the metrics endpoint.
#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

namespace flowstate::engine_detail {

// Execution outcomes: "ok" and the std:Error types.
inline constexpr std::array<std::string_view, 8> outcome_names = {"ok",
                                                                  "Exception",
                                                                  "Timeout",
                                                                  "ResourceExhausted",
                                                                  "PreconditionFailed",
                                                                  "PostconditionFailed",
                                                                  "Undeliverable",
                                                                  "UnspecifiedError"};
// Upper bounds of the duration histogram, in seconds.
inline constexpr std::array<double, 14> duration_buckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                            0.1,    0.25,  0.5,    1,     2.5,  5,     10};

struct block_stats {
  std::array<std::atomic<uint64_t>, outcome_names.size()> executions{};
  std::array<std::atomic<uint64_t>, duration_buckets.size() + 1> durations{};  // the last: +Inf
  std::atomic<uint64_t> duration_sum_ns{0};

  void record(std::string_view outcome, int64_t duration_ns);
};

// A copy of block_stats' counts, to add up (the nodes of a cluster) and
// read: the admin API's flows answer (engine_stats.cpp).
struct stats_counts {
  std::array<uint64_t, outcome_names.size()> executions{};
  std::array<uint64_t, duration_buckets.size() + 1> durations{};
  uint64_t duration_sum_ns = 0;

  void add(const block_stats& s);
  void add(const stats_counts& s);
  // The upper bound (ms) of the histogram bucket holding quantile q; -1
  // when nothing ran yet.
  double quantile_ms(double q) const;
};

}  // namespace flowstate::engine_detail
