#pragma once
// A keep-alive HTTP/1.1 server (Boost.Beast) running on its own threads,
// plain or TLS. Each request goes to the handler with a responder; the
// connection waits for that response before reading the next request.
// Hostile clients are held off here, before any request reaches the
// handler: read deadlines, connection caps, header and body size caps and
// a request rate per client address (see docs/http.md, "Limits").
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::http {

using handler = std::function<void(request&&, responder_ptr)>;

struct server_options {
  std::string listen = "127.0.0.1:8080";  // host:port, port 0 picks a free one
  unsigned threads = 1;
  std::string thread_name = "fs-http";           // the listener threads' name (top -H, perf)
  std::size_t body_limit = 1 << 20;              // larger bodies get 413
  std::size_t header_limit = 16 * 1024;          // request line and headers; larger get 431
  uint32_t header_timeout_ms = 10000;            // a new request's line and headers must arrive within
  uint32_t body_timeout_ms = 30000;              // its body, and then writing the response, within
  uint32_t idle_timeout_ms = 60000;              // a kept-alive connection waits this long for a request
  std::size_t max_connections = 4096;            // open at once; more are refused (0: no cap)
  std::size_t max_connections_per_client = 256;  // per client IP address (0: no cap)
  double requests_per_second = 0;                // per client IP address, token bucket (0: no limit)
  double request_burst = 0;                      // bucket size; 0: twice the rate
  // PEM files; both empty: plain HTTP. A chain file may hold intermediates.
  std::string tls_cert;
  std::string tls_key;
};

class server {
 public:
  // Fails with a message naming the option when the address cannot be
  // bound or the certificate or key cannot be loaded.
  static result<std::unique_ptr<server>> start(server_options options, handler h);
  virtual ~server() = default;
  // The address actually bound, "127.0.0.1:PORT".
  virtual std::string address() const = 0;
  // Stops accepting new connections; open ones finish their current request.
  virtual void stop_accepting() = 0;
  // Stops everything and joins the threads.
  virtual void stop() = 0;
};

}  // namespace flowstate::http
