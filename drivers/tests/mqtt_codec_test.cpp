#include <doctest/doctest.h>

#include "flowstate/drivers/mqtt_codec.hpp"

using namespace flowstate::drivers::mqtt;

namespace {
packet round_trip(const packet& p) {
  auto bytes = encode(p);
  auto d = decode(bytes, 1 << 20);
  REQUIRE(d.ok());
  REQUIRE(d->has_value());
  CHECK((*d)->size == bytes.size());
  return (*d)->value;
}
}  // namespace

TEST_CASE("MQTT packets round-trip through their bytes") {
  connect c;
  c.client_id = "flowstate-n1-sensors";
  c.clean_session = false;
  c.keep_alive_s = 60;
  c.username = "device";
  c.password = std::string("p\0w", 3);
  c.will = connect::will_message{"status/n1", "gone", 1, true};
  auto back = std::get<connect>(round_trip(c));
  CHECK(back.client_id == c.client_id);
  CHECK_FALSE(back.clean_session);
  CHECK(back.keep_alive_s == 60);
  CHECK(back.username == c.username);
  CHECK(back.password == c.password);
  REQUIRE(back.will);
  CHECK(back.will->topic == "status/n1");
  CHECK(back.will->qos == 1);
  CHECK(back.will->retain);

  publish p{"devices/d1/telemetry", std::string(300, 'x'), 2, true, true, 4711};
  auto pb = std::get<publish>(round_trip(p));
  CHECK(pb.topic == p.topic);
  CHECK(pb.payload == p.payload);  // 300 bytes: a two-byte remaining length
  CHECK(pb.qos == 2);
  CHECK(pb.retain);
  CHECK(pb.dup);
  CHECK(pb.packet_id == 4711);

  for (auto kind : {ack_kind::puback, ack_kind::pubrec, ack_kind::pubrel, ack_kind::pubcomp, ack_kind::unsuback}) {
    auto a = std::get<ack>(round_trip(ack{kind, 9}));
    CHECK(a.kind == kind);
    CHECK(a.packet_id == 9);
  }
  auto s = std::get<subscribe>(round_trip(subscribe{3, {{"devices/+/telemetry", 2}, {"$share/g/alerts/#", 1}}}));
  CHECK(s.filters.size() == 2);
  CHECK(s.filters[1].first == "$share/g/alerts/#");
  auto sa = std::get<suback>(round_trip(suback{3, {2, 0x80}}));
  CHECK(sa.codes == std::vector<uint8_t>{2, 0x80});
  CHECK(std::get<connack>(round_trip(connack{true, 0})).session_present);
  CHECK(std::get<bare>(round_trip(bare{bare_kind::pingresp})).kind == bare_kind::pingresp);
  CHECK(std::get<unsubscribe>(round_trip(unsubscribe{5, {"a/b"}})).filters == std::vector<std::string>{"a/b"});
}

TEST_CASE("a packet split across reads waits for its bytes; two in one read come one at a time") {
  auto bytes = encode(publish{"t", "hello", 1, false, false, 1}) + encode(bare{bare_kind::pingresp});
  for (std::size_t n = 0; n < 10; ++n) {
    auto d = decode(std::string_view(bytes).substr(0, n), 1024);
    REQUIRE(d.ok());
    CHECK_FALSE(d->has_value());
  }
  auto first = decode(bytes, 1024);
  REQUIRE((first.ok() && first->has_value()));
  auto second = decode(std::string_view(bytes).substr((*first)->size), 1024);
  REQUIRE((second.ok() && second->has_value()));
  CHECK(std::holds_alternative<bare>((*second)->value));
}

TEST_CASE(
    "an oversized PUBLISH comes back without its payload, with its size, once its topic and packet id are there") {
  publish big{"devices/d1/telemetry", std::string(2000, 'x'), 1};
  big.packet_id = 7;
  const auto bytes = encode(big);
  CHECK(decode(std::string_view(bytes).substr(0, 10), 1024)->has_value() == false);  // the topic is not all there
  auto d = decode(std::string_view(bytes).substr(0, 40), 1024);
  REQUIRE(d.ok());
  REQUIRE(d->has_value());
  CHECK((*d)->size == bytes.size());
  auto& p = std::get<publish>((*d)->value);
  CHECK(p.topic == "devices/d1/telemetry");
  CHECK(p.packet_id == 7);
  CHECK(p.qos == 1);
  CHECK(p.payload.empty());
  CHECK(p.oversized == bytes.size());
}

TEST_CASE("malformed and oversized packets are errors") {
  CHECK_FALSE(decode(std::string("\x40\xd0\x0f", 3) + std::string(2000, '\0'), 1024).ok());  // an oversized PUBACK
  CHECK_FALSE(decode(std::string("\x30\xff\xff\xff\xff\x01", 6), 1 << 30).ok());             // five length bytes
  CHECK_FALSE(decode(std::string("\x36\x03\x00\x01t", 5), 1024).ok());                       // QoS 3
  CHECK_FALSE(decode(std::string("\x32\x03\x00\x01t", 5), 1024).ok());     // QoS 1 without a packet id
  CHECK_FALSE(decode(std::string("\x30\x03\x00\x01+", 5), 1024).ok());     // a wildcard in a topic name
  CHECK_FALSE(decode(std::string("\x40\x03\x00\x01\x00", 5), 1024).ok());  // PUBACK with a byte too many
  CHECK_FALSE(decode(std::string("\x60\x02\x00\x01", 4), 1024).ok());      // PUBREL without its flags
  CHECK_FALSE(decode(std::string("\xf0\x00", 2), 1024).ok());              // type 15
  CHECK_FALSE(decode(std::string("\x90\x03\x00\x01\x03", 5), 1024).ok());  // SUBACK code 3
}

TEST_CASE("topic filters match as the standard's examples say") {
  CHECK(topic_matches("sport/tennis/player1/#", "sport/tennis/player1"));
  CHECK(topic_matches("sport/tennis/player1/#", "sport/tennis/player1/ranking"));
  CHECK(topic_matches("sport/#", "sport"));
  CHECK(topic_matches("#", "a/b/c"));
  CHECK(topic_matches("sport/tennis/+", "sport/tennis/player1"));
  CHECK_FALSE(topic_matches("sport/tennis/+", "sport/tennis/player1/ranking"));
  CHECK(topic_matches("+/+", "/finance"));
  CHECK(topic_matches("/+", "/finance"));
  CHECK_FALSE(topic_matches("+", "/finance"));
  CHECK_FALSE(topic_matches("#", "$SYS/broker/load"));
  CHECK(topic_matches("$SYS/#", "$SYS/broker/load"));
  CHECK(topic_matches("$share/workers/devices/+/telemetry", "devices/d7/telemetry"));
  CHECK(filter_problem("sport/tennis#"));
  CHECK(filter_problem("sport/#/ranking"));
  CHECK(filter_problem("sport+"));
  CHECK(filter_problem("$share//a"));
  CHECK(filter_problem("$share/g"));
  CHECK_FALSE(filter_problem("+/tennis/#"));
  CHECK(valid_topic_name("devices/d1"));
  CHECK_FALSE(valid_topic_name("devices/+"));
  CHECK_FALSE(valid_topic_name(""));
}
