#pragma once
// HTTP Idempotency-Key deduplication at the source. The response of a
// request with a key is stored in the same commit that produced it; a
// repeat gets the stored response; a repeat while the first is still in
// flight waits for it.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "flowstate/drivers/http_types.hpp"

namespace flowstate::engine_detail {

// A stored response, with the time it was produced (ms since the epoch).
std::string encode_response(const http::response& r, int64_t at_ms);
std::optional<http::response> decode_response(std::string_view bytes);
// When a stored response was produced; 0 for records written before times
// were stored.
int64_t stored_response_time(std::string_view bytes);
// True when a stored response is older than `ttl_ms` (records without a
// time never expire).
inline bool idempotency_expired(std::string_view stored, uint64_t ttl_ms, int64_t now_ms) {
  const int64_t at = stored_response_time(stored);
  return at > 0 && now_ms - at > static_cast<int64_t>(ttl_ms);
}

class idempotency_registry {
 public:
  enum class outcome { first, waiting };
  // Registers `reply` under `key`: the first request in flight proceeds,
  // the others wait for its response. The first stays in flight until
  // complete(), even after its client got a route-timeout 504, for as long
  // as its work holds its responder.
  outcome join(const std::string& key, const http::responder_ptr& reply);
  // The response is durable: answer every waiter and forget the key.
  void complete(const std::string& key, const http::response& r);

 private:
  struct entry {
    std::weak_ptr<http::responder> first;
    std::vector<http::responder_ptr> waiters;
  };
  std::mutex mutex_;
  std::unordered_map<std::string, entry> in_flight_;
};

}  // namespace flowstate::engine_detail
