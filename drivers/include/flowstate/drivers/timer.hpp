#pragma once
// timer.Interval and timer.Cron (docs/drivers.md): sources that emit one
// message per tick per configured key. Ticks fall on multiples of `every`
// since the Unix epoch, or on the cron schedule's minutes (UTC), so every
// node computes the same tick times; the engine commits each tick's message
// with the key's last tick, so a tick is emitted once across restarts, and
// moves with the key's group.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/drivers/cron.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers::timer {

struct interval_config {
  uint64_t every_ms = 0;               // timer.Interval
  std::optional<cron::schedule> cron;  // timer.Cron
  std::vector<std::string> keys;       // one message per tick for each
  // Ticks missed while the node was down (or the key's group was moving)
  // that are still emitted, the most recent first kept; older ones are
  // passed over.
  uint32_t catch_up = 10;
};

// Parses drivers/<name>.yaml (as JSON) of a timer.Interval or a timer.Cron;
// the error names the field.
result<interval_config> parse_interval(std::string_view config_json);
result<interval_config> parse_cron(std::string_view config_json);

// The ticks due at `now_ms` for a key whose last emitted tick was `last_ms`
// (0: none yet), oldest first, at most `catch_up` (`skipped` counts the
// older ones passed over), and the key's new last tick, `mark` (0: keep).
// A key never ticked: an interval emits its latest tick at or before now;
// a cron schedule emits nothing and marks now, so that its first fire is
// the next one and fires missed from then on are caught up.
struct due_ticks {
  std::vector<int64_t> ticks;
  uint64_t skipped = 0;
  int64_t mark = 0;
};
// When the schedule changed since `last_ms` (a deploy), nothing is caught
// up: an interval emits its latest tick if it is new, a cron schedule marks
// now.
due_ticks due(const interval_config& c, int64_t last_ms, int64_t now_ms, bool schedule_changed = false);

// The schedule as text ("every 60000", "cron */5 * * * *"), kept with a
// key's last tick to notice a change.
std::string schedule_text(const interval_config& c);

// The first tick after `now_ms`.
int64_t next_tick(const interval_config& c, int64_t now_ms);

// The message of one tick: {"key":..., "tickMs":..., "tick": ISO 8601 UTC}.
std::string tick_payload(std::string_view key, int64_t tick_ms);

}  // namespace flowstate::drivers::timer
