#include "flowstate/drivers/http_fetch.hpp"

#include <future>

#include "http_client.hpp"

namespace flowstate::drivers {

result<fetch_answer> fetch(sinks::io_thread& io, const fetch_request& r) {
  http_client::endpoint at;
  std::string_view rest = r.url;
  if (rest.rfind("https://", 0) == 0) {
    at.tls = true;
    rest.remove_prefix(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else {
    return fail("not an http(s) URL: " + r.url);
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  const std::string target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return fail("a bad host in " + r.url);
    at.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    at.port = authority.rfind(':', 0) == 0 ? std::string(authority.substr(1)) : "";
  } else {
    const auto colon = authority.rfind(':');
    at.host = std::string(authority.substr(0, colon));
    at.port = colon == std::string_view::npos ? "" : std::string(authority.substr(colon + 1));
  }
  if (at.host.empty()) return fail("no host in " + r.url);
  if (at.port.empty()) at.port = at.tls ? "443" : "80";
  http_client::bhttp::request<http_client::bhttp::string_body> req;
  req.method_string(r.method);
  req.target(target);
  req.version(11);
  http_client::set_common_headers(req, at);
  for (auto& [name, value] : r.headers) req.set(name, value);
  req.body() = r.body;
  req.prepare_payload();
  std::promise<result<fetch_answer>> promise;
  auto future = promise.get_future();
  http_client::send(io, at, std::move(req), r.timeout_ms, [&promise](result<http_client::answer> a) {
    if (!a) return promise.set_value(fail(a.error()));
    promise.set_value(fetch_answer{a->status, std::move(a->body)});
  });
  return future.get();
}

}  // namespace flowstate::drivers
