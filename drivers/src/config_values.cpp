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

std::string shown(simdjson::dom::element e) {
  std::string text = simdjson::minify(e);
  return text.size() > 64 ? text.substr(0, 61) + "..." : text;
}

}  // namespace flowstate::drivers::detail
