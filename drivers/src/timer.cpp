#include "flowstate/drivers/timer.hpp"

#include <simdjson.h>

#include <algorithm>
#include <deque>
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

namespace {

// The fields both kinds share, and `every` or `cron`.
result<interval_config> parse_timer(std::string_view config_json, bool is_cron) {
  simdjson::dom::parser parser;
  auto parsed_doc = detail::config_object(parser, config_json);
  if (!parsed_doc) return fail(parsed_doc.error());
  simdjson::dom::object doc = *parsed_doc;
  interval_config c;
  for (auto field : doc) {
    const std::string_view name = field.key;
    if (name == "kind") continue;
    if (name == "every" && !is_cron) {
      auto ms = detail::duration_ms(field.value, max_every_ms);
      if (!ms || *ms < 10)
        return fail("every: expected a duration from 10ms to 168h like 10s, 1m or 1h, got " +
                    detail::shown(field.value));
      c.every_ms = *ms;
    } else if (name == "cron" && is_cron) {
      std::string_view text;
      if (field.value.get_string().get(text))
        return fail("cron: expected a cron expression like \"*/5 * * * *\", got " + detail::shown(field.value));
      auto s = cron::parse(text);
      if (!s) return fail("cron: " + s.error());
      c.cron = std::move(*s);
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
      return fail(
          "unknown field \"" + std::string(name) + "\" (" +
          (is_cron ? "timer.Cron takes cron, keys and catchUp" : "timer.Interval takes every, keys and catchUp") + ")");
    }
  }
  if (is_cron && !c.cron) return fail("cron: missing (when it fires, like \"0 * * * *\": every hour)");
  if (!is_cron && !c.every_ms) return fail("every: missing (how often it ticks, like 10s)");
  if (c.keys.empty()) c.keys.push_back("tick");
  return c;
}

// A cron schedule's fires after `last_ms` up to `now_ms`: the most recent
// `keep`, and how many older ones were passed over (counted within the
// window searched: at least that many). The search starts in the last day
// and widens until it holds `keep` fires or reaches `last_ms`, so a long
// downtime costs no more than the fires kept.
due_ticks cron_due(const cron::schedule& s, int64_t last_ms, int64_t now_ms, uint32_t keep) {
  constexpr int64_t day = 86400000;
  due_ticks out;
  std::deque<int64_t> fires;
  for (int64_t window = day;; window *= 4) {
    const int64_t from = std::max(last_ms, now_ms - window);
    fires.clear();
    out.skipped = 0;
    for (auto t = cron::next_after(s, from); t && *t <= now_ms; t = cron::next_after(s, *t)) {
      fires.push_back(*t);
      if (fires.size() > keep) {
        fires.pop_front();
        ++out.skipped;
      }
    }
    if (from == last_ms || fires.size() >= keep) break;
  }
  out.ticks.assign(fires.begin(), fires.end());
  if (!out.ticks.empty()) out.mark = out.ticks.back();
  return out;
}

}  // namespace

result<interval_config> parse_interval(std::string_view config_json) { return parse_timer(config_json, false); }

result<interval_config> parse_cron(std::string_view config_json) { return parse_timer(config_json, true); }

due_ticks due(const interval_config& c, int64_t last_ms, int64_t now_ms, bool schedule_changed) {
  if (c.cron) {
    if (last_ms <= 0 || schedule_changed) {
      due_ticks out;
      out.mark = now_ms;
      return out;
    }
    return cron_due(*c.cron, last_ms, now_ms, std::max<uint32_t>(c.catch_up, 1));
  }
  due_ticks out;
  const auto every = static_cast<int64_t>(c.every_ms);
  const int64_t latest = now_ms - (now_ms % every);  // the latest tick at or before now
  if (latest <= 0 || latest <= last_ms) return out;
  if (last_ms <= 0 || schedule_changed) {
    out.ticks.push_back(latest);
    out.mark = latest;
    return out;
  }
  const int64_t first = last_ms - (last_ms % every) + every;
  const int64_t count = (latest - first) / every + 1;
  const int64_t kept = std::min<int64_t>(count, std::max<int64_t>(c.catch_up, 1));
  out.skipped = static_cast<uint64_t>(count - kept);
  for (int64_t t = latest - (kept - 1) * every; t <= latest; t += every) out.ticks.push_back(t);
  out.mark = latest;
  return out;
}

std::string schedule_text(const interval_config& c) {
  return c.cron ? "cron " + c.cron->text : "every " + std::to_string(c.every_ms);
}

int64_t next_tick(const interval_config& c, int64_t now_ms) {
  if (c.cron) return cron::next_after(*c.cron, now_ms).value_or(now_ms + 60000);
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
