// libFuzzer target: timer.Interval and timer.Cron configurations
// (drivers/src/timer.cpp, drivers/src/cron.cpp), read from project files at
// deploy. Must never crash or hang; a schedule that parses must fire after
// any time it is asked about, on a whole minute, and later than that time.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "flowstate/drivers/cron.hpp"
#include "flowstate/drivers/timer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowstate::drivers;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  if (auto s = cron::parse(in)) {
    for (int64_t at : {int64_t{0}, int64_t{1796155200000}, int64_t{1796155200000} + 59999}) {
      auto next = cron::next_after(*s, at);
      if (!next || *next <= at || *next % 60000 != 0) __builtin_trap();
    }
  }
  for (auto c : {timer::parse_interval(in), timer::parse_cron(in)}) {
    if (!c) continue;
    if (c->keys.empty()) __builtin_trap();
    auto d = timer::due(*c, 1796155200000, 1796155200000 + 3600000);
    if (d.ticks.size() > std::max<uint32_t>(c->catch_up, 1)) __builtin_trap();
    for (std::size_t i = 1; i < d.ticks.size(); ++i)
      if (d.ticks[i] <= d.ticks[i - 1]) __builtin_trap();
  }
  return 0;
}
