// The frames of requests forwarded between nodes.
#include "../src/peer_frames.hpp"

#include <doctest/doctest.h>

using namespace flowstate;
using namespace flowstate::engine_detail;

TEST_CASE("a forwarded request and its response round-trip through their frames, bytes and headers intact") {
  http::request r;
  r.method = "POST";
  r.target = "/count/k%201?x=1";
  r.body = std::string("{\"a\":\0\xff}", 9);
  r.headers = {{"Content-Type", "application/json"}, {"Idempotency-Key", "k-1"}, {"X-Empty", ""}};
  auto back = decode_request_frame("s3cret-s3cret-16", encode_request_frame("s3cret-s3cret-16", r));
  REQUIRE(back.has_value());
  CHECK(back->method == r.method);
  CHECK(back->target == r.target);
  CHECK(back->body == r.body);
  CHECK(back->headers == r.headers);

  http::response s;
  s.status = 201;
  s.body = "{\"count\":2}";
  s.headers = {{"Idempotent-Replayed", "true"}};
  auto sb = decode_response_frame(encode_response_frame(s));
  REQUIRE(sb.has_value());
  CHECK(sb->status == 201);
  CHECK(sb->content_type == "application/json");
  CHECK(sb->body == s.body);
  CHECK(sb->headers == s.headers);
}

TEST_CASE("a query round-trips, and one without the secret or with anything after it is refused") {
  peer_query q{"state", {"shop", "orders", "total", std::string("k\0ey", 4)}};
  auto frame = encode_query("the-right-secret", q);
  auto back = decode_query("the-right-secret", frame);
  REQUIRE(back.has_value());
  CHECK(back->kind == "state");
  CHECK(back->args == q.args);
  CHECK_FALSE(decode_query("the-wrong-secret", frame).has_value());
  CHECK_FALSE(decode_query("the-right-secret", frame + std::string("\0\0\0\0", 4)).has_value());
  CHECK_FALSE(decode_query("the-right-secret", frame.substr(0, frame.size() - 1)).has_value());
}

TEST_CASE("a request frame without the cluster's secret, or cut short, is refused") {
  http::request r;
  r.method = "GET";
  r.target = "/";
  r.headers = {{"a", "b"}};
  auto frame = encode_request_frame("the-right-secret", r);
  CHECK_FALSE(decode_request_frame("the-wrong-secret", frame).has_value());
  CHECK_FALSE(decode_request_frame("", frame).has_value());
  for (std::size_t n = 0; n < frame.size(); ++n)
    CHECK_FALSE(decode_request_frame("the-right-secret", frame.substr(0, n)));
  CHECK_FALSE(decode_response_frame(frame).has_value());  // a request is not a response
  http::response bad;
  bad.status = 42;
  CHECK_FALSE(decode_response_frame(encode_response_frame(bad)).has_value());
}

TEST_CASE("outbox entries and their statuses round-trip, and a delivery without the secret or cut short is refused") {
  std::vector<delivery_entry> entries = {{0, 3, 4095, 18446744073709551615ull, std::string("q\0ueued", 7)},
                                         {1, 2, 0, 1, ""}};
  auto frame = encode_delivery("the-right-secret", entries);
  auto back = decode_delivery("the-right-secret", frame);
  REQUIRE(back.has_value());
  REQUIRE(back->size() == 2);
  CHECK((*back)[0].project == 3);
  CHECK((*back)[0].source_group == 4095);
  CHECK((*back)[0].seq == 18446744073709551615ull);
  CHECK((*back)[0].queued == entries[0].queued);
  CHECK((*back)[1].tenant == 1);
  CHECK((*back)[1].queued.empty());
  CHECK_FALSE(decode_delivery("the-wrong-secret", frame).has_value());
  for (std::size_t n = 0; n < frame.size(); ++n) CHECK_FALSE(decode_delivery("the-right-secret", frame.substr(0, n)));
  CHECK(decode_delivery("the-right-secret", encode_delivery("the-right-secret", {}))->empty());

  std::vector<delivery_status> statuses = {delivery_status::accepted, delivery_status::elsewhere,
                                           delivery_status::later};
  auto ack = decode_delivery_ack(encode_delivery_ack(statuses));
  REQUIRE(ack.has_value());
  CHECK(*ack == statuses);
  CHECK_FALSE(decode_delivery_ack(frame).has_value());  // a delivery is not an answer
}
