#pragma once
// An HTTP client for the drivers (keep-alive connections reused) (http.Post, influxdb.*): Beast on
// the drivers' I/O thread, no CAF. Internal to drivers/.
#include <boost/beast/http.hpp>

#include <functional>
#include <string>

#include "flowstate/drivers/sink.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers::http_client {

namespace bhttp = boost::beast::http;

struct endpoint {
  std::string host, port;
  bool tls = false;
};

struct answer {
  unsigned status = 0;
  std::string retry_after;
  std::string body;  // at most 4 MiB kept
};

// The answer, or what went wrong before one came (resolve, connect, TLS,
// timeout); called once, on the I/O thread.
using done_fn = std::function<void(result<answer>)>;

// Host (IPv6 bracketed, the default port left out), User-Agent.
void set_common_headers(bhttp::request<bhttp::string_body>& req, const endpoint& at);

void send(sinks::io_thread& io, const endpoint& at, bhttp::request<bhttp::string_body> req, uint64_t timeout_ms,
          done_fn done);

}  // namespace flowstate::drivers::http_client
