#pragma once
// A keep-alive HTTP/1.1 server (Boost.Beast) running on its own threads.
// Each request goes to the handler with a responder; the connection waits
// for that response before reading the next request.
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
  std::size_t body_limit = 1 << 20;  // larger bodies get 413
};

class server {
 public:
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
