// The HTTP request path of the flow listener: the raw bytes of a request
// parsed by Beast's parser with the server's limits
// (drivers/src/http_server.cpp), turned into an http::request the way the
// server does, routed through a route_table of http.Request configurations
// (drivers/src/http_routes.cpp), and built into the std:HttpRequest message.
// Property: the message, when built, is valid JSON (UTF-8 included), since
// it goes to a worker as JSON.
#include <simdjson.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "flowstate/drivers/http_routes.hpp"

namespace beast = boost::beast;
namespace bhttp = beast::http;
using namespace flowstate::http;

namespace {

// The routes of the examples, and a catch-all per method.
const route_table& routes() {
  static const route_table table = [] {
    route_table t;
    const char* configs[] = {
        R"({"kind":"http.Request","method":"POST","path":"/count/{key}","timeout":"2s"})",
        (R"({"kind":"http.Request","routes":["GET /api/lists/{key}","POST /api/lists/{key}/todos",)"
         R"("PATCH /api/lists/{key}/todos/{id}","DELETE /api/lists/{key}/todos/{id}"]})"),
        R"({"kind":"http.Request","method":"PUT","path":"/devices/{device}/readings/{n}"})",
        R"({"kind":"http.Request","routes":["GET /{key}","POST /{key}","DELETE /{a}/{b}/{c}"]})",
    };
    for (const char* config : configs) {
      auto parsed = parse_request_routes(config);
      if (!parsed) std::abort();
      for (auto& r : *parsed)
        if (!t.add(std::move(r))) std::abort();
    }
    return t;
  }();
  return table;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bhttp::request_parser<bhttp::string_body> parser;
  parser.body_limit(1 << 20);
  parser.header_limit(16 * 1024);
  parser.eager(true);
  // What bhttp::read does: feed the bytes until the message is complete,
  // then EOF (the client closed) if it is not.
  beast::error_code ec;
  boost::asio::const_buffer rest(data, size);
  while (!parser.is_done() && rest.size() > 0) {
    std::size_t used = parser.put(rest, ec);
    rest += used;
    if (ec == bhttp::error::need_more) {
      ec = {};
      break;
    }
    if (ec) return 0;
    if (used == 0) break;
  }
  if (!parser.got_some()) return 0;
  if (!parser.is_done()) parser.put_eof(ec);
  if (ec || !parser.is_done()) return 0;

  auto msg = parser.release();
  request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  req.keep_alive = msg.keep_alive();
  for (auto& field : msg) req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  req.body = std::move(msg.body());

  auto [path, query] = split_target(req.target);
  auto m = routes().match(req.method, path);
  if (!m) return 0;
  auto message = build_request_message(req, *m);
  if (!message) return 0;

  simdjson::dom::parser json;
  simdjson::dom::element doc;
  if (json.parse(*message).get(doc)) {
    std::fprintf(stderr, "the std:HttpRequest message is not valid JSON:\n%s\n", message->c_str());
    std::abort();
  }
  if (!m->key.empty() && doc["params"].get_object().error()) std::abort();
  return 0;
}
