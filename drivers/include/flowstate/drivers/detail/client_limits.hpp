#pragma once
// What one listener allows each client IP address: open connections (all
// clients and per address) and a request rate (a token bucket per address).
// Thread-safe; used by the HTTP server's accept loop and sessions.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace flowstate::http::detail {

struct client_limit_options {
  std::size_t max_connections = 0;             // 0: no cap
  std::size_t max_connections_per_client = 0;  // 0: no cap
  double requests_per_second = 0;              // 0: no limit
  double request_burst = 0;                    // 0: twice the rate (at least 1)
};

class client_limits {
 public:
  using clock = std::chrono::steady_clock;
  explicit client_limits(client_limit_options o);

  enum class admission { admitted, too_many_connections, too_many_from_client };
  // Counts a new connection from `client` unless a cap is reached.
  admission open(const std::string& client);
  // Uncounts a connection that open() admitted.
  void close(const std::string& client);
  // Takes one request from the client's bucket: 0 when admitted, else the
  // whole seconds until a request will be (for Retry-After).
  uint32_t take_request(const std::string& client, clock::time_point now = clock::now());

  std::size_t connections() const;
  const client_limit_options& options() const { return options_; }

 private:
  struct client {
    std::size_t connections = 0;
    double tokens = 0;
    clock::time_point refilled{};
  };
  void refill(client& c, clock::time_point now) const;
  // Forgets clients with no connection and a full bucket (bounded memory).
  void sweep(clock::time_point now);

  client_limit_options options_;
  double burst_ = 0;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, client> clients_;
  std::size_t connections_ = 0;
  std::size_t sweep_at_ = 1024;
};

}  // namespace flowstate::http::detail
