#include <doctest/doctest.h>

#include "../src/token_check.hpp"

using flowstate::admin::token_check;

TEST_CASE("only the exact bearer token passes the admin check, its scheme in any case") {
  token_check check("s3cret-token");
  CHECK(check.matches("Bearer s3cret-token"));
  CHECK_FALSE(check.matches("Bearer s3cret-tokeN"));
  CHECK_FALSE(check.matches("Bearer s3cret-toke"));    // a prefix
  CHECK_FALSE(check.matches("Bearer s3cret-token "));  // longer
  CHECK(check.matches("bearer s3cret-token"));         // RFC 9110 11.1: the scheme is case-insensitive
  CHECK(check.matches("BEARER s3cret-token"));
  CHECK_FALSE(check.matches("Basic s3cret-token"));
  CHECK_FALSE(check.matches("Bearers3cret-token"));
  CHECK_FALSE(check.matches("s3cret-token"));
  CHECK_FALSE(check.matches(""));
  CHECK_FALSE(check.matches("Bearer "));
}

TEST_CASE("a token with a NUL byte is compared as bytes, not as a C string") {
  using namespace std::string_view_literals;
  token_check check("ab\0cd"sv);
  CHECK(check.matches("Bearer ab\0cd"sv));
  CHECK_FALSE(check.matches("Bearer ab"sv));
  CHECK_FALSE(check.matches("Bearer ab\0ce"sv));
}
