#include "flowstate/drivers/http_server.hpp"

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <thread>
#include <vector>

namespace flowstate::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

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

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, const handler& h, std::size_t body_limit)
      : stream_(std::move(socket)), deadline_(stream_.get_executor()), handler_(h), body_limit_(body_limit) {}

  void arm_deadline(uint32_t ms, std::weak_ptr<session_responder> target, response on_timeout) {
    asio::post(stream_.get_executor(), [self = shared_from_this(), ms, target, r = std::move(on_timeout)]() mutable {
      self->deadline_.expires_after(std::chrono::milliseconds(ms));
      self->deadline_.async_wait([target, r = std::move(r)](beast::error_code ec) mutable {
        if (ec) return;
        if (auto t = target.lock()) t->send(std::move(r));
      });
    });
  }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

  void write(response r) {
    asio::post(stream_.get_executor(),
               [self = shared_from_this(), r = std::move(r)]() mutable { self->do_write(std::move(r)); });
  }

  // A streamed response: the head now, then raw body bytes in order; the
  // connection closes at the end (no length, no chunking: HTTP/1.1 allows a
  // body delimited by the close). `done` is set once a write fails.
  void write_raw(std::string bytes, std::shared_ptr<std::atomic<bool>> done, bool last) {
    asio::post(stream_.get_executor(), [self = shared_from_this(), bytes = std::move(bytes), done, last]() mutable {
      self->deadline_.cancel();
      self->raw_queue_.emplace_back(std::move(bytes), last);
      if (self->raw_queue_.size() == 1) self->write_next_raw(done);
    });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(body_limit_);
    parser_->header_limit(16 * 1024);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
        ec == asio::error::operation_aborted) {
      close();
      return;
    }
    if (ec) {
      keep_alive_ = false;
      int status = ec == bhttp::error::body_limit ? 413 : 400;
      do_write(problem(status, status == 413 ? "payload too large" : "bad request", ec.message()));
      return;
    }
    auto msg = parser_->release();
    request req;
    req.method = std::string(msg.method_string());
    req.target = std::string(msg.target());
    req.keep_alive = msg.keep_alive();
    keep_alive_ = req.keep_alive;
    req.headers.reserve(8);
    for (auto& field : msg) req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    req.body = std::move(msg.body());
    handler_(std::move(req), std::make_shared<session_responder>(shared_from_this()));
  }

  void do_write(response r) {
    deadline_.cancel();
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->result(static_cast<unsigned>(r.status));
    res->version(11);
    res->set(bhttp::field::server, "flowstate");
    if (!r.content_type.empty() && r.status != 204) res->set(bhttp::field::content_type, r.content_type);
    for (auto& [name, value] : r.headers) res->set(name, value);
    res->keep_alive(keep_alive_);
    res->body() = std::move(r.body);
    res->prepare_payload();
    bhttp::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec || !self->keep_alive_) {
        self->close();
        return;
      }
      self->read();
    });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  void write_next_raw(std::shared_ptr<std::atomic<bool>> done) {
    if (raw_queue_.empty()) return;
    stream_.expires_never();
    asio::async_write(stream_, asio::buffer(raw_queue_.front().first),
                      [self = shared_from_this(), done](beast::error_code ec, std::size_t) {
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

  beast::tcp_stream stream_;
  asio::steady_timer deadline_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  const handler& handler_;
  std::size_t body_limit_;
  bool keep_alive_ = true;
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
  if (!head.content_type.empty()) bytes += "Content-Type: " + head.content_type + "\r\n";
  for (auto& [name, value] : head.headers) bytes += name + ": " + value + "\r\n";
  bytes += "\r\n";
  auto out = std::make_shared<session_stream>(session_);
  out->write(std::move(bytes));
  return out;
}

void session_responder::set_deadline(uint32_t ms, response on_timeout) {
  if (sent_.load()) return;
  session_->arm_deadline(ms, weak_from_this(), std::move(on_timeout));
}

class beast_server final : public server {
 public:
  beast_server(server_options o, handler h)
      : options_(std::move(o)), handler_(std::move(h)), ioc_(static_cast<int>(options_.threads)), acceptor_(ioc_) {}
  ~beast_server() override { stop(); }

  status open() {
    auto colon = options_.listen.rfind(':');
    if (colon == std::string::npos) return fail("listen address \"" + options_.listen + "\": expected HOST:PORT");
    beast::error_code ec;
    auto address = asio::ip::make_address(options_.listen.substr(0, colon), ec);
    if (ec) return fail("listen address \"" + options_.listen + "\": " + ec.message());
    unsigned port = 0;
    try {
      port = static_cast<unsigned>(std::stoul(options_.listen.substr(colon + 1)));
    } catch (...) {
      return fail("listen address \"" + options_.listen + "\": bad port");
    }
    tcp::endpoint ep{address, static_cast<unsigned short>(port)};
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return fail("cannot listen on " + options_.listen + ": " + ec.message());
    auto local = acceptor_.local_endpoint();
    address_ = local.address().to_string() + ":" + std::to_string(local.port());
    accept();
    for (unsigned i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
    return status::success();
  }

  std::string address() const override { return address_; }

  void stop_accepting() override {
    asio::post(acceptor_.get_executor(), [this] {
      beast::error_code ignored;
      acceptor_.close(ignored);
    });
  }

  void stop() override {
    if (stopped_.exchange(true)) return;
    ioc_.stop();
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  void accept() {
    acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<session>(std::move(socket), handler_, options_.body_limit)->start();
      }
      accept();
    });
  }

  server_options options_;
  handler handler_;
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
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
