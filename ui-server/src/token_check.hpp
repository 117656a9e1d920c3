#pragma once
// The admin token's check: the presented Authorization header and the
// expected one are compared as BLAKE2b digests of equal length with
// sodium_memcmp, in constant time, so that the time taken tells an attacker
// nothing about how much of a guess was right.
#include <array>
#include <optional>
#include <string_view>

namespace flowstate::admin {

// The token of an "Authorization: Bearer TOKEN" header (the scheme in any
// case), or nullopt for another scheme.
std::optional<std::string_view> bearer_token(std::string_view authorization);

class token_check {
 public:
  explicit token_check(std::string_view token);
  // True when `authorization` is "Bearer TOKEN" (the scheme in any case,
  // RFC 9110 11.1).
  bool matches(std::string_view authorization) const;

 private:
  std::array<unsigned char, 32> expected_{};
};

}  // namespace flowstate::admin
