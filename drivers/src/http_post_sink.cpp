// http.Post's network side: one request per try on a fresh connection
// (plain or TLS, the host name verified against the system's roots), all
// on the sinks' I/O thread, bounded by the configured timeout.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/rfc2818_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "flowstate/drivers/http_post.hpp"
#include "sink_io.hpp"

namespace flowstate::drivers::http_post {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

constexpr std::size_t max_answer_bytes = 64 * 1024;

struct prepared {
  bhttp::request<bhttp::string_body> req;
  std::string host, port;
  bool tls = false;
  uint64_t timeout_ms = 0;
  sinks::done_fn done;
};

// One try: resolve, connect, (handshake,) write, read, close.
template <class Stream>
class call : public std::enable_shared_from_this<call<Stream>> {
 public:
  template <class... Args>
  call(asio::io_context& ioc, prepared p, Args&&... stream_args)
      : resolver_(ioc), deadline_(ioc), stream_(std::forward<Args>(stream_args)...), p_(std::move(p)) {
    parser_.body_limit(max_answer_bytes);
  }

  void start() {
    tcp_layer().expires_after(std::chrono::milliseconds(p_.timeout_ms));
    // The stream's expiry does not cover the name lookup.
    deadline_.expires_after(std::chrono::milliseconds(p_.timeout_ms));
    deadline_.async_wait([weak = this->weak_from_this()](beast::error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->resolver_.cancel();
    });
    resolver_.async_resolve(p_.host, p_.port, [self = this->shared_from_this()](beast::error_code ec, auto results) {
      if (ec) return self->finish_error("cannot resolve " + self->p_.host + ": " + ec.message());
      self->tcp_layer().async_connect(results, [self](beast::error_code ec, const tcp::endpoint&) {
        if (ec)
          return self->finish_error("cannot connect to " + self->p_.host + ":" + self->p_.port + ": " + ec.message());
        self->after_connect();
      });
    });
  }

 private:
  beast::tcp_stream& tcp_layer() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>)
      return stream_;
    else
      return beast::get_lowest_layer(stream_);
  }

  void after_connect() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      write();
    } else {
      beast::error_code not_ip;
      (void)asio::ip::make_address(p_.host, not_ip);
      // SNI carries host names only (RFC 6066), never an address.
      if (not_ip && !SSL_set_tlsext_host_name(stream_.native_handle(), p_.host.c_str()))
        return finish_error("TLS: cannot set the server name " + p_.host);
      stream_.set_verify_callback(asio::ssl::rfc2818_verification(p_.host));
      stream_.async_handshake(asio::ssl::stream_base::client, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->finish_error("TLS handshake with " + self->p_.host + ": " + ec.message());
        self->write();
      });
    }
  }

  void write() {
    bhttp::async_write(stream_, p_.req, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->finish_error("sending the request: " + ec.message());
      bhttp::async_read(self->stream_, self->buffer_, self->parser_, [self](beast::error_code ec, std::size_t) {
        // A body too long to keep, or cut short (TLS without
        // close_notify): the status decides.
        if (ec && !self->parser_.is_header_done()) return self->finish_error("reading the answer: " + ec.message());
        auto& res = self->parser_.get();
        auto retry_after = res[bhttp::field::retry_after];
        self->finish(classify(res.result_int(), std::string_view(retry_after.data(), retry_after.size()), res.body()));
      });
    });
  }

  void finish_error(std::string what) {
    sinks::outcome o;
    o.v = sinks::verdict::retry;
    o.answer = std::move(what);
    finish(std::move(o));
  }

  void finish(sinks::outcome o) {
    deadline_.cancel();
    beast::error_code ignored;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ignored);
    if (auto done = std::move(p_.done)) done(std::move(o));
  }

  tcp::resolver resolver_;
  asio::steady_timer deadline_;
  Stream stream_;
  prepared p_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::string_body> parser_;
};

class post_sink final : public sinks::sink {
 public:
  post_sink(sinks::io_thread& io, config c) : io_(io.get()), c_(std::move(c)) {}

  uint32_t concurrency() const override { return c_.concurrency; }
  sinks::retry_policy retry() const override { return c_.retry; }

  void deliver(const sinks::delivery& d, sinks::done_fn done) override {
    auto refuse = [&](std::string why) {
      sinks::outcome o;
      o.v = sinks::verdict::permanent;
      o.answer = std::move(why);
      done(std::move(o));
    };
    prepared p;
    auto target = render(c_.target, d, true);
    if (!target) return refuse("url: " + target.error());
    p.req.method_string(c_.method);
    p.req.target(*target);
    p.req.version(11);
    const std::string host = c_.host.find(':') != std::string::npos ? "[" + c_.host + "]" : c_.host;  // IPv6
    p.req.set(bhttp::field::host,
              host + ((c_.port == "80" && !c_.tls) || (c_.port == "443" && c_.tls) ? std::string() : ":" + c_.port));
    p.req.set(bhttp::field::user_agent, "flowstate");
    p.req.set(bhttp::field::content_type, "application/json");
    p.req.set(bhttp::field::connection, "close");
    for (auto& [name, t] : c_.headers) {
      auto value = render(t, d, false);
      if (!value) return refuse("headers." + name + ": " + value.error());
      p.req.set(name, *value);
    }
    p.req.set("Idempotency-Key", d.id);
    auto body = http_post::body_of(c_, d);
    if (!body) return refuse(body.error());
    p.req.body() = std::move(*body);
    p.req.prepare_payload();
    p.host = c_.host;
    p.port = c_.port;
    p.tls = c_.tls;
    p.timeout_ms = c_.timeout_ms;
    p.done = std::move(done);
    // The I/O thread outlives every sink; this one may go first (a deploy).
    asio::post(io_.ioc, [&io = io_, p = std::move(p)]() mutable {
      if (p.tls)
        std::make_shared<call<beast::ssl_stream<beast::tcp_stream>>>(io.ioc, std::move(p), io.ioc, io.tls)->start();
      else
        std::make_shared<call<beast::tcp_stream>>(io.ioc, std::move(p), io.ioc)->start();
    });
  }

 private:
  sinks::io_thread::impl& io_;
  config c_;
};

}  // namespace

std::shared_ptr<sinks::sink> make_sink(sinks::io_thread& io, config c) {
  return std::make_shared<post_sink>(io, std::move(c));
}

}  // namespace flowstate::drivers::http_post
