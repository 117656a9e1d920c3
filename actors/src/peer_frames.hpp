#pragma once
// The frames nodes exchange for forwarded requests (docs/cluster.md
// "Requests between nodes"): length-prefixed fields, no CAF, so that the
// decoder, which reads what the network brings, can be fuzzed alone
// (fuzz/peer_frame.cpp).
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/drivers/http_types.hpp"

namespace flowstate::engine_detail {

// A request frame starts with the cluster secret; decoding refuses a frame
// without it (compared in constant time).
std::string encode_request_frame(std::string_view secret, const http::request& r);
std::optional<http::request> decode_request_frame(std::string_view secret, std::string_view frame);
// A question to another node ("state": project, flow, block, key;
// "errors": project, flow, type, limit; "stats": project; ...), answered
// by a response frame (engine_impl::answer_peer).
struct peer_query {
  std::string kind;
  std::vector<std::string> args;
};
std::string encode_query(std::string_view secret, const peer_query& q);
std::optional<peer_query> decode_query(std::string_view secret, std::string_view frame);

// Messages for key groups another node owns (docs/cluster.md "Messages
// between nodes"): outbox entries, each the queued input as the queue
// stores it (records.hpp), numbered per source key group.
struct delivery_entry {
  uint32_t tenant = 0, project = 0, source_group = 0;
  uint64_t seq = 0;
  std::string queued;
};
std::string encode_delivery(std::string_view secret, const std::vector<delivery_entry>& entries);
std::optional<std::vector<delivery_entry>> decode_delivery(std::string_view secret, std::string_view frame);
// The receiver's answer, one per entry, in order.
enum class delivery_status : uint8_t {
  accepted = 0,   // committed (or a repeat of one committed before): the sender may delete it
  elsewhere = 1,  // this node does not own the entry's key group: ask the placement again
  later = 2,      // not now (the project is not active here yet, the store cannot write)
};
std::string encode_delivery_ack(const std::vector<delivery_status>& statuses);
std::optional<std::vector<delivery_status>> decode_delivery_ack(std::string_view frame);

std::string encode_response_frame(const http::response& r);
std::optional<http::response> decode_response_frame(std::string_view frame);

// Forwarded requests to one node, batched: each with the sender's id for
// it, its frame encoded with an empty secret, the batch's secret once.
// The ids come before the secret, so that a batch with a wrong secret can
// still be answered request by request (403).
struct request_batch {
  std::vector<uint64_t> ids;
  bool authentic = false;               // the secret matched
  std::vector<http::request> requests;  // one per id when authentic
};
std::string encode_request_batch(std::string_view secret, const std::vector<std::pair<uint64_t, std::string>>& frames);
std::optional<request_batch> decode_request_batch(std::string_view secret, std::string_view frame);
// Their responses, batched the same way: (id, response frame).
std::string encode_response_batch(const std::vector<std::pair<uint64_t, std::string>>& responses);
std::optional<std::vector<std::pair<uint64_t, http::response>>> decode_response_batch(std::string_view frame);

}  // namespace flowstate::engine_detail
