#pragma once
// Decimal numbers from text that may come from outside (a request, a project
// file, a stored record) without exceptions: std::stoul throws on text that
// is not a number or does not fit.
#include <charconv>
#include <optional>
#include <string_view>
#include <type_traits>

namespace flowstate {

// `text` as an unsigned decimal integer: nullopt unless it is only digits
// (no sign, no space) and fits in T.
template <class T>
std::optional<T> parse_decimal(std::string_view text) {
  static_assert(std::is_unsigned_v<T>, "parse_decimal reads unsigned integers");
  if (text.empty()) return std::nullopt;
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace flowstate
