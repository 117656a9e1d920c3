#pragma once
// Cron schedules for timer.Cron (docs/drivers.md "timer.Cron"): the five
// classic fields, minute hour day-of-month month day-of-week, each `*`, a
// number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of those;
// months and weekdays also by name (jan..dec, sun..sat; 0 and 7 are
// Sunday). As in Vixie cron, when both day fields are restricted a day
// matches either. Times are UTC.
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers::cron {

struct schedule {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days;                     // 1..31
  std::bitset<13> months;                   // 1..12
  std::bitset<7> weekdays;                  // 0 = Sunday
  bool any_day = true, any_weekday = true;  // the field was `*`
  std::string text;
};

// Parses an expression; the error names the field and what was found. An
// expression that never fires (like `0 0 31 2 *`) is refused.
result<schedule> parse(std::string_view expression);

// The first time after `after_ms` (ms since the epoch, UTC) at which the
// schedule fires, on a whole minute; nullopt if none within 28 years (the
// calendar repeats its weekdays then: a schedule that fires once fires again).
std::optional<int64_t> next_after(const schedule& s, int64_t after_ms);

}  // namespace flowstate::drivers::cron
