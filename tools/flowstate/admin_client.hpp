#pragma once
// The CLI's blocking client for the node's admin API.
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate::cli {

struct admin_target {
  std::string address;  // host:port
  std::string token;
  bool tls = false;     // the address was https://host:port
  std::string ca_file;  // PEM trusted for TLS: DATA/admin.crt when present
};

// --admin ADDR, else DATA/admin.addr. The token: FLOWSTATE_TOKEN, else
// DATA/admin.token, else the one `flowstate login` saved (a hosted
// service's API token; docs/hosted.md). An address https://HOST:PORT is
// spoken to over TLS, trusting the certificate the node left in
// DATA/admin.crt (else the system's CAs).
result<admin_target> find_admin(const std::string& data_dir, const std::string& admin_flag);

struct admin_reply {
  int status = 0;
  std::string body;
  std::string set_cookie;  // the Set-Cookie header, if any
};

// One request (with the target's token, if any, and `headers`); fails only
// when the node cannot be reached.
result<admin_reply> admin_request(const admin_target& t, const std::string& method, const std::string& target,
                                  const std::string& body = "",
                                  const std::vector<std::pair<std::string, std::string>>& headers = {});

// Where `flowstate login` keeps the hosted service's token:
// $XDG_CONFIG_HOME/flowstate/credentials, else ~/.config/flowstate/credentials.
std::string credentials_path();

// A GET whose answer is a stream (Server-Sent Events): `on_bytes` gets the
// body as it arrives until it returns false or the stream ends. The status.
result<int> admin_stream(const admin_target& t, const std::string& target,
                         const std::function<bool(std::string_view)>& on_bytes);

// The `detail` of a problem+json body, else the body.
std::string problem_detail(const std::string& body);

}  // namespace flowstate::cli
