#include <doctest/doctest.h>

#include "flowstate/drivers/http_post.hpp"

using namespace flowstate::drivers;
using namespace flowstate::drivers::http_post;

namespace {
sinks::delivery sample() {
  sinks::delivery d;
  d.id = "m-1";
  d.key = "dev 7/a";
  d.payload = R"({"deviceId":"dev 7/a","level":42,"alert":{"text":"hot"}})";
  return d;
}
}  // namespace

TEST_CASE("an http.Post configuration is read, and a bad one is refused naming its field") {
  auto c = parse(R"({"kind":"http.Post","url":"https://hooks.example.com:8443/a/{{key}}?level={{/level}}",
    "headers":{"X-Device":"{{/deviceId}}","Authorization":"Bearer abc"},"body":"/alert","timeout":"3s",
    "concurrency":4,"retry":{"attempts":5,"initial":"100ms","max":"2s"}})");
  REQUIRE(c.ok());
  CHECK(c->tls);
  CHECK(c->host == "hooks.example.com");
  CHECK(c->port == "8443");
  CHECK(c->timeout_ms == 3000);
  CHECK(c->concurrency == 4);
  CHECK(c->retry.attempts == 5);
  CHECK(c->retry.initial_ms == 100);
  CHECK(c->retry.max_ms == 2000);
  CHECK(c->headers.size() == 2);
  auto plain = parse(R"({"url":"http://127.0.0.1/hook"})");
  REQUIRE(plain.ok());
  CHECK(plain->port == "80");
  CHECK(plain->method == "POST");
  CHECK(parse(R"({"kind":"http.Post"})").error().find("url: missing") == 0);
  CHECK(parse(R"({"url":"ftp://x/y"})").error().find("url:") == 0);
  CHECK(parse(R"({"url":"http://{{/host}}/y"})").error().find("the host cannot be a template") != std::string::npos);
  CHECK(parse(R"({"url":"http://u:p@x/y"})").error().find("credentials") != std::string::npos);
  CHECK(parse(R"({"url":"http://x:99999/y"})").error().find("port") != std::string::npos);
  CHECK(parse(R"({"url":"http://x/{{nope}}"})").error().find("{{nope}}") != std::string::npos);
  CHECK(parse(R"({"url":"http://x/{{key"})").error().find("not closed") != std::string::npos);
  CHECK(parse(R"({"url":"http://x/","method":"GET"})").error().find("method:") == 0);
  CHECK(parse(R"({"url":"http://x/","headers":{"Bad Name":"v"}})").error().find("headers:") == 0);
  CHECK(parse(R"({"url":"http://x/","body":"alert"})").error().find("body:") == 0);
  CHECK(parse(R"({"url":"http://x/","retry":{"attempts":0}})").error().find("retry.attempts:") == 0);
  CHECK(parse(R"({"url":"http://x/","retry":{"initial":"5s","max":"1s"}})").error().find("retry:") == 0);
  CHECK(parse(R"({"url":"http://x/","urll":"x"})").error().find("unknown field \"urll\"") == 0);
}

TEST_CASE("templates take the key, the id and values at JSON pointers, percent-encoded in the URL") {
  auto c = parse(R"({"url":"http://x/d/{{key}}/{{/level}}?id={{id}}","headers":{"X-Device":"{{/deviceId}}",
    "X-Alert":"{{/alert}}"},"body":"/alert"})");
  REQUIRE(c.ok());
  auto d = sample();
  CHECK(*render(c->target, d, true) == "/d/dev%207%2Fa/42?id=m-1");
  CHECK(*render(c->headers[0].second, d, false) == "dev 7/a");
  CHECK(*render(c->headers[1].second, d, false) == R"({"text":"hot"})");
  CHECK(*body_of(*c, d) == R"({"text":"hot"})");
  auto missing = parse(R"({"url":"http://x/{{/nothing}}"})");
  CHECK(render(missing->target, d, true).error().find("/nothing") != std::string::npos);
  d.payload = R"({"deviceId":"a\r\nX-Injected: 1"})";
  CHECK(!render(c->headers[0].second, d, false).ok());
}

TEST_CASE("an answer is delivered on 2xx, retried on 408, 429 and 5xx, and refused for good otherwise") {
  CHECK(classify(200, "", "").v == sinks::verdict::delivered);
  CHECK(classify(204, "", "").v == sinks::verdict::delivered);
  auto busy = classify(429, "7", "slow down");
  CHECK(busy.v == sinks::verdict::retry);
  CHECK(busy.retry_after_ms == 7000);
  CHECK(busy.answer == "HTTP 429: slow down");
  CHECK(classify(503, "Wed, 21 Oct 2015 07:28:00 GMT", "").retry_after_ms == -1);
  CHECK(classify(408, "", "").v == sinks::verdict::retry);
  CHECK(classify(400, "", "bad").v == sinks::verdict::permanent);
  CHECK(classify(301, "", "").v == sinks::verdict::permanent);
}

TEST_CASE("retry delays grow from the initial delay to the cap, jittered, never below Retry-After") {
  sinks::retry_policy p;
  p.initial_ms = 100;
  p.max_ms = 1000;
  CHECK(sinks::retry_delay_ms(p, 1, 0.999, -1) <= 100);
  CHECK(sinks::retry_delay_ms(p, 1, 0.0, -1) == 50);
  CHECK(sinks::retry_delay_ms(p, 3, 0.999, -1) > 390);
  CHECK(sinks::retry_delay_ms(p, 30, 0.999, -1) <= 1000);
  CHECK(sinks::retry_delay_ms(p, 30, 0.0, -1) == 500);
  CHECK(sinks::retry_delay_ms(p, 1, 0.0, 800) == 800);
  CHECK(sinks::retry_delay_ms(p, 1, 0.0, 50000) == 1000);
}
