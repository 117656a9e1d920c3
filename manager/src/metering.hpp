#pragma once
// A team's month as metering keeps it (metering.cpp), for billing.
#include <cstdint>
#include <string>
#include <string_view>

#include "flowstate/runtime/result.hpp"

namespace flowstate::manager {

class connection;

struct month_totals {
  int64_t executions = 0, credits_used = 0, credits_left = 0;  // credits_left: for this month, before its use
};

// Recomputes a team's month from its counters: executions, and how many of
// them credits paid for (credits go first, as far as the team has them).
// The caller holds the team's row lock (or accepts a concurrent report's
// later correction).
result<month_totals> settle(connection& t, int64_t team, const std::string& month);

// "YYYY-MM", a month of the Gregorian calendar.
bool is_month(std::string_view m);

}  // namespace flowstate::manager
