#include "idempotency.hpp"

#include "flowstate/runtime/keys.hpp"

namespace flowstate::engine_detail {

std::string encode_response(const http::response& r, int64_t at_ms) {
  key_builder b;
  b.u64(static_cast<uint64_t>(at_ms));
  b.u32(static_cast<uint32_t>(r.status)).str(r.content_type).u32(static_cast<uint32_t>(r.headers.size()));
  for (auto& [name, value] : r.headers) b.str(name).str(value);
  b.str(r.body);
  return b.take();
}

int64_t stored_response_time(std::string_view bytes) {
  key_reader rd(bytes);
  if (rd.peek() != key_tag::u64) return 0;
  auto at = rd.u64();
  return at ? static_cast<int64_t>(*at) : 0;
}

std::optional<http::response> decode_response(std::string_view bytes) {
  key_reader rd(bytes);
  if (rd.peek() == key_tag::u64) (void)rd.u64();  // the time it was produced
  http::response r;
  auto status = rd.u32();
  auto type = rd.str();
  auto count = rd.u32();
  if (!status || !type || !count) return std::nullopt;
  r.status = static_cast<int>(*status);
  r.content_type = std::move(*type);
  for (uint32_t i = 0; i < *count; ++i) {
    auto name = rd.str();
    auto value = rd.str();
    if (!name || !value) return std::nullopt;
    r.headers.emplace_back(std::move(*name), std::move(*value));
  }
  auto body = rd.str();
  if (!body) return std::nullopt;
  r.body = std::move(*body);
  return r;
}

idempotency_registry::outcome idempotency_registry::join(const std::string& key, const http::responder_ptr& reply) {
  std::lock_guard lock(mutex_);
  auto& e = in_flight_[key];
  // The first request's work holds its responder until the commit that
  // answers it: while the responder lives, the request is in flight, even
  // when the client was already sent a route-timeout 504 (sent() is true
  // then, and nothing is committed yet).
  if (e.first.lock()) {
    e.waiters.push_back(reply);
    return outcome::waiting;
  }
  // A first request whose work ended without completing the key hands it
  // over to this one.
  e.first = reply;
  return outcome::first;
}

void idempotency_registry::complete(const std::string& key, const http::response& r) {
  std::vector<http::responder_ptr> waiters;
  {
    std::lock_guard lock(mutex_);
    auto it = in_flight_.find(key);
    if (it == in_flight_.end()) return;
    waiters = std::move(it->second.waiters);
    in_flight_.erase(it);
  }
  for (auto& w : waiters) {
    auto copy = r;
    copy.headers.emplace_back("Idempotent-Replayed", "true");
    w->send(std::move(copy));
  }
}

}  // namespace flowstate::engine_detail
