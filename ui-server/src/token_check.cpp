#include "token_check.hpp"

#include <sodium.h>

#include <strings.h>
#include <stdexcept>
#include <string>

namespace flowstate::admin {
namespace {

std::array<unsigned char, 32> digest(std::string_view text) {
  std::array<unsigned char, 32> out{};
  crypto_generichash(out.data(), out.size(), reinterpret_cast<const unsigned char*>(text.data()), text.size(), nullptr,
                     0);
  return out;
}

}  // namespace

std::optional<std::string_view> bearer_token(std::string_view authorization) {
  constexpr std::string_view scheme = "bearer ";
  if (authorization.size() < scheme.size() || strncasecmp(authorization.data(), scheme.data(), scheme.size()) != 0)
    return std::nullopt;
  return authorization.substr(scheme.size());
}

token_check::token_check(std::string_view token) {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialise");
  expected_ = digest("Bearer " + std::string(token));
}

bool token_check::matches(std::string_view authorization) const {
  auto token = bearer_token(authorization);
  if (!token) return false;
  auto presented = digest("Bearer " + std::string(*token));
  return sodium_memcmp(presented.data(), expected_.data(), expected_.size()) == 0;
}

}  // namespace flowstate::admin
