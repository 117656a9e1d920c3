#include "admin_client.hpp"

#include <simdjson.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "node_files.hpp"

namespace flowstate::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

result<admin_target> find_admin(const std::string& data_dir, const std::string& admin_flag) {
  admin_target t;
  if (const char* env = std::getenv("FLOWSTATE_TOKEN"); env && *env) {
    t.token = env;
  } else if (auto token = read_file(data_dir + "/admin.token")) {
    t.token = *token;
  } else if (auto saved = read_file(credentials_path())) {
    simdjson::dom::parser parser;
    std::string_view value;
    if (parser.parse(*saved)["token"].get(value))
      return fail(credentials_path() + " holds no token: run `flowstate login` again");
    t.token = std::string(value);
  } else {
    return fail("no admin token in " + data_dir + "/admin.token (is a node using --data " + data_dir +
                "?), no FLOWSTATE_TOKEN, and no `flowstate login`");
  }
  while (!t.token.empty() && (t.token.back() == '\n' || t.token.back() == '\r')) t.token.pop_back();
  if (!admin_flag.empty()) {
    t.address = admin_flag;
  } else if (auto addr = read_file(data_dir + "/admin.addr")) {
    t.address = *addr;
    while (!t.address.empty() && (t.address.back() == '\n')) t.address.pop_back();
  } else {
    t.address = "127.0.0.1:8081";
  }
  if (t.address.rfind("https://", 0) == 0) {
    t.tls = true;
    t.address = t.address.substr(8);
    if (std::filesystem::exists(data_dir + "/admin.crt")) t.ca_file = data_dir + "/admin.crt";
  } else if (t.address.rfind("http://", 0) == 0) {
    t.address = t.address.substr(7);
  }
  return t;
}

namespace {

// A connected stream to the admin API, plain or TLS; throws when it fails.
class admin_connection {
 public:
  explicit admin_connection(const admin_target& t) : tcp_(ioc_) {
    asio::ip::tcp::resolver resolver(ioc_);
    auto colon = t.address.rfind(':');
    tcp_.connect(resolver.resolve(t.address.substr(0, colon), t.address.substr(colon + 1)));
    if (!t.tls) return;
    tls_context_.emplace(asio::ssl::context::tls_client);
    if (t.ca_file.empty()) {
      tls_context_->set_default_verify_paths();
    } else {
      // The node's own certificate, pinned: trusted as is, not as a CA.
      tls_context_->load_verify_file(t.ca_file);
      X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(tls_context_->native_handle()), X509_V_FLAG_PARTIAL_CHAIN);
    }
    tls_context_->set_verify_mode(asio::ssl::verify_peer);
    tls_.emplace(std::move(tcp_), *tls_context_);
    tls_->handshake(asio::ssl::stream_base::client);
  }
  template <class F>
  auto with_stream(F&& f) {
    if (tls_) return f(*tls_);
    return f(tcp_);
  }

 private:
  asio::io_context ioc_;
  beast::tcp_stream tcp_;
  std::optional<asio::ssl::context> tls_context_;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
};

}  // namespace

std::string credentials_path() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) return std::string(xdg) + "/flowstate/credentials";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.config/flowstate/credentials";
}

result<admin_reply> admin_request(const admin_target& t, const std::string& method, const std::string& target,
                                  const std::string& body,
                                  const std::vector<std::pair<std::string, std::string>>& headers) {
  try {
    admin_connection connection(t);
    return connection.with_stream([&](auto& stream) {
      bhttp::request<bhttp::string_body> req{bhttp::string_to_verb(method), target, 11};
      req.set(bhttp::field::host, t.address);
      if (!t.token.empty()) req.set(bhttp::field::authorization, "Bearer " + t.token);
      req.set(bhttp::field::content_type, "application/json");
      for (auto& [name, value] : headers) req.set(name, value);
      req.body() = body;
      req.prepare_payload();
      bhttp::write(stream, req);
      beast::flat_buffer buffer;
      bhttp::response_parser<bhttp::string_body> parser;
      parser.body_limit(64u << 20);
      bhttp::read(stream, buffer, parser);
      beast::error_code ec;
      beast::get_lowest_layer(stream).socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
      return result<admin_reply>(admin_reply{static_cast<int>(parser.get().result_int()), parser.get().body(),
                                             std::string(parser.get()[bhttp::field::set_cookie])});
    });
  } catch (const std::exception& e) {
    return fail("cannot reach the node's admin API at " + t.address + " (" + e.what() +
                "): is `flowstate serve` running?");
  }
}

result<int> admin_stream(const admin_target& t, const std::string& target,
                         const std::function<bool(std::string_view)>& on_bytes) {
  try {
    admin_connection connection(t);
    return connection.with_stream([&](auto& stream) {
      bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
      req.set(bhttp::field::host, t.address);
      req.set(bhttp::field::authorization, "Bearer " + t.token);
      req.set(bhttp::field::accept, "text/event-stream");
      bhttp::write(stream, req);
      beast::flat_buffer buffer;
      bhttp::response_parser<bhttp::buffer_body> parser;
      parser.body_limit(boost::none);
      bhttp::read_header(stream, buffer, parser);
      const int status = static_cast<int>(parser.get().result_int());
      char piece[16384];
      while (!parser.is_done()) {
        parser.get().body().data = piece;
        parser.get().body().size = sizeof piece;
        beast::error_code ec;
        bhttp::read_some(stream, buffer, parser, ec);
        if (ec && ec != bhttp::error::need_buffer) break;  // the end of the stream, or the node went
        if (!on_bytes({piece, sizeof piece - parser.get().body().size})) break;
      }
      return result<int>(status);
    });
  } catch (const std::exception& e) {
    return fail("cannot reach the node's admin API at " + t.address + " (" + e.what() +
                "): is `flowstate serve` running?");
  }
}

std::string problem_detail(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view detail;
  if (!parser.parse(body).get(doc) && !doc["detail"].get_string().get(detail)) return std::string(detail);
  return body;
}

}  // namespace flowstate::cli
