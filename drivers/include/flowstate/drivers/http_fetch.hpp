#pragma once
// One blocking HTTP(S) request, for code off the data path (the control
// plane's payment provider): the drivers' client (TLS verified against the
// system's roots) on an I/O thread of the caller's.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers {

namespace sinks {
class io_thread;
}

struct fetch_request {
  std::string method = "GET";
  std::string url;  // http://HOST[:PORT]/PATH or https://...
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  uint64_t timeout_ms = 15000;
};

struct fetch_answer {
  unsigned status = 0;
  std::string body;
};

// The answer, or what went wrong before one came.
result<fetch_answer> fetch(sinks::io_thread& io, const fetch_request& r);

}  // namespace flowstate::drivers
