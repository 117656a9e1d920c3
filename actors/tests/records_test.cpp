#include <doctest/doctest.h>

#include "../src/errors.hpp"
#include "../src/idempotency.hpp"
#include "../src/records.hpp"

using namespace flowstate;
using namespace flowstate::engine_detail;

TEST_CASE("a queued input survives encoding byte for byte") {
  queued_input q;
  q.flow = "ids";
  q.block = "counter";
  q.msg.id = "0123456789abcdef0123456789abcdef";
  q.msg.key = std::string("k\0ey", 4);
  q.msg.trace_id = "trace";
  q.msg.time_ms = 1700000000123;
  q.msg.payload = R"({"id":"1-2","nested":{"a":[1,2,3]}})";
  auto back = decode_queued(encode_queued(q));
  REQUIRE(back.ok());
  CHECK(back->flow == q.flow);
  CHECK(back->block == q.block);
  CHECK(back->msg.id == q.msg.id);
  CHECK(back->msg.key == q.msg.key);
  CHECK(back->msg.trace_id == q.msg.trace_id);
  CHECK(back->msg.time_ms == q.msg.time_ms);
  CHECK(back->msg.payload == q.msg.payload);
}

TEST_CASE("a truncated queue entry is refused, not misread") {
  queued_input q;
  q.flow = "f";
  q.block = "b";
  q.msg.payload = "{}";
  auto bytes = encode_queued(q);
  CHECK(!decode_queued(bytes.substr(0, bytes.size() - 3)).ok());
}

TEST_CASE("a queue entry keeps its deploy number, and one written without a number reads as 0") {
  queued_input q;
  q.flow = "f";
  q.block = "b";
  q.msg.payload = "{}";
  auto plain = decode_queued(encode_queued(q));
  REQUIRE(plain.ok());
  CHECK(plain->deploy == 0);
  q.deploy = 7;
  auto stamped = encode_queued(q);
  auto back = decode_queued(stamped);
  REQUIRE(back.ok());
  CHECK(back->deploy == 7);
  CHECK(back->msg.payload == "{}");
  CHECK(!decode_queued(stamped.substr(0, stamped.size() - 2)).ok());
}

TEST_CASE("output message ids are derived deterministically from input, block and index") {
  auto a = derive_message_id("m1", "counter", 0);
  CHECK(a == derive_message_id("m1", "counter", 0));
  CHECK(a != derive_message_id("m1", "counter", 1));
  CHECK(a != derive_message_id("m1", "other", 0));
  CHECK(a != derive_message_id("m2", "counter", 0));
  CHECK(a.size() == 32);
  CHECK(new_message_id() != new_message_id());
}

TEST_CASE("an error record round-trips for replay") {
  error_fields e;
  e.id = "42";
  e.type = "Exception";
  e.message = "boom \"quoted\"";
  e.flow = "f";
  e.block = "b";
  e.key = "k";
  e.message_id = "m";
  e.revision = "abc";
  e.at_ms = 1;
  e.details_json = R"({"stack":"x"})";
  e.input_json = R"({"body":{"f":13}})";
  e.trace_id = "t";
  e.accepted_ms = 1234;
  auto back = parse_error_record(error_record_json(e));
  REQUIRE(back.ok());
  CHECK(back->message == e.message);
  CHECK(back->input_json == e.input_json);
  CHECK(back->details_json == e.details_json);
  CHECK(back->accepted_ms == 1234);
  CHECK(back->trace_id == "t");
}

TEST_CASE("error responses use 422, 504 and 500 as problem+json") {
  error_fields e;
  e.type = "PreconditionFailed";
  CHECK(error_response(e).status == 422);
  e.type = "Timeout";
  CHECK(error_response(e).status == 504);
  CHECK(error_response(e).body.find(R"("type":"urn:flowstate:error:Timeout")") != std::string::npos);
  CHECK(problem_type_route_timeout != "urn:flowstate:error:Timeout");
  e.type = "Exception";
  auto r = error_response(e);
  CHECK(r.status == 500);
  CHECK(r.content_type == "application/problem+json");
}

TEST_CASE("an http.Response output renders status, headers and body") {
  auto r = render_http_response(R"({"status":201,"headers":{"X-A":"1","Content-Length":"9"},"body":{"n":1}})");
  REQUIRE(r.ok());
  CHECK(r->status == 201);
  CHECK(r->body == R"({"n":1})");
  REQUIRE(r->headers.size() == 1);
  CHECK(r->headers[0].first == "X-A");
  auto text = render_http_response(R"({"body":"hi"})");
  REQUIRE(text.ok());
  CHECK(text->status == 200);
  CHECK(text->body == "hi");
  CHECK(text->content_type.rfind("text/plain", 0) == 0);
}

TEST_CASE("an http.Response output with a bad status is refused with what came") {
  for (const char* output : {R"({"status":"x"})", R"({"status":99})", R"({"status":101})", R"({"status":600})",
                             R"({"status":200.5})", R"({"status":18446744073709551615})"}) {
    auto r = render_http_response(output);
    REQUIRE(!r.ok());
    CHECK(r.error().find("`status` must be an integer from 200 to 599, got ") != std::string::npos);
  }
  CHECK(render_http_response(R"({"status":"x"})").error().find(R"(got "x")") != std::string::npos);
}

TEST_CASE("a 204 or 304 output with a body is refused; without one, or with null or \"\", it has none") {
  for (const char* output :
       {R"({"status":204,"body":"x"})", R"({"status":304,"body":{}})", R"({"status":204,"body":0})"}) {
    auto r = render_http_response(output);
    REQUIRE(!r.ok());
    CHECK(r.error().find("response has no body") != std::string::npos);
  }
  for (const char* output : {R"({"status":204})", R"({"status":204,"body":null})", R"({"status":304,"body":""})"}) {
    auto r = render_http_response(output);
    REQUIRE(r.ok());
    CHECK(r->body.empty());
    CHECK(r->content_type.empty());
  }
}

TEST_CASE("an output header with a line break, a control byte or a bad name is refused, naming it") {
  auto split = render_http_response(R"({"headers":{"x-a":"v\r\nSet-Cookie: evil=1"},"body":"x"})");
  REQUIRE(!split.ok());
  CHECK(split.error().find(R"(header "x-a": its value holds a line break)") != std::string::npos);
  CHECK(!render_http_response(R"({"headers":{"x-a":"a\u0000b"}})").ok());
  auto name = render_http_response(R"({"headers":{"bad name":"v"}})");
  REQUIRE(!name.ok());
  CHECK(name.error().find(R"(header name "bad name" is not a valid HTTP field name)") != std::string::npos);
  CHECK(!render_http_response(R"({"headers":{"":"v"}})").ok());
  CHECK(render_http_response(R"({"headers":{"x-ok":"a\tb, c=\"d\""}})").ok());
}

TEST_CASE("a key at a JSON pointer must be a string") {
  CHECK(*key_at_pointer(R"({"d":{"id":"x"}})", "/d/id") == "x");
  CHECK(!key_at_pointer(R"({"d":{"id":7}})", "/d/id").ok());
  CHECK(!key_at_pointer(R"({"d":{}})", "/d/id").ok());
}

TEST_CASE("a stored idempotent response decodes to the same response") {
  http::response r;
  r.status = 201;
  r.content_type = "application/json";
  r.headers = {{"X-N", "1"}};
  r.body = R"({"ok":true})";
  auto stored = encode_response(r, 1795917562573);
  auto back = decode_response(stored);
  REQUIRE(back);
  CHECK(back->status == 201);
  CHECK(back->headers == r.headers);
  CHECK(back->body == r.body);
  CHECK(stored_response_time(stored) == 1795917562573);
}

TEST_CASE("subtracting through the uint64 add merge wraps correctly") {
  uint64_t count = 5;
  count += minus(2);
  CHECK(count == 3);
}

namespace {

// Records what a request was answered; alive as long as its work holds it.
struct recording_responder final : http::responder {
  std::vector<http::response> got;
  void send(http::response r) override {
    if (sent_) return;
    sent_ = true;
    got.push_back(std::move(r));
  }
  std::shared_ptr<http::response_stream> stream(http::response) override { return nullptr; }
  bool sent() const override { return sent_; }
  void set_deadline(uint32_t, http::response) override {}
  bool sent_ = false;
};

}  // namespace

TEST_CASE("a repeat waits for a first request that got a route-timeout 504 but is still in flight") {
  idempotency_registry registry;
  auto first = std::make_shared<recording_responder>();
  CHECK(registry.join("k", first) == idempotency_registry::outcome::first);
  first->send(http::problem(504, "route timeout", "still processed", problem_type_route_timeout));
  auto repeat = std::make_shared<recording_responder>();
  CHECK(registry.join("k", repeat) == idempotency_registry::outcome::waiting);
  http::response done;
  done.status = 201;
  registry.complete("k", done);
  REQUIRE(repeat->got.size() == 1);
  CHECK(repeat->got[0].status == 201);
}

TEST_CASE("a key whose first request's work ended without completing it goes to the next request") {
  idempotency_registry registry;
  auto first = std::make_shared<recording_responder>();
  CHECK(registry.join("k", first) == idempotency_registry::outcome::first);
  first.reset();
  auto next = std::make_shared<recording_responder>();
  CHECK(registry.join("k", next) == idempotency_registry::outcome::first);
}

TEST_CASE("a forwarded source message keeps its identity, with or without a deploy number") {
  queued_input q;
  q.flow = "f";
  q.block = "b";
  q.msg.payload = "{}";
  q.identity = std::string("mqttf\0src\0dev-1/7", 17);
  auto back = decode_queued(encode_queued(q));
  REQUIRE(back.ok());
  CHECK(back->deploy == 0);
  CHECK(back->identity == q.identity);
  q.deploy = 9;
  back = decode_queued(encode_queued(q));
  REQUIRE(back.ok());
  CHECK(back->deploy == 9);
  CHECK(back->identity == q.identity);
  q.identity.clear();
  back = decode_queued(encode_queued(q));
  REQUIRE(back.ok());
  CHECK(back->identity.empty());
  q.precondition_failed = "no key at /deviceId";
  back = decode_queued(encode_queued(q));
  REQUIRE(back.ok());
  CHECK(back->identity.empty());
  CHECK(back->precondition_failed == q.precondition_failed);
}
