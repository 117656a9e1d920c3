#include <doctest/doctest.h>

#include "flowstate/runtime/json_text.hpp"

using namespace flowstate;

TEST_CASE("well-formed UTF-8 is accepted and every malformed form is found") {
  CHECK(invalid_utf8_at("plain ascii") == std::string_view::npos);
  CHECK(invalid_utf8_at("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80") == std::string_view::npos);
  CHECK(invalid_utf8_at("\xFF\xFE") == 0);
  CHECK(invalid_utf8_at("ab\xC3") == 2);            // truncated
  CHECK(invalid_utf8_at("\xC0\xAF") == 0);          // overlong "/"
  CHECK(invalid_utf8_at("\xE0\x80\xAF") == 0);      // overlong, three bytes
  CHECK(invalid_utf8_at("\xED\xA0\x80") == 0);      // a UTF-16 surrogate
  CHECK(invalid_utf8_at("\xF4\x90\x80\x80") == 0);  // beyond U+10FFFF
  CHECK(invalid_utf8_at("x\xC3\x28") == 1);         // a continuation byte missing
}

TEST_CASE("a JSON string never carries bytes that are not UTF-8") {
  CHECK(json_quote("caf\xC3\xA9") == "\"caf\xC3\xA9\"");
  const std::string replacement = "\xEF\xBF\xBD";  // U+FFFD
  CHECK(json_quote("a\xFF\xFE"
                   "b") == "\"a" + replacement + replacement + "b\"");
  CHECK(json_quote("\xE2\x82") == "\"" + replacement + replacement + "\"");
  CHECK(json_quote("q\"\n") == "\"q\\\"\\n\"");
}
