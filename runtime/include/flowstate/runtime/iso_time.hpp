#pragma once
// Times as text: ms since the Unix epoch as ISO 8601 UTC with milliseconds
// ("2026-12-01T20:12:46.000Z"), so that its text sorts by time.
#include <cstdint>
#include <string>

namespace flowstate {

std::string iso_time(int64_t ms);
// The UTC month of a time, "2026-12": what executions are metered by.
std::string utc_month(int64_t ms);

}  // namespace flowstate
