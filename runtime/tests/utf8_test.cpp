// UTF-8 validity as RFC 3629 defines it.
#include <doctest/doctest.h>

#include <string>

#include "flowstate/runtime/utf8.hpp"

using namespace flowstate;

TEST_CASE("UTF-8 text of one to four bytes per character is valid") {
  CHECK(is_valid_utf8(""));
  CHECK(is_valid_utf8("plain ascii\n"));
  CHECK(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"));
  CHECK(is_valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
  CHECK(is_valid_utf8(std::string("a\0b", 3)));
}

TEST_CASE("stray, truncated, overlong, surrogate and out-of-range sequences are found at their offset") {
  CHECK(invalid_utf8_at("ab\xFF") == 2);
  CHECK(invalid_utf8_at("ab\x80") == 2);
  CHECK(invalid_utf8_at("\xC3") == 0);
  CHECK(invalid_utf8_at("x\xE2\x82") == 1);
  CHECK(invalid_utf8_at("\xC0\xAF") == 0);
  CHECK(invalid_utf8_at("\xE0\x80\xAF") == 0);
  CHECK(invalid_utf8_at("\xED\xA0\x80") == 0);
  CHECK(invalid_utf8_at("\xF4\x90\x80\x80") == 0);
  CHECK(invalid_utf8_at("\xF5\x80\x80\x80") == 0);
  CHECK(invalid_utf8_at("\xE2\x82\x41") == 0);
}
