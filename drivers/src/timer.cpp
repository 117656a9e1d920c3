#include "flowstate/drivers/timer.hpp"

#include <simdjson.h>

#include <algorithm>
#include <set>

#include "config_values.hpp"
#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/iso_time.hpp"

namespace flowstate::drivers::timer {

namespace {
constexpr uint64_t max_every_ms = uint64_t{7} * 24 * 3600 * 1000;  // a week
constexpr uint32_t max_catch_up = 100000;
constexpr std::size_t max_keys = 10000;
}  // namespace

result<interval_config> parse_interval(std::string_view config_json) {
  simdjson::dom::parser parser;
  simdjson::dom::object doc;
  if (parser.parse(config_json.data(), config_json.size()).get_object().get(doc))
    return fail("driver configuration is not a mapping");
  interval_config c;
  for (auto field : doc) {
    const std::string_view name = field.key;
    if (name == "kind") continue;
    if (name == "every") {
      auto ms = detail::duration_ms(field.value, max_every_ms);
      if (!ms || *ms < 10)
        return fail("every: expected a duration from 10ms to 168h like 10s, 1m or 1h, got " +
                    detail::shown(field.value));
      c.every_ms = *ms;
    } else if (name == "keys") {
      simdjson::dom::array list;
      if (field.value.get_array().get(list))
        return fail("keys: expected a list of keys, got " + detail::shown(field.value));
      std::set<std::string> seen;
      for (auto k : list) {
        std::string_view key;
        if (k.get_string().get(key) || key.empty())
          return fail("keys: each key must be a non-empty string, got " + detail::shown(k));
        if (!seen.insert(std::string(key)).second) return fail("keys: \"" + std::string(key) + "\" is listed twice");
        c.keys.emplace_back(key);
      }
      if (c.keys.empty() || c.keys.size() > max_keys)
        return fail("keys: expected 1 to " + std::to_string(max_keys) + " keys, got " + std::to_string(c.keys.size()));
    } else if (name == "catchUp") {
      int64_t n;
      if (field.value.get_int64().get(n) || n < 0 || n > max_catch_up)
        return fail("catchUp: expected a whole number from 0 to " + std::to_string(max_catch_up) + ", got " +
                    detail::shown(field.value));
      c.catch_up = static_cast<uint32_t>(n);
    } else {
      return fail("unknown field \"" + std::string(name) + "\" (timer.Interval takes every, keys and catchUp)");
    }
  }
  if (!c.every_ms) return fail("every: missing (how often it ticks, like 10s)");
  if (c.keys.empty()) c.keys.push_back("tick");
  return c;
}

due_ticks due(const interval_config& c, int64_t last_ms, int64_t now_ms) {
  due_ticks out;
  const auto every = static_cast<int64_t>(c.every_ms);
  const int64_t latest = now_ms - (now_ms % every);  // the latest tick at or before now
  if (latest <= 0 || latest <= last_ms) return out;
  if (last_ms <= 0) {
    out.ticks.push_back(latest);
    return out;
  }
  const int64_t first = last_ms - (last_ms % every) + every;
  const int64_t count = (latest - first) / every + 1;
  const int64_t kept = std::min<int64_t>(count, std::max<int64_t>(c.catch_up, 1));
  out.skipped = static_cast<uint64_t>(count - kept);
  for (int64_t t = latest - (kept - 1) * every; t <= latest; t += every) out.ticks.push_back(t);
  return out;
}

int64_t next_tick(const interval_config& c, int64_t now_ms) {
  const auto every = static_cast<int64_t>(c.every_ms);
  return now_ms - (now_ms % every) + every;
}

std::string tick_payload(std::string_view key, int64_t tick_ms) {
  std::string out = "{\"key\":";
  http::append_json_string(out, key);
  out += ",\"tickMs\":" + std::to_string(tick_ms) + ",\"tick\":\"" + iso_time(tick_ms) + "\"}";
  return out;
}

}  // namespace flowstate::drivers::timer
