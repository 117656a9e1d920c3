#pragma once
// timer.Interval (docs/drivers.md "timer.Interval"): a source that emits one
// message per tick per configured key. Ticks fall on multiples of `every`
// since the Unix epoch, so every node computes the same tick times; the
// engine commits each tick's message with the key's last tick, so a tick
// is emitted once across restarts, and moves with the key's group.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers::timer {

struct interval_config {
  uint64_t every_ms = 0;
  std::vector<std::string> keys;  // one message per tick for each
  // Ticks missed while the node was down (or the key's group was moving)
  // that are still emitted, the most recent first kept; older ones are
  // passed over.
  uint32_t catch_up = 10;
};

// Parses drivers/<name>.yaml (as JSON); the error names the field.
result<interval_config> parse_interval(std::string_view config_json);

// The ticks due at `now_ms` for a key whose last emitted tick was `last_ms`
// (0: none: only the latest tick at or before now), oldest first, at most
// `catch_up` (`skipped` counts the older ones passed over).
struct due_ticks {
  std::vector<int64_t> ticks;
  uint64_t skipped = 0;
};
due_ticks due(const interval_config& c, int64_t last_ms, int64_t now_ms);

// The first tick after `now_ms`.
int64_t next_tick(const interval_config& c, int64_t now_ms);

// The message of one tick: {"key":..., "tickMs":..., "tick": ISO 8601 UTC}.
std::string tick_payload(std::string_view key, int64_t tick_ms);

}  // namespace flowstate::drivers::timer
