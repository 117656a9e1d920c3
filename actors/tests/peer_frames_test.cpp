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

TEST_CASE("a batch of forwarded requests and their responses round-trip; a wrong secret keeps the ids to refuse") {
  http::request a, b;
  a.method = "POST";
  a.target = "/count/k1";
  a.body = "{\"by\":2}";
  a.headers = {{"content-type", "application/json"}};
  b.method = "GET";
  b.target = "/count/k2?x=1";
  std::vector<std::pair<uint64_t, std::string>> frames = {{7, encode_request_frame("", a)},
                                                          {18446744073709551615ull, encode_request_frame("", b)}};
  auto batch = encode_request_batch("the-right-secret", frames);
  auto back = decode_request_batch("the-right-secret", batch);
  REQUIRE(back.has_value());
  CHECK(back->authentic);
  CHECK(back->ids == std::vector<uint64_t>{7, 18446744073709551615ull});
  REQUIRE(back->requests.size() == 2);
  CHECK(back->requests[0].body == a.body);
  CHECK(back->requests[0].headers == a.headers);
  CHECK(back->requests[1].target == b.target);
  auto wrong = decode_request_batch("the-wrong-secret", batch);
  REQUIRE(wrong.has_value());
  CHECK_FALSE(wrong->authentic);
  CHECK(wrong->ids == back->ids);
  CHECK(wrong->requests.empty());
  for (std::size_t n = 0; n < batch.size(); ++n) {
    auto cut = decode_request_batch("the-right-secret", batch.substr(0, n));
    CHECK((!cut || !cut->authentic || cut->requests.size() != 2));
  }

  http::response ok, problem = http::problem(409, "conflict", "no");
  ok.body = "{\"count\":3}";
  auto replies = encode_response_batch({{7, encode_response_frame(ok)}, {9, encode_response_frame(problem)}});
  auto answers = decode_response_batch(replies);
  REQUIRE(answers.has_value());
  REQUIRE(answers->size() == 2);
  CHECK((*answers)[0].first == 7);
  CHECK((*answers)[0].second.body == ok.body);
  CHECK((*answers)[1].second.status == 409);
  for (std::size_t n = 0; n < replies.size(); ++n) CHECK_FALSE(decode_response_batch(replies.substr(0, n)));
  CHECK_FALSE(decode_response_batch(batch).has_value());  // requests are not responses
}
