// One HTTP request per call (plain or TLS, the host name verified against
// the system's roots), on the drivers' I/O thread, bounded by a timeout
// that covers the name lookup too. Connections are kept alive and reused
// per (TLS, host, port); a request that fails on a reused connection before
// any answer came (the server closed it meanwhile) is sent once more on a
// fresh one.
#include "http_client.hpp"

#include "flowstate/drivers/outbound.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/rfc2818_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

#include <map>
#include <optional>
#include <tuple>
#include <vector>

#include "sink_io.hpp"

namespace flowstate::drivers::http_client {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

constexpr std::size_t max_answer_bytes = 4u << 20;
constexpr std::size_t max_idle_per_target = 16;
constexpr auto max_idle_time = std::chrono::seconds(20);

template <class Stream>
struct connection {
  template <class... Args>
  explicit connection(Args&&... stream_args) : stream(std::forward<Args>(stream_args)...) {}
  Stream stream;
  beast::flat_buffer buffer;
  std::chrono::steady_clock::time_point idle_since;
};

template <class Stream>
using idle_map = std::map<std::string, std::vector<std::unique_ptr<connection<Stream>>>>;

struct pool {
  idle_map<beast::tcp_stream> plain;
  idle_map<beast::ssl_stream<beast::tcp_stream>> tls;
  template <class Stream>
  idle_map<Stream>& of() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>)
      return plain;
    else
      return tls;
  }
};

struct prepared {
  bhttp::request<bhttp::string_body> req;
  std::string host, port;
  bool tls = false;
  uint64_t timeout_ms = 0;
  done_fn done;
};

// One request: on an idle connection to the same target if there is one,
// else resolve, connect, (handshake,); then write, read, and keep the
// connection for the next request when the answer allows it.
template <class Stream>
class call : public std::enable_shared_from_this<call<Stream>> {
 public:
  template <class... Args>
  call(asio::io_context& ioc, pool& idle, prepared p, Args&&... stream_args)
      : resolver_(ioc), deadline_(ioc), idle_(idle), p_(std::move(p)) {
    fresh_ = [args = std::make_tuple(std::forward<Args>(stream_args)...)]() mutable {
      return std::apply([](auto&&... a) { return std::make_unique<connection<Stream>>(a...); }, args);
    };
  }

  void start() {
    // The stream's expiry does not cover the name lookup.
    deadline_.expires_after(std::chrono::milliseconds(p_.timeout_ms));
    deadline_.async_wait([weak = this->weak_from_this()](beast::error_code ec) {
      if (auto self = weak.lock(); self && !ec) {
        self->resolver_.cancel();
        if (self->conn_) beast::get_lowest_layer(self->conn_->stream).cancel();
      }
    });
    auto& idle = idle_.of<Stream>()[key()];
    while (!idle.empty()) {
      conn_ = std::move(idle.back());
      idle.pop_back();
      if (std::chrono::steady_clock::now() - conn_->idle_since < max_idle_time) {
        reused_ = true;
        tcp_layer().expires_after(std::chrono::milliseconds(p_.timeout_ms));
        return write();
      }
      conn_.reset();
    }
    connect_fresh();
  }

 private:
  std::string key() const { return p_.host + '\0' + p_.port; }

  void connect_fresh() {
    reused_ = false;
    conn_ = fresh_();
    tcp_layer().expires_after(std::chrono::milliseconds(p_.timeout_ms));
    resolver_.async_resolve(p_.host, p_.port, [self = this->shared_from_this()](beast::error_code ec, auto results) {
      if (ec) return self->finish_error("cannot resolve " + self->p_.host + ": " + ec.message());
      for (const auto& r : results)  // a hosted node: public addresses only (outbound.hpp)
        if (auto refused = outbound::check(self->p_.host, r.endpoint().address().to_string()); !refused.empty())
          return self->finish_error(refused);
      self->tcp_layer().async_connect(results, [self](beast::error_code ec, const tcp::endpoint&) {
        if (ec)
          return self->finish_error("cannot connect to " + self->p_.host + ":" + self->p_.port + ": " + ec.message());
        self->after_connect();
      });
    });
  }

  beast::tcp_stream& tcp_layer() { return beast::get_lowest_layer(conn_->stream); }

  void after_connect() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      write();
    } else {
      auto& stream = conn_->stream;
      beast::error_code not_ip;
      (void)asio::ip::make_address(p_.host, not_ip);
      // SNI carries host names only (RFC 6066), never an address.
      if (not_ip && !SSL_set_tlsext_host_name(stream.native_handle(), p_.host.c_str()))
        return finish_error("TLS: cannot set the server name " + p_.host);
      stream.set_verify_callback(asio::ssl::rfc2818_verification(p_.host));
      stream.async_handshake(asio::ssl::stream_base::client, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->finish_error("TLS handshake with " + self->p_.host + ": " + ec.message());
        self->write();
      });
    }
  }

  void write() {
    parser_.emplace();
    parser_->body_limit(max_answer_bytes);
    bhttp::async_write(conn_->stream, p_.req, [self = this->shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return self->failed_on_connection("sending the request: " + ec.message());
      bhttp::async_read(self->conn_->stream, self->conn_->buffer, *self->parser_,
                        [self](beast::error_code ec, std::size_t) {
                          // A body too long to keep, or cut short (TLS without
                          // close_notify): the status decides.
                          if (ec && !self->parser_->is_header_done())
                            return self->failed_on_connection("reading the answer: " + ec.message());
                          auto& res = self->parser_->get();
                          answer a;
                          a.status = res.result_int();
                          a.retry_after = std::string(res[bhttp::field::retry_after]);
                          a.body = std::move(res.body());
                          self->keep_ = !ec && res.keep_alive() && self->parser_->is_done();
                          self->finish(std::move(a));
                        });
    });
  }

  // Nothing came back: a reused connection the server had closed is tried
  // once more on a fresh one (before the deadline).
  void failed_on_connection(std::string what) {
    if (reused_ && std::chrono::steady_clock::now() < deadline_.expiry()) {
      beast::error_code ignored;
      tcp_layer().socket().close(ignored);
      return connect_fresh();
    }
    finish_error(std::move(what));
  }

  void finish_error(std::string what) { finish(fail(std::move(what))); }

  void finish(result<answer> a) {
    deadline_.cancel();
    if (conn_) {
      auto& idle = idle_.of<Stream>()[key()];
      if (keep_ && idle.size() < max_idle_per_target) {
        tcp_layer().expires_never();
        conn_->buffer.consume(conn_->buffer.size());
        conn_->idle_since = std::chrono::steady_clock::now();
        idle.push_back(std::move(conn_));
      } else {
        beast::error_code ignored;
        tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ignored);
        tcp_layer().socket().close(ignored);
      }
    }
    if (auto done = std::move(p_.done)) done(std::move(a));
  }

  tcp::resolver resolver_;
  asio::steady_timer deadline_;
  pool& idle_;
  prepared p_;
  std::function<std::unique_ptr<connection<Stream>>()> fresh_;
  std::unique_ptr<connection<Stream>> conn_;
  std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
  bool reused_ = false, keep_ = false;
};

}  // namespace

void set_common_headers(bhttp::request<bhttp::string_body>& req, const endpoint& at) {
  const std::string host = at.host.find(':') != std::string::npos ? "[" + at.host + "]" : at.host;  // IPv6
  req.set(bhttp::field::host,
          host + ((at.port == "80" && !at.tls) || (at.port == "443" && at.tls) ? std::string() : ":" + at.port));
  req.set(bhttp::field::user_agent, "flowstate");
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
    if (!io.http_pool) io.http_pool = std::make_shared<pool>();
    auto& idle = *std::static_pointer_cast<pool>(io.http_pool);
    if (p.tls)
      std::make_shared<call<beast::ssl_stream<beast::tcp_stream>>>(io.ioc, idle, std::move(p), std::ref(io.ioc),
                                                                   std::ref(io.tls))
          ->start();
    else
      std::make_shared<call<beast::tcp_stream>>(io.ioc, idle, std::move(p), std::ref(io.ioc))->start();
  });
}

}  // namespace flowstate::drivers::http_client
