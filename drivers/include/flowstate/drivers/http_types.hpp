#pragma once
// Plain HTTP request/response values, so that Beast stays out of headers.
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "flowstate/runtime/json_text.hpp"

namespace flowstate::http {

using header_list = std::vector<std::pair<std::string, std::string>>;

struct request {
  std::string method;
  std::string target;  // path and query, as sent
  header_list headers;
  std::string body;
  bool keep_alive = true;

  // The first header named `name` (case-insensitive), or "".
  std::string_view header(std::string_view name) const;
};

struct response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  header_list headers;
};

// Sends exactly one response to the client that made a request. Thread-safe;
// the first send wins and later ones are ignored. Dropping the last reference
// without sending answers 500, so a lost reply never leaves a client hanging.
// A response whose body is written piece by piece as it is produced
// (Server-Sent Events): the connection closes when it ends. Thread-safe.
class response_stream {
 public:
  virtual ~response_stream() = default;
  // Queues bytes of the body; false once the client is gone or close() ran.
  virtual bool write(std::string bytes) = 0;
  virtual bool closed() const = 0;
  virtual void close() = 0;
};

class responder {
 public:
  virtual ~responder() = default;
  virtual void send(response r) = 0;
  // Answers with the status and headers of `head` (its body is ignored) and
  // a body streamed through the returned object; instead of send().
  virtual std::shared_ptr<response_stream> stream(response head) = 0;
  virtual bool sent() const = 0;
  // Sends `on_timeout` unless a response was sent within `ms` (a route's
  // `timeout:`); the work itself goes on.
  virtual void set_deadline(uint32_t ms, response on_timeout) = 0;
};

using responder_ptr = std::shared_ptr<responder>;

// RFC 9110: a field name is a token (letters, digits, !#$%&'*+-.^_`|~);
// a field value has no CR, LF, NUL or other control byte but HTAB.
bool valid_header_name(std::string_view name);
bool valid_header_value(std::string_view value);
// Statuses whose response has no body (1xx, 204, 304).
inline bool status_has_no_body(int status) { return status < 200 || status == 204 || status == 304; }

// RFC 9457 problem+json body; `type` is the URI that names the kind of
// problem (clients tell problems apart by it, not by status or title).
response problem(int status, std::string_view title, std::string_view detail, std::string_view type = "about:blank");

using flowstate::append_json_string;

}  // namespace flowstate::http
