#include "flowstate/drivers/cron.hpp"

#include <array>
#include <ctime>
#include <vector>

#include "flowstate/runtime/decimal.hpp"

namespace flowstate::drivers::cron {

namespace {

constexpr std::array<std::string_view, 12> month_names = {"jan", "feb", "mar", "apr", "may", "jun",
                                                          "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 7> day_names = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct field_spec {
  const char* name;
  int low, high;
  const std::string_view* names = nullptr;  // value `low + i` for names[i]
  std::size_t name_count = 0;
};

std::optional<int> value_of(std::string_view text, const field_spec& f) {
  if (f.names)
    for (std::size_t i = 0; i < f.name_count; ++i)
      if (text.size() == 3 && std::tolower(static_cast<unsigned char>(text[0])) == f.names[i][0] &&
          std::tolower(static_cast<unsigned char>(text[1])) == f.names[i][1] &&
          std::tolower(static_cast<unsigned char>(text[2])) == f.names[i][2])
        return f.low + static_cast<int>(i);
  auto n = parse_decimal<uint32_t>(text);
  if (!n || static_cast<int>(*n) < f.low || static_cast<int>(*n) > f.high) return std::nullopt;
  return static_cast<int>(*n);
}

// Sets the values one field allows in `bits` (indexed by value); false on
// a malformed field.
template <std::size_t N>
status parse_field(std::string_view text, const field_spec& f, std::bitset<N>& bits, bool& any) {
  auto bad = [&](std::string_view part) {
    return fail(std::string(f.name) + ": expected *, a number from " + std::to_string(f.low) + " to " +
                std::to_string(f.high) + (f.names ? " (or a name)" : "") + ", a range a-b or a step */n, found \"" +
                std::string(part) + "\"");
  };
  any = !text.empty() && text[0] == '*';  // "*" and "*/n" leave the field unrestricted (Vixie cron)
  std::size_t at = 0;
  while (at <= text.size()) {
    auto comma = std::min(text.find(',', at), text.size());
    auto part = text.substr(at, comma - at);
    at = comma + 1;
    int step = 1;
    const bool stepped = part.find('/') != std::string_view::npos;
    if (auto slash = part.find('/'); slash != std::string_view::npos) {
      auto s = parse_decimal<uint32_t>(part.substr(slash + 1));
      if (!s || *s == 0 || *s > static_cast<uint32_t>(f.high)) return bad(part);
      step = static_cast<int>(*s);
      part = part.substr(0, slash);
    }
    int from = f.low, to = f.high;
    if (part != "*") {
      auto dash = part.find('-');
      auto a = value_of(part.substr(0, dash), f);
      if (!a) return bad(part);
      from = to = *a;
      if (dash != std::string_view::npos) {
        auto b = value_of(part.substr(dash + 1), f);
        if (!b || *b < *a) return bad(part);
        to = *b;
      } else if (stepped) {
        to = f.high;  // "5/15": from 5 on
      }
    }
    for (int v = from; v <= to; v += step) bits.set(static_cast<std::size_t>(v));
    if (comma == text.size()) break;
  }
  return status::success();
}

}  // namespace

result<schedule> parse(std::string_view expression) {
  std::vector<std::string_view> fields;
  std::size_t at = 0;
  while (at < expression.size()) {
    while (at < expression.size() && expression[at] == ' ') ++at;
    auto end = std::min(expression.find(' ', at), expression.size());
    if (end > at) fields.push_back(expression.substr(at, end - at));
    at = end;
  }
  if (fields.size() != 5)
    return fail("expected five fields (minute hour day-of-month month day-of-week), like \"*/5 * * * *\", found " +
                std::to_string(fields.size()) + " in \"" + std::string(expression) + "\"");
  schedule s;
  s.text = std::string(expression);
  bool any = false;
  if (auto st = parse_field(fields[0], {"minute", 0, 59}, s.minutes, any); !st) return fail(st.error());
  if (auto st = parse_field(fields[1], {"hour", 0, 23}, s.hours, any); !st) return fail(st.error());
  if (auto st = parse_field(fields[2], {"day of month", 1, 31}, s.days, s.any_day); !st) return fail(st.error());
  if (auto st = parse_field(fields[3], {"month", 1, 12, month_names.data(), month_names.size()}, s.months, any); !st)
    return fail(st.error());
  std::bitset<8> weekdays;
  if (auto st =
          parse_field(fields[4], {"day of week", 0, 7, day_names.data(), day_names.size()}, weekdays, s.any_weekday);
      !st)
    return fail(st.error());
  for (std::size_t d = 0; d < 7; ++d) s.weekdays[d] = weekdays[d] || (d == 0 && weekdays[7]);
  if (!next_after(s, 0)) return fail("\"" + std::string(expression) + "\" never fires (no such day)");
  return s;
}

std::optional<int64_t> next_after(const schedule& s, int64_t after_ms) {
  constexpr int64_t minute = 60000, day = 86400000;
  int64_t t = (after_ms / minute + 1) * minute;  // the next whole minute
  if (after_ms < 0) t = 0;
  for (int days = 0; days < 28 * 366 + 2;
       ++days) {  // the Gregorian calendar repeats its weekdays every 28 years (1901-2099)
    std::time_t secs = static_cast<std::time_t>(t / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    const bool dom = s.days[static_cast<std::size_t>(tm.tm_mday)],
               dow = s.weekdays[static_cast<std::size_t>(tm.tm_wday)];
    // Vixie cron: either day field when both are restricted, else both
    // (a field starting with `*` sets all its days, or its step's).
    const bool day_matches = (s.any_day || s.any_weekday) ? (dom && dow) : (dom || dow);
    if (s.months[static_cast<std::size_t>(tm.tm_mon + 1)] && day_matches)
      for (int m = tm.tm_hour * 60 + tm.tm_min; m < 24 * 60; ++m)
        if (s.hours[static_cast<std::size_t>(m / 60)] && s.minutes[static_cast<std::size_t>(m % 60)])
          return t - (tm.tm_hour * 60 + tm.tm_min) * minute + m * minute;
    t = (t / day + 1) * day;  // midnight of the next day
  }
  return std::nullopt;
}

}  // namespace flowstate::drivers::cron
