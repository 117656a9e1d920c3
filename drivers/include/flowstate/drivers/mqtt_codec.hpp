#pragma once
// MQTT 3.1.1 packets (OASIS standard, 2014) as values, their encoding, and
// decoding from a byte stream; topic names and filters. No I/O and no CAF:
// the client session (docs/design.md "Drivers", step 2) is built on this.
// Decoding reads what a broker sends and is fuzzed (fuzz/mqtt_packet.cpp).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers::mqtt {

struct connect {
  std::string client_id;
  bool clean_session = true;
  uint16_t keep_alive_s = 30;
  std::optional<std::string> username, password;
  struct will_message {
    std::string topic, payload;
    uint8_t qos = 0;
    bool retain = false;
  };
  std::optional<will_message> will;
};
struct connack {
  bool session_present = false;
  uint8_t code = 0;  // 0 accepted; 1..5 refused (protocol, id, unavailable, credentials, not authorized)
};
struct publish {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false, dup = false;
  uint16_t packet_id = 0;  // QoS 1 and 2 only
  // Above the decoder's limit: the packet's size. The payload was not kept
  // (it is empty); the topic, QoS and packet id were, so the message can be
  // acknowledged and recorded as an error instead of coming back forever.
  std::size_t oversized = 0;
};
// PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK: a packet id each.
enum class ack_kind : uint8_t { puback = 4, pubrec = 5, pubrel = 6, pubcomp = 7, unsuback = 11 };
struct ack {
  ack_kind kind = ack_kind::puback;
  uint16_t packet_id = 0;
};
struct subscribe {
  uint16_t packet_id = 0;
  std::vector<std::pair<std::string, uint8_t>> filters;  // (filter, maximum QoS)
};
struct suback {
  uint16_t packet_id = 0;
  std::vector<uint8_t> codes;  // granted QoS, or 0x80 for a refused filter
};
struct unsubscribe {
  uint16_t packet_id = 0;
  std::vector<std::string> filters;
};
// PINGREQ, PINGRESP, DISCONNECT: no body.
enum class bare_kind : uint8_t { pingreq = 12, pingresp = 13, disconnect = 14 };
struct bare {
  bare_kind kind = bare_kind::pingreq;
};

using packet = std::variant<connect, connack, publish, ack, subscribe, suback, unsubscribe, bare>;

std::string encode(const packet& p);

// One packet from the front of `bytes`: nullopt while more bytes are needed,
// an error for a malformed packet or one larger than `max_packet` bytes
// (except a PUBLISH: that one comes back with `oversized` set and an empty
// payload as soon as its topic and packet id are there, and `size` is the
// whole packet's, most of which the caller must skip as it arrives)
// (the connection is then closed, as the standard requires).
struct decoded {
  packet value;
  std::size_t size = 0;  // bytes it took
};
result<std::optional<decoded>> decode(std::string_view bytes, std::size_t max_packet);

// A topic name as published: non-empty UTF-8 text without wildcards or NUL.
bool valid_topic_name(std::string_view topic);
// A subscription filter: levels split by '/', '+' a whole level, '#' the
// whole last level; "$share/GROUP/FILTER" is a shared subscription. The
// problem, or nullopt when it is valid.
std::optional<std::string> filter_problem(std::string_view filter);
// Whether `topic` matches `filter` ("$share/GROUP/" dropped first); topics
// starting with '$' match only filters that start with the same level.
bool topic_matches(std::string_view filter, std::string_view topic);

}  // namespace flowstate::drivers::mqtt
