#include "block_stats.hpp"

namespace flowstate::engine_detail {

void block_stats::record(std::string_view outcome, int64_t duration_ns) {
  std::size_t o = outcome_names.size() - 1;  // an unknown type counts as UnspecifiedError
  for (std::size_t i = 0; i < outcome_names.size(); ++i)
    if (outcome_names[i] == outcome) o = i;
  executions[o].fetch_add(1, std::memory_order_relaxed);
  if (duration_ns < 0) return;  // not run (e.g. its input failed validation)
  const double seconds = double(duration_ns) / 1e9;
  std::size_t b = 0;
  while (b < duration_buckets.size() && seconds > duration_buckets[b]) ++b;
  durations[b].fetch_add(1, std::memory_order_relaxed);
  duration_sum_ns.fetch_add(static_cast<uint64_t>(duration_ns), std::memory_order_relaxed);
}

void stats_counts::add(const block_stats& s) {
  for (std::size_t i = 0; i < executions.size(); ++i) executions[i] += s.executions[i].load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < durations.size(); ++i) durations[i] += s.durations[i].load(std::memory_order_relaxed);
  duration_sum_ns += s.duration_sum_ns.load(std::memory_order_relaxed);
}

void stats_counts::add(const stats_counts& s) {
  for (std::size_t i = 0; i < executions.size(); ++i) executions[i] += s.executions[i];
  for (std::size_t i = 0; i < durations.size(); ++i) durations[i] += s.durations[i];
  duration_sum_ns += s.duration_sum_ns;
}

double stats_counts::quantile_ms(double q) const {
  uint64_t total = 0;
  for (auto n : durations) total += n;
  if (total == 0) return -1;
  uint64_t seen = 0;
  std::size_t i = 0;
  for (; i + 1 < durations.size(); ++i) {
    seen += durations[i];
    if (double(seen) >= q * double(total)) break;
  }
  return (i < duration_buckets.size() ? duration_buckets[i] : duration_buckets.back()) * 1000;
}

}  // namespace flowstate::engine_detail
