#pragma once
// HTTP Idempotency-Key deduplication at the source. The response of a
// request with a key is stored in the same commit that produced it; a
// repeat gets the stored response; a repeat while the first is still in
// flight waits for it.
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "flowstate/drivers/http_types.hpp"

namespace flowstate::engine_detail {

std::string encode_response(const http::response& r);
std::optional<http::response> decode_response(std::string_view bytes);

class idempotency_registry {
 public:
  enum class outcome { first, waiting };
  // Registers `reply` under `key`: the first request in flight proceeds,
  // the others wait for its response.
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
