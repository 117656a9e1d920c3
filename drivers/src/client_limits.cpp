#include "flowstate/drivers/detail/client_limits.hpp"

#include <algorithm>
#include <cmath>

namespace flowstate::http::detail {

client_limits::client_limits(client_limit_options o) : options_(o) {
  burst_ = options_.request_burst > 0 ? options_.request_burst : std::max(1.0, 2 * options_.requests_per_second);
}

void client_limits::refill(client& c, clock::time_point now) const {
  if (c.refilled == clock::time_point{}) {
    c.tokens = burst_;
  } else if (now > c.refilled) {
    double elapsed = std::chrono::duration<double>(now - c.refilled).count();
    c.tokens = std::min(burst_, c.tokens + elapsed * options_.requests_per_second);
  }
  c.refilled = std::max(c.refilled, now);
}

client_limits::admission client_limits::open(const std::string& client_address) {
  std::lock_guard lock(mutex_);
  if (options_.max_connections && connections_ >= options_.max_connections) return admission::too_many_connections;
  auto& c = clients_[client_address];
  if (options_.max_connections_per_client && c.connections >= options_.max_connections_per_client)
    return admission::too_many_from_client;
  ++c.connections;
  ++connections_;
  if (clients_.size() >= sweep_at_) sweep(clock::now());
  return admission::admitted;
}

void client_limits::close(const std::string& client_address) {
  std::lock_guard lock(mutex_);
  auto it = clients_.find(client_address);
  if (it == clients_.end() || it->second.connections == 0) return;
  --it->second.connections;
  --connections_;
  if (it->second.connections == 0 && options_.requests_per_second <= 0) clients_.erase(it);
}

uint32_t client_limits::take_request(const std::string& client_address, clock::time_point now) {
  if (options_.requests_per_second <= 0) return 0;
  std::lock_guard lock(mutex_);
  auto& c = clients_[client_address];
  refill(c, now);
  if (c.tokens >= 1) {
    c.tokens -= 1;
    return 0;
  }
  return static_cast<uint32_t>(std::ceil((1 - c.tokens) / options_.requests_per_second));
}

std::size_t client_limits::connections() const {
  std::lock_guard lock(mutex_);
  return connections_;
}

void client_limits::sweep(clock::time_point now) {
  for (auto it = clients_.begin(); it != clients_.end();) {
    if (it->second.connections == 0) {
      refill(it->second, now);
      if (it->second.tokens >= burst_) {
        it = clients_.erase(it);
        continue;
      }
    }
    ++it;
  }
  sweep_at_ = std::max<std::size_t>(1024, clients_.size() * 2);
}

}  // namespace flowstate::http::detail
