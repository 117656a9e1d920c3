#pragma once
// The admin token's check: the presented Authorization header and the
// expected one are compared as BLAKE2b digests of equal length with
// sodium_memcmp, in constant time, so that the time taken tells an attacker
// nothing about how much of a guess was right.
#include <array>
#include <string_view>

namespace flowstate::admin {

class token_check {
 public:
  explicit token_check(std::string_view token);
  // True when `authorization` is exactly "Bearer TOKEN".
  bool matches(std::string_view authorization) const;

 private:
  std::array<unsigned char, 32> expected_{};
};

}  // namespace flowstate::admin
