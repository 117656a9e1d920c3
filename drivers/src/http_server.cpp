#include "flowstate/drivers/http_server.hpp"
#include "flowstate/runtime/thread_name.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cerrno>
#include <cstdio>
#include <deque>
#include <thread>
#include <type_traits>
#include <vector>

#include "flowstate/drivers/detail/client_limits.hpp"

namespace flowstate::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using detail::client_limits;

class session;

// Posts the response onto the session's strand; answers 500 if dropped unsent.
class session_responder final : public responder, public std::enable_shared_from_this<session_responder> {
 public:
  explicit session_responder(std::shared_ptr<session> s) : session_(std::move(s)) {}
  ~session_responder() override {
    if (!sent_.load()) deliver(problem(500, "no reply", "the request's processing ended without a response"));
  }
  void send(response r) override {
    if (sent_.exchange(true)) return;
    deliver(std::move(r));
  }
  bool sent() const override { return sent_.load(); }
  void set_deadline(uint32_t ms, response on_timeout) override;
  std::shared_ptr<response_stream> stream(response head) override;

 private:
  void deliver(response r);
  std::shared_ptr<session> session_;
  std::atomic<bool> sent_{false};
};

// What every session of one server shares.
struct listener_context {
  listener_context(server_options o, handler h)
      : options(std::move(o)),
        on_request(std::move(h)),
        limits({options.max_connections, options.max_connections_per_client, options.requests_per_second,
                options.request_burst}) {}
  server_options options;
  handler on_request;
  client_limits limits;
};

// One client connection, plain or TLS (session_on<Stream> below). Runs on
// its strand; the responder and the stream post onto it.
class session : public std::enable_shared_from_this<session> {
 public:
  session(asio::any_io_executor strand, std::shared_ptr<listener_context> context, std::string client)
      : deadline_(strand), context_(std::move(context)), client_(std::move(client)) {}
  virtual ~session() { context_->limits.close(client_); }

  virtual void start() = 0;

  void arm_deadline(uint32_t ms, std::weak_ptr<session_responder> target, response on_timeout) {
    asio::post(deadline_.get_executor(), [self = shared_from_this(), ms, target, r = std::move(on_timeout)]() mutable {
      self->deadline_.expires_after(std::chrono::milliseconds(ms));
      self->deadline_.async_wait([target, r = std::move(r)](beast::error_code ec) mutable {
        if (ec) return;
        if (auto t = target.lock()) t->send(std::move(r));
      });
    });
  }

  void write(response r) {
    asio::post(deadline_.get_executor(),
               [self = shared_from_this(), r = std::move(r)]() mutable { self->do_write(std::move(r)); });
  }

  // A streamed response: the head now, then raw body bytes in order; the
  // connection closes at the end (no length, no chunking: HTTP/1.1 allows a
  // body delimited by the close). `done` is set once a write fails.
  void write_raw(std::string bytes, std::shared_ptr<std::atomic<bool>> done, bool last) {
    asio::post(deadline_.get_executor(), [self = shared_from_this(), bytes = std::move(bytes), done, last]() mutable {
      self->deadline_.cancel();
      self->raw_queue_.emplace_back(std::move(bytes), last);
      if (self->raw_queue_.size() == 1) self->write_next_raw(done);
    });
  }

 protected:
  virtual void do_write(response r) = 0;
  virtual void write_next_raw(std::shared_ptr<std::atomic<bool>> done) = 0;

  asio::steady_timer deadline_;  // a route's timeout
  std::shared_ptr<listener_context> context_;
  std::string client_;                                  // the peer's IP address
  std::deque<std::pair<std::string, bool>> raw_queue_;  // streamed bytes; true: the last
};

void session_responder::deliver(response r) { session_->write(std::move(r)); }

class session_stream final : public response_stream {
 public:
  explicit session_stream(std::shared_ptr<session> s) : session_(std::move(s)) {}
  ~session_stream() override { close(); }
  bool write(std::string bytes) override {
    if (closed()) return false;
    session_->write_raw(std::move(bytes), done_, false);
    return true;
  }
  bool closed() const override { return done_->load() || closing_.load(); }
  void close() override {
    if (closing_.exchange(true)) return;
    session_->write_raw("", done_, true);
  }

 private:
  std::shared_ptr<session> session_;
  std::shared_ptr<std::atomic<bool>> done_ = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool> closing_{false};
};

std::shared_ptr<response_stream> session_responder::stream(response head) {
  if (sent_.exchange(true)) return nullptr;
  std::string bytes = "HTTP/1.1 " + std::to_string(head.status) + " " +
                      std::string(bhttp::obsolete_reason(static_cast<bhttp::status>(head.status))) +
                      "\r\nServer: flowstate\r\nConnection: close\r\n";
  if (!head.content_type.empty() && valid_header_value(head.content_type))
    bytes += "Content-Type: " + head.content_type + "\r\n";
  for (auto& [name, value] : head.headers)
    if (valid_header_name(name) && valid_header_value(value)) bytes += name + ": " + value + "\r\n";
  bytes += "\r\n";
  auto out = std::make_shared<session_stream>(session_);
  out->write(std::move(bytes));
  return out;
}

void session_responder::set_deadline(uint32_t ms, response on_timeout) {
  if (sent_.load()) return;
  session_->arm_deadline(ms, weak_from_this(), std::move(on_timeout));
}

// The connection's read side: each request waits first for its first bytes
// (the idle timeout on a kept-alive connection; the header timeout on a new
// one), then for the rest of its head (header timeout), then for its body
// (body timeout). The deadlines are absolute, so a client trickling bytes
// (slowloris) gains nothing. Writing a response has the body timeout too.
template <class Stream>
class session_on final : public session {
 public:
  static constexpr bool tls = !std::is_same_v<Stream, beast::tcp_stream>;

  template <class... Args>
  session_on(std::shared_ptr<listener_context> context, std::string client, tcp::socket socket, Args&... tls_context)
      : session(socket.get_executor(), std::move(context), std::move(client)),
        stream_(std::move(socket), tls_context...),
        buffer_(context_->options.header_limit + 64 * 1024) {}

  void start() override {
    asio::dispatch(deadline_.get_executor(), [self = self_ptr()] {
      auto& o = self->context_->options;
      self->lowest().expires_after(std::chrono::milliseconds(o.header_timeout_ms));
      if constexpr (tls) {
        self->stream_.async_handshake(ssl::stream_base::server, [self](beast::error_code ec) {
          if (ec) return;  // not TLS, or too slow: the socket closes with the session
          self->begin_request();
        });
      } else {
        self->begin_request();
      }
    });
  }

 private:
  std::shared_ptr<session_on> self_ptr() { return std::static_pointer_cast<session_on>(shared_from_this()); }
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }
  std::chrono::milliseconds ms(uint32_t n) const { return std::chrono::milliseconds(n); }

  void begin_request() {
    auto& o = context_->options;
    parser_.emplace();
    parser_->body_limit(o.body_limit);
    parser_->header_limit(static_cast<uint32_t>(o.header_limit));
    if (buffer_.size() > 0) return read_header();  // pipelined: the next request is here
    if (!first_request_) lowest().expires_after(ms(o.idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(4096), [self = self_ptr()](beast::error_code ec, std::size_t n) {
      if (ec) return self->on_read(ec);
      self->buffer_.commit(n);
      self->read_header();
    });
  }

  void read_header() {
    // A new connection's first request keeps the deadline set at accept.
    if (!first_request_) lowest().expires_after(ms(context_->options.header_timeout_ms));
    bhttp::async_read_header(stream_, buffer_, *parser_, [self = self_ptr()](beast::error_code ec, std::size_t) {
      if (ec) return self->on_read(ec);
      if (auto refused = self->refusal_of_framing()) {
        self->keep_alive_ = false;  // the rest of the stream cannot be read as requests
        return self->do_write(std::move(*refused));
      }
      if (self->parser_->is_done()) return self->on_read(ec);
      self->lowest().expires_after(self->ms(self->context_->options.body_timeout_ms));
      self->body_bytes_ = 0;
      if (beast::iequals(self->parser_->get()[bhttp::field::expect], "100-continue")) {
        // The client waits for this before it sends the body.
        auto go_on = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
        return asio::async_write(self->stream_, asio::buffer(*go_on), [self, go_on](beast::error_code ec, std::size_t) {
          if (ec) return self->on_read(ec);
          self->read_body();
        });
      }
      self->read_body();
    });
  }

  // A request whose end cannot be told for sure (RFC 9112 6.1, 6.3: request
  // smuggling) or that asks for what this server does not do.
  std::optional<response> refusal_of_framing() {
    auto& head = parser_->get();
    auto te = head[bhttp::field::transfer_encoding];
    if (head.count(bhttp::field::transfer_encoding) > 1 || (!te.empty() && !beast::iequals(te, "chunked")))
      return problem(501, "not implemented",
                     "Transfer-Encoding \"" + std::string(te.substr(0, 64)) +
                         "\" is not supported: send the body with Content-Length, or chunked alone");
    // (Both Transfer-Encoding and Content-Length: Beast's parser refuses it.)
    auto expect = head[bhttp::field::expect];
    if (!expect.empty() && !beast::iequals(expect, "100-continue"))
      return problem(417, "expectation failed", "Expect: only 100-continue is supported");
    return std::nullopt;
  }

  // The body, chunk by chunk: a chunked body's extensions and trailer
  // fields count against the body limit too (Beast's limits leave them out).
  void read_body() {
    bhttp::async_read_some(stream_, buffer_, *parser_, [self = self_ptr()](beast::error_code ec, std::size_t n) {
      if (ec) return self->on_read(ec);
      self->body_bytes_ += n;
      if (self->body_bytes_ > self->context_->options.body_limit + self->context_->options.header_limit)
        return self->on_read(bhttp::error::body_limit);
      if (self->parser_->is_done()) return self->on_read(ec);
      self->read_body();
    });
  }

  void on_read(beast::error_code ec) {
    first_request_ = false;
    lowest().expires_never();
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted || ec == beast::error::timeout || ec == ssl::error::stream_truncated) {
      close();
      return;
    }
    if (ec) {
      keep_alive_ = false;
      if (ec == bhttp::error::body_limit)
        return do_write(problem(413, "payload too large",
                                "the body is larger than " + std::to_string(context_->options.body_limit) + " bytes"));
      if (ec == bhttp::error::header_limit || ec == bhttp::error::buffer_overflow)
        return do_write(problem(431, "request header fields too large",
                                "the request line and headers (or a trailer field) are larger than " +
                                    std::to_string(context_->options.header_limit) + " bytes"));
      return do_write(problem(400, "bad request", ec.message()));
    }
    auto msg = parser_->release();
    keep_alive_ = msg.keep_alive();
    head_ = msg.method() == bhttp::verb::head;
    if (auto wait_s = context_->limits.take_request(client_)) {
      auto r = problem(429, "too many requests",
                       "more than " + std::to_string(context_->options.requests_per_second) +
                           " requests per second from " + client_ + "; retry after " + std::to_string(wait_s) + " s");
      r.headers.emplace_back("Retry-After", std::to_string(wait_s));
      return do_write(std::move(r));
    }
    request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.keep_alive = keep_alive_;
    req.headers.reserve(8);
    for (auto& field : msg) req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    req.body = std::move(msg.body());
    context_->on_request(std::move(req), std::make_shared<session_responder>(shared_from_this()));
  }

  void do_write(response r) override {
    deadline_.cancel();
    if (r.status < 200 || r.status > 599) r = problem(502, "bad response", "the response had no valid status");
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->result(static_cast<unsigned>(r.status));
    res->version(11);
    res->set(bhttp::field::server, "flowstate");
    // A backstop: what renders a response checks it and says what is
    // wrong; here a bad one is still never sent as it is (a header with a
    // line break would split the response) nor ends the process (Beast
    // throws on a body with a status that has none).
    if (status_has_no_body(r.status)) r.body.clear();
    if (!r.content_type.empty() && !status_has_no_body(r.status) && valid_header_value(r.content_type))
      res->set(bhttp::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers)
      if (valid_header_name(name) && valid_header_value(value)) res->set(name, value);
    res->keep_alive(keep_alive_);
    res->body() = std::move(r.body);
    res->prepare_payload();
    lowest().expires_after(ms(context_->options.body_timeout_ms));
    auto then = [self = self_ptr(), res](beast::error_code ec, std::size_t) {
      if (ec || !self->keep_alive_) {
        self->close();
        return;
      }
      self->begin_request();
    };
    if (head_) {
      // The headers a GET would get, Content-Length included; no body.
      head_ = false;
      auto head = std::make_shared<bhttp::response_serializer<bhttp::string_body>>(*res);
      return bhttp::async_write_header(stream_, *head,
                                       [head, then](beast::error_code ec, std::size_t n) { then(ec, n); });
    }
    bhttp::async_write(stream_, *res, then);
  }

  void close() {
    if constexpr (tls) {
      lowest().expires_after(ms(context_->options.body_timeout_ms));
      stream_.async_shutdown([self = self_ptr()](beast::error_code) {
        beast::error_code ignored;
        self->lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
      });
    } else {
      beast::error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    }
  }

  void write_next_raw(std::shared_ptr<std::atomic<bool>> done) override {
    if (raw_queue_.empty()) return;
    lowest().expires_never();
    if (!watching_) {
      watching_ = true;
      watch_for_close(done);
    }
    asio::async_write(stream_, asio::buffer(raw_queue_.front().first),
                      [self = self_ptr(), done](beast::error_code ec, std::size_t) {
                        bool last = self->raw_queue_.front().second;
                        self->raw_queue_.pop_front();
                        if (ec || last) {
                          done->store(true);
                          self->raw_queue_.clear();
                          self->close();
                          return;
                        }
                        self->write_next_raw(done);
                      });
  }

  // A streamed response writes only when it has something to send: the
  // read side tells at once that the client went (its stream then reports
  // closed, and a follower's slot is free again).
  void watch_for_close(std::shared_ptr<std::atomic<bool>> done) {
    stream_.async_read_some(buffer_.prepare(1024), [self = self_ptr(), done](beast::error_code ec, std::size_t) {
      if (ec) {
        done->store(true);
        return;
      }
      self->buffer_.clear();  // nothing more is read from a streamed request's client
      self->watch_for_close(done);
    });
  }

  Stream stream_;
  // Bounded: a line the parser cannot finish (a trailer field) must not grow
  // it without end; a body passes through it in pieces.
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::size_t body_bytes_ = 0;
  bool first_request_ = true;
  bool keep_alive_ = true;
  bool head_ = false;      // the request being answered is a HEAD: no body goes out
  bool watching_ = false;  // the read side is watched for the client's close
};

// A best-effort answer to a connection refused at accept, then the close.
void refuse(int fd, bool tls, std::string_view detail) {
  if (!tls) {
    auto r = problem(503, "too many connections", detail);
    std::string bytes =
        "HTTP/1.1 503 Service Unavailable\r\nServer: flowstate\r\nConnection: close\r\n"
        "Retry-After: 1\r\nContent-Type: application/problem+json\r\nContent-Length: " +
        std::to_string(r.body.size()) + "\r\n\r\n" + r.body;
    [[maybe_unused]] auto sent = ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  }
  ::shutdown(fd, SHUT_RDWR);
}

bool out_of_descriptors(const beast::error_code& ec) {
  if (ec.category() != asio::error::get_system_category()) return false;
  int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

class beast_server final : public server {
 public:
  beast_server(server_options o, handler h)
      : context_(std::make_shared<listener_context>(o, std::move(h))),
        ioc_(static_cast<int>(o.threads)),
        acceptor_(ioc_),
        retry_(ioc_),
        tls_context_(ssl::context::tls_server) {}
  ~beast_server() override {
    stop();
    if (reserve_fd_ >= 0) ::close(reserve_fd_);
  }

  status open() {
    const auto& options = context_->options;
    if (auto st = load_tls(); !st) return st;
    auto colon = options.listen.rfind(':');
    if (colon == std::string::npos) return fail("listen address \"" + options.listen + "\": expected HOST:PORT");
    beast::error_code ec;
    auto address = asio::ip::make_address(options.listen.substr(0, colon), ec);
    if (ec) return fail("listen address \"" + options.listen + "\": " + ec.message());
    unsigned port = 0;
    try {
      port = static_cast<unsigned>(std::stoul(options.listen.substr(colon + 1)));
    } catch (...) {
      return fail("listen address \"" + options.listen + "\": bad port");
    }
    tcp::endpoint ep{address, static_cast<unsigned short>(port)};
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("cannot listen on " + options.listen + ": " + ec.message());
    auto local = acceptor_.local_endpoint();
    address_ = local.address().to_string() + ":" + std::to_string(local.port());
    // Kept to be closed when the process runs out of descriptors, so that
    // the accept loop can still take a waiting connection and close it.
    reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    accept();
    for (unsigned i = 0; i < options.threads; ++i)
      threads_.emplace_back([this, name = options.thread_name] {
        name_this_thread(name.c_str());
        ioc_.run();
      });
    return status::success();
  }

  std::string address() const override { return address_; }

  void stop_accepting() override {
    asio::post(acceptor_.get_executor(), [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
      retry_.cancel();
    });
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    ioc_.stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  bool tls() const { return !context_->options.tls_cert.empty(); }

  status load_tls() {
    const auto& o = context_->options;
    if (o.tls_cert.empty() && o.tls_key.empty()) return status::success();
    if (o.tls_cert.empty() || o.tls_key.empty())
      return fail("TLS needs both a certificate and a key (--tls-cert and --tls-key)");
    beast::error_code ec;
    tls_context_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                                 ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use,
                             ec);
    tls_context_.use_certificate_chain_file(o.tls_cert, ec);
    if (ec) return fail("TLS certificate " + o.tls_cert + ": " + ec.message() + " (expected a PEM file)");
    tls_context_.use_private_key_file(o.tls_key, ssl::context::pem, ec);
    if (ec) return fail("TLS key " + o.tls_key + ": " + ec.message() + " (expected a PEM file)");
    if (SSL_CTX_check_private_key(tls_context_.native_handle()) != 1)
      return fail("TLS key " + o.tls_key + " does not match the certificate " + o.tls_cert);
    return status::success();
  }

  void accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
        if (out_of_descriptors(ec)) return shed_and_back_off(ec);
      } else {
        backoff_ms_ = 0;
        admit(std::move(socket));
      }
      accept();
    });
  }

  void admit(tcp::socket socket) {
    beast::error_code ec;
    auto peer = socket.remote_endpoint(ec);
    if (ec) return;  // already gone
    auto client = peer.address().to_string();
    switch (context_->limits.open(client)) {
      case client_limits::admission::too_many_connections:
        return refuse(
            socket.native_handle(), tls(),
            "the node has " + std::to_string(context_->options.max_connections) + " connections open, its limit");
      case client_limits::admission::too_many_from_client:
        return refuse(socket.native_handle(), tls(),
                      std::to_string(context_->options.max_connections_per_client) + " connections from " + client +
                          " are open, the limit per client");
      case client_limits::admission::admitted:
        break;
    }
    socket.set_option(tcp::no_delay(true), ec);
    if (tls())
      std::make_shared<session_on<beast::ssl_stream<beast::tcp_stream>>>(context_, client, std::move(socket),
                                                                         tls_context_)
          ->start();
    else
      std::make_shared<session_on<beast::tcp_stream>>(context_, client, std::move(socket))->start();
  }

  // Out of file descriptors: the waiting connections are taken with the
  // reserve descriptor, one at a time, and closed (rather than left hanging
  // in the backlog), and accepting resumes after a pause that grows while
  // it lasts.
  void shed_and_back_off(const beast::error_code& ec) {
    if (reserve_fd_ >= 0) {
      ::close(reserve_fd_);
      for (int shed = 0; shed < 4096; ++shed) {
        int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) break;  // none left waiting (or still none free)
        refuse(fd, tls(), "the node is out of file descriptors");
        ::close(fd);
      }
      reserve_fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    backoff_ms_ = backoff_ms_ == 0 ? 10 : std::min<uint32_t>(backoff_ms_ * 2, 1000);
    auto now = std::chrono::steady_clock::now();
    if (now - last_warning_ > std::chrono::seconds(10)) {
      last_warning_ = now;
      std::fprintf(stderr, "flowstate: listener %s cannot accept: %s; closing waiting connections until it can\n",
                   address_.c_str(), ec.message().c_str());
    }
    retry_.expires_after(std::chrono::milliseconds(backoff_ms_));
    retry_.async_wait([this](beast::error_code wait_ec) {
      if (!wait_ec && acceptor_.is_open()) accept();
    });
  }

  std::shared_ptr<listener_context> context_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  asio::steady_timer retry_;
  ssl::context tls_context_;
  int reserve_fd_ = -1;
  uint32_t backoff_ms_ = 0;
  std::chrono::steady_clock::time_point last_warning_{};
  std::string address_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
};

}  // namespace

result<std::unique_ptr<server>> server::start(server_options options, handler h) {
  auto s = std::make_unique<beast_server>(std::move(options), std::move(h));
  if (auto st = s->open(); !st) return fail(st.error());
  return std::unique_ptr<server>(std::move(s));
}

}  // namespace flowstate::http
