// One HTTP request per call on a fresh connection (plain or TLS, the host
// name verified against the system's roots), on the drivers' I/O thread,
// bounded by a timeout that covers the name lookup too.
#include "http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/rfc2818_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

#include "sink_io.hpp"

namespace flowstate::drivers::http_client {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

constexpr std::size_t max_answer_bytes = 4u << 20;

struct prepared {
  bhttp::request<bhttp::string_body> req;
  std::string host, port;
  bool tls = false;
  uint64_t timeout_ms = 0;
  done_fn done;
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
        answer a;
        a.status = res.result_int();
        a.retry_after = std::string(res[bhttp::field::retry_after]);
        a.body = std::move(res.body());
        self->finish(std::move(a));
      });
    });
  }

  void finish_error(std::string what) { finish(fail(std::move(what))); }

  void finish(result<answer> a) {
    deadline_.cancel();
    beast::error_code ignored;
    tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ignored);
    if (auto done = std::move(p_.done)) done(std::move(a));
  }

  tcp::resolver resolver_;
  asio::steady_timer deadline_;
  Stream stream_;
  prepared p_;
  beast::flat_buffer buffer_;
  bhttp::response_parser<bhttp::string_body> parser_;
};

}  // namespace

void set_common_headers(bhttp::request<bhttp::string_body>& req, const endpoint& at) {
  const std::string host = at.host.find(':') != std::string::npos ? "[" + at.host + "]" : at.host;  // IPv6
  req.set(bhttp::field::host,
          host + ((at.port == "80" && !at.tls) || (at.port == "443" && at.tls) ? std::string() : ":" + at.port));
  req.set(bhttp::field::user_agent, "flowstate");
  req.set(bhttp::field::connection, "close");
}

void send(sinks::io_thread& io_thread, const endpoint& at, bhttp::request<bhttp::string_body> req, uint64_t timeout_ms,
          done_fn done) {
  prepared p;
  p.req = std::move(req);
  p.host = at.host;
  p.port = at.port;
  p.tls = at.tls;
  p.timeout_ms = timeout_ms;
  p.done = std::move(done);
  // The I/O thread outlives every caller.
  auto& io = io_thread.get();
  asio::post(io.ioc, [&io, p = std::move(p)]() mutable {
    if (p.tls)
      std::make_shared<call<beast::ssl_stream<beast::tcp_stream>>>(io.ioc, std::move(p), io.ioc, io.tls)->start();
    else
      std::make_shared<call<beast::tcp_stream>>(io.ioc, std::move(p), io.ioc)->start();
  });
}

}  // namespace flowstate::drivers::http_client
