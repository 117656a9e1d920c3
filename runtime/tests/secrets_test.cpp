#include <doctest/doctest.h>

#include "flowstate/runtime/secrets.hpp"

using namespace flowstate;

namespace {
secrets::master_key key_of(unsigned char fill) {
  secrets::master_key k;
  k.fill(fill);
  return k;
}
}  // namespace

TEST_CASE("a secret set with a master key opens with it, and not with another key or another project's name") {
  secrets::store s;
  auto master = key_of(7);
  REQUIRE(secrets::set(s, master, "iot", "SLACK_URL", "https://hooks.example.com/T0/B0/xyz").ok());
  REQUIRE(secrets::set(s, master, "iot", "TOKEN", "t\"ok\\en").ok());
  auto text = secrets::render(s);
  CHECK(text.find("hooks.example.com") == std::string::npos);
  CHECK(text.find("SLACK_URL") != std::string::npos);
  auto parsed = secrets::parse(text);
  REQUIRE(parsed.ok());
  auto opened = secrets::open_all(*parsed, master, "iot");
  REQUIRE(opened.ok());
  CHECK(opened->at("SLACK_URL") == "https://hooks.example.com/T0/B0/xyz");
  CHECK(opened->at("TOKEN") == "t\"ok\\en");
  CHECK(secrets::open_all(*parsed, key_of(8), "iot").error().find("master key") != std::string::npos);
  CHECK(!secrets::open_all(*parsed, master, "other").ok());
  CHECK(!secrets::set(s, master, "iot", "9lives", "x").ok());
  CHECK(secrets::remove(s, "TOKEN").ok());
  CHECK(!secrets::remove(s, "TOKEN").ok());
}

TEST_CASE("rotating the key re-encrypts every value with a new data key and keeps the old one for older files") {
  secrets::store s;
  auto master = key_of(1);
  REQUIRE(secrets::set(s, master, "p", "A", "alpha").ok());
  const auto before = secrets::render(s);
  REQUIRE(secrets::rotate_key(s, master, "p").ok());
  CHECK(s.wrapped_keys.size() == 2);
  CHECK(s.values.at("A").key == 2);
  CHECK(secrets::open_all(s, master, "p")->at("A") == "alpha");
  auto older = secrets::parse(before);
  CHECK(secrets::open_all(*older, master, "p")->at("A") == "alpha");
}

TEST_CASE("${secret:NAME} is replaced inside JSON strings, escaped; an unknown name is refused; values are redacted") {
  std::map<std::string, std::string> values{{"URL", "http://h/a\"b"}, {"T", "tok123"}};
  CHECK(secrets::references(R"({"url":"${secret:URL}","h":"Bearer ${secret:T} ${secret:URL}"})") ==
        std::vector<std::string>{"URL", "T"});
  auto out = secrets::substitute(R"({"url":"${secret:URL}","h":"Bearer ${secret:T}"})", values);
  REQUIRE(out.ok());
  CHECK(*out == R"({"url":"http://h/a\"b","h":"Bearer tok123"})");
  CHECK(secrets::substitute(R"({"u":"${secret:NOPE}"})", values).error().find("NOPE") != std::string::npos);
  CHECK(secrets::redact("auth Bearer tok123 failed", {{"T", "tok123"}}) == "auth Bearer [secret T] failed");
}

TEST_CASE("a damaged secrets.yaml is refused naming the line") {
  CHECK(secrets::parse("keys: [").error().find("secrets.yaml:") == 0);
  CHECK(secrets::parse("keys:\n  - {id: 1, key: \"!!!\"}\n").error().find("not base64") != std::string::npos);
  CHECK(secrets::parse("").ok());
}
