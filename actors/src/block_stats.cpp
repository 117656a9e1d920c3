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

}  // namespace flowstate::engine_detail
