#include "config_values.hpp"

#include <cctype>

#include "flowstate/runtime/decimal.hpp"

namespace flowstate::drivers::detail {

std::optional<uint64_t> duration_ms(simdjson::dom::element e, uint64_t max_ms) {
  int64_t n;
  if (!e.get_int64().get(n))
    return n > 0 && static_cast<uint64_t>(n) <= max_ms ? std::optional<uint64_t>(static_cast<uint64_t>(n))
                                                       : std::nullopt;
  std::string_view s;
  if (e.get_string().get(s)) return std::nullopt;
  std::size_t digits = 0;
  while (digits < s.size() && std::isdigit(static_cast<unsigned char>(s[digits]))) ++digits;
  // Up to 9 digits, so that the milliseconds fit in 64 bits before the
  // range check below.
  auto value = parse_decimal<uint64_t>(s.substr(0, digits));
  if (!value || digits > 9) return std::nullopt;
  auto unit = s.substr(digits);
  uint64_t per = 0;
  if (unit == "ms")
    per = 1;
  else if (unit == "s")
    per = 1000;
  else if (unit == "m")
    per = 60000;
  else if (unit == "h")
    per = 3600000;
  else
    return std::nullopt;
  const uint64_t ms = *value * per;
  if (ms == 0 || ms > max_ms) return std::nullopt;
  return ms;
}

status parse_retry(simdjson::dom::element e, sinks::retry_policy& r) {
  simdjson::dom::object o;
  if (e.get_object().get(o))
    return fail("retry: expected a mapping with attempts, initial and max, got " + detail::shown(e));
  for (auto field : o) {
    const std::string_view name = field.key;
    if (name == "attempts") {
      int64_t n;
      if (field.value.get_int64().get(n) || n < 1 || n > 10000)
        return fail("retry.attempts: expected a whole number from 1 to 10000 (tries in all), got " +
                    detail::shown(field.value));
      r.attempts = static_cast<uint32_t>(n);
    } else if (name == "initial" || name == "max") {
      auto ms = detail::duration_ms(field.value, uint64_t{24} * 3600 * 1000);
      if (!ms)
        return fail("retry." + std::string(name) + ": expected a duration up to 24h like 500ms, 10s or 5m, got " +
                    detail::shown(field.value));
      (name == "initial" ? r.initial_ms : r.max_ms) = *ms;
    } else {
      return fail("retry: unknown field \"" + std::string(name) + "\" (it takes attempts, initial and max)");
    }
  }
  if (r.initial_ms > r.max_ms) return fail("retry: initial is longer than max");
  return status::success();
}

result<simdjson::dom::object> config_object(simdjson::dom::parser& parser, std::string_view config_json) {
  simdjson::dom::object doc;
  if (parser.parse(config_json.data(), config_json.size()).get_object().get(doc))
    return fail("driver configuration is not a mapping");
  return doc;
}

std::string shown(simdjson::dom::element e) {
  std::string text = simdjson::minify(e);
  return text.size() > 64 ? text.substr(0, 61) + "..." : text;
}

result<std::vector<std::pair<std::string, std::string>>> pointer_map(simdjson::dom::element e, std::string_view field,
                                                                     std::string_view example) {
  simdjson::dom::object o;
  if (e.get_object().get(o))
    return fail(std::string(field) + ": expected a mapping of names to JSON pointers like " + std::string(example) +
                ", got " + shown(e));
  std::vector<std::pair<std::string, std::string>> out;
  for (auto item : o) {
    std::string_view pointer;
    if (item.value.get_string().get(pointer) || pointer.empty() || pointer.front() != '/')
      return fail(std::string(field) + "." + std::string(item.key) + ": expected a JSON pointer like /device, got " +
                  shown(item.value));
    out.emplace_back(std::string(item.key), std::string(pointer));
  }
  return out;
}

}  // namespace flowstate::drivers::detail
