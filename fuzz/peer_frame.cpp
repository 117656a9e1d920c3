// libFuzzer target: the frames another node sends (actors/src/peer_frames.cpp),
// read before anything else looks at them. Must never crash or hang; what
// decodes must encode back to a frame that decodes the same.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "peer_frames.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowstate::engine_detail;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string_view secret = "fuzz-secret-0123";
  if (auto r = decode_request_frame(secret, in)) {
    auto again = decode_request_frame(secret, encode_request_frame(secret, *r));
    if (!again || again->method != r->method || again->target != r->target || again->body != r->body ||
        again->headers != r->headers)
      __builtin_trap();
  }
  if (auto q = decode_query(secret, in)) {
    auto again = decode_query(secret, encode_query(secret, *q));
    if (!again || again->kind != q->kind || again->args != q->args) __builtin_trap();
  }
  if (auto d = decode_delivery(secret, in)) {
    auto again = decode_delivery(secret, encode_delivery(secret, *d));
    if (!again || again->size() != d->size()) __builtin_trap();
    for (std::size_t i = 0; i < d->size(); ++i)
      if ((*again)[i].seq != (*d)[i].seq || (*again)[i].queued != (*d)[i].queued ||
          (*again)[i].source_group != (*d)[i].source_group)
        __builtin_trap();
  }
  if (auto a = decode_delivery_ack(in)) {
    auto again = decode_delivery_ack(encode_delivery_ack(*a));
    if (!again || *again != *a) __builtin_trap();
  }
  if (auto b = decode_request_batch(secret, in)) {
    if (b->authentic && b->requests.size() != b->ids.size()) __builtin_trap();
    if (b->authentic) {
      std::vector<std::pair<uint64_t, std::string>> frames;
      for (std::size_t i = 0; i < b->ids.size(); ++i)
        frames.emplace_back(b->ids[i], encode_request_frame("", b->requests[i]));
      auto again = decode_request_batch(secret, encode_request_batch(secret, frames));
      if (!again || again->ids != b->ids || again->requests.size() != b->requests.size()) __builtin_trap();
    }
  }
  if (auto rb = decode_response_batch(in)) {
    std::vector<std::pair<uint64_t, std::string>> frames;
    for (auto& [id, r] : *rb) frames.emplace_back(id, encode_response_frame(r));
    auto again = decode_response_batch(encode_response_batch(frames));
    if (!again || again->size() != rb->size()) __builtin_trap();
  }
  if (auto s = decode_response_frame(in)) {
    auto again = decode_response_frame(encode_response_frame(*s));
    if (!again || again->status != s->status || again->body != s->body || again->headers != s->headers)
      __builtin_trap();
  }
  return 0;
}
