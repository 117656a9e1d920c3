#include "flowstate/drivers/mqtt_session.hpp"
#include "flowstate/drivers/outbound.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/rfc2818_verification.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstdio>
#include <deque>
#include <future>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "flowstate/runtime/decimal.hpp"
#include "sink_io.hpp"

namespace flowstate::drivers::mqtt {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

result<broker_address> parse_broker(std::string_view url) {
  broker_address b;
  std::string_view rest;
  if (url.rfind("mqtt://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("mqtts://", 0) == 0) {
    rest = url.substr(8);
    b.tls = true;
  } else {
    return fail("broker: expected mqtt://host[:port] or mqtts://host[:port], got \"" + std::string(url.substr(0, 64)) +
                "\"");
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::string_view host = rest, port = b.tls ? "8883" : "1883";
  if (!rest.empty() && rest.front() == '[') {  // an IPv6 address: [::1] or [::1]:1883
    const auto close = rest.find(']');
    if (close == std::string_view::npos || (close + 1 < rest.size() && rest[close + 1] != ':'))
      return fail("broker: expected [IPv6 address] or [IPv6 address]:port, got \"" + std::string(rest.substr(0, 64)) +
                  "\"");
    host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) port = rest.substr(close + 2);
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  auto n = parse_decimal<uint32_t>(port);
  if (host.empty() || host.find_first_of("/@?# ") != std::string_view::npos)
    return fail("broker: expected a host name or address after the scheme, got \"" + std::string(rest) + "\"");
  if (!n || *n == 0 || *n > 65535) return fail("broker: the port must be a number from 1 to 65535");
  b.host = std::string(host);
  b.port = std::string(port);
  return b;
}

namespace {

// A connection, plain or TLS, behind one interface.
class byte_stream {
 public:
  virtual ~byte_stream() = default;
  virtual void connect(const tcp::resolver::results_type& at, std::function<void(error_code)> done) = 0;
  virtual void read(asio::mutable_buffer into, std::function<void(error_code, std::size_t)> done) = 0;
  virtual void write(std::string_view bytes, std::function<void(error_code)> done) = 0;
  virtual void close() = 0;
};

class plain_stream final : public byte_stream {
 public:
  explicit plain_stream(asio::io_context& ioc) : socket_(ioc) {}
  void connect(const tcp::resolver::results_type& at, std::function<void(error_code)> done) override {
    asio::async_connect(socket_, at, [done](error_code ec, const tcp::endpoint&) { done(ec); });
  }
  void read(asio::mutable_buffer into, std::function<void(error_code, std::size_t)> done) override {
    socket_.async_read_some(into, std::move(done));
  }
  void write(std::string_view bytes, std::function<void(error_code)> done) override {
    asio::async_write(socket_, asio::buffer(bytes.data(), bytes.size()),
                      [done](error_code ec, std::size_t) { done(ec); });
  }
  void close() override {
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  tcp::socket socket_;
};

class tls_stream final : public byte_stream, public std::enable_shared_from_this<tls_stream> {
 public:
  tls_stream(asio::io_context& ioc, asio::ssl::context& tls, std::string host) : stream_(ioc, tls), host_(host) {}
  void connect(const tcp::resolver::results_type& at, std::function<void(error_code)> done) override {
    asio::async_connect(stream_.next_layer(), at,
                        [self = shared_from_this(), done](error_code ec, const tcp::endpoint&) {
                          auto& stream_ = self->stream_;
                          auto& host_ = self->host_;
                          if (ec) return done(ec);
                          SSL_set_tlsext_host_name(stream_.native_handle(), host_.c_str());
                          stream_.set_verify_mode(asio::ssl::verify_peer);
                          stream_.set_verify_callback(asio::ssl::rfc2818_verification(host_));
                          stream_.async_handshake(asio::ssl::stream_base::client, done);
                        });
  }
  void read(asio::mutable_buffer into, std::function<void(error_code, std::size_t)> done) override {
    stream_.async_read_some(into, std::move(done));
  }
  void write(std::string_view bytes, std::function<void(error_code)> done) override {
    asio::async_write(stream_, asio::buffer(bytes.data(), bytes.size()),
                      [done](error_code ec, std::size_t) { done(ec); });
  }
  void close() override {
    error_code ignored;
    stream_.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.next_layer().close(ignored);
  }

 private:
  asio::ssl::stream<tcp::socket> stream_;
  std::string host_;
};

const char* connack_reason(uint8_t code) {
  switch (code) {
    case 1:
      return "unacceptable protocol version";
    case 2:
      return "client identifier rejected";
    case 3:
      return "server unavailable";
    case 4:
      return "bad user name or password";
    case 5:
      return "not authorized";
    default:
      return "refused";
  }
}

class session_impl final : public session, public std::enable_shared_from_this<session_impl> {
 public:
  session_impl(sinks::io_thread::impl& io, session_options o, session_handlers h)
      : io_(io),
        o_(std::move(o)),
        h_(std::move(h)),
        resolver_(io.ioc),
        reconnect_timer_(io.ioc),
        ping_timer_(io.ioc),
        read_timer_(io.ioc),
        subscribed_(o_.subscribed),
        backoff_ms_(o_.reconnect_initial_ms),
        rng_(std::random_device{}()) {}

  void begin() {
    asio::post(io_.ioc, [self = shared_from_this()] { self->connect(); });
  }

  void stop() override {
    auto self = shared_from_this();
    if (io_.ioc.get_executor().running_in_this_thread() || io_.ioc.stopped()) return stop_now();
    auto done = std::make_shared<std::promise<void>>();
    auto finished = done->get_future();
    asio::post(io_.ioc, [self, done] { self->close_gracefully([done] { done->set_value(); }); });
    finished.wait_for(std::chrono::seconds(10));
  }

  void set_subscribed(bool on) override {
    asio::post(io_.ioc, [self = shared_from_this(), on] {
      if (self->stopped_ || self->subscribed_ == on) return;
      self->subscribed_ = on;
      if (self->o_.subscriptions.empty()) return;
      self->log(on ? "subscribing again" : "unsubscribing: the broker hands this session's share to the others");
      if (self->connected_) self->subscribe_now();
    });
  }

  void publish(mqtt::publish p, sinks::done_fn done) override {
    asio::post(io_.ioc, [self = shared_from_this(), p = std::move(p), done = std::move(done)]() mutable {
      self->publish_now(std::move(p), std::move(done));
    });
  }

 private:
  bool stale(uint64_t gen) const { return stopped_ || gen != generation_; }

  void stop_now() {
    stopped_ = true;
    drop_connection("stopped");
    reconnect_timer_.cancel();
    ping_timer_.cancel();
    read_timer_.cancel();
    resolver_.cancel();
  }

  // Reads nothing more; what is queued for the broker (acknowledgements of
  // committed messages, publications) goes out, then DISCONNECT, so that
  // the broker sends none of those messages again and publishes no will;
  // then the connection closes. At most 2 s; `finished` once stopped.
  void close_gracefully(std::function<void()> finished) {
    auto once = std::make_shared<bool>(false);
    auto finish = [self = shared_from_this(), once, finished = std::move(finished)](auto&&...) {
      if (std::exchange(*once, true)) return;
      self->stop_now();
      finished();
    };
    if (stopped_ || !connected_ || !stream_) return finish();
    reconnect_timer_.expires_after(std::chrono::seconds(2));
    reconnect_timer_.async_wait(finish);
    send(encode(bare{bare_kind::disconnect}), finish);
    closing_ = true;
  }

  void log(const std::string& what) {
    std::string line = "flowstate mqtt " + o_.name + ": " + what;
    if (o_.redact) line = o_.redact(std::move(line));
    std::fprintf(stderr, "%s\n", line.c_str());
  }

  void connect() {
    if (stopped_) return;
    const uint64_t gen = ++generation_;
    resolver_.async_resolve(
        o_.broker.host, o_.broker.port,
        [self = shared_from_this(), gen](error_code ec, tcp::resolver::results_type at) {
          if (self->stale(gen)) return;
          if (ec) return self->lost("cannot resolve " + self->o_.broker.host + ": " + ec.message());
          for (const auto& r : at)  // a hosted node: public addresses only
            if (auto refused = outbound::check(self->o_.broker.host, r.endpoint().address().to_string());
                !refused.empty())
              return self->lost(refused);
          self->open(at, gen);
        });
  }

  void open(const tcp::resolver::results_type& at, uint64_t gen) {
    if (o_.broker.tls)
      stream_ = std::make_shared<tls_stream>(io_.ioc, io_.tls, o_.broker.host);
    else
      stream_ = std::make_shared<plain_stream>(io_.ioc);
    stream_->connect(at, [self = shared_from_this(), gen, keep = stream_](error_code ec) {
      if (self->stale(gen)) return;
      if (ec)
        return self->lost("cannot connect to " + self->o_.broker.host + ":" + self->o_.broker.port + ": " +
                          ec.message());
      mqtt::connect c;
      c.client_id = self->o_.client_id;
      c.clean_session = self->o_.clean_session;
      c.keep_alive_s = self->o_.keep_alive_s;
      c.username = self->o_.username;
      c.password = self->o_.password;
      self->last_received_ = std::chrono::steady_clock::now();
      self->send(encode(c));
      self->read(gen);
      self->ping(gen);
    });
  }

  void read(uint64_t gen) {
    if (stale(gen) || closing_) return;
    if (connected_ && h_.may_read && !h_.may_read()) return wait_to_read(gen);
    if (held_) {
      // Messages read before a pause began: taken first, before reading more.
      held_ = false;
      if (!process(gen)) return;
      if (held_) return wait_to_read(gen);
    }
    stream_->read(asio::buffer(chunk_), [self = shared_from_this(), gen, keep = stream_](error_code ec, std::size_t n) {
      if (self->stale(gen) || self->closing_) return;
      if (ec) return self->lost("connection lost: " + ec.message());
      self->last_received_ = std::chrono::steady_clock::now();
      std::size_t skip = std::min<std::size_t>(n, self->discard_);  // the rest of an oversized message
      self->discard_ -= skip;
      self->inbuf_.append(self->chunk_.data() + skip, n - skip);
      if (!self->process(gen)) return;
      // A full chunk: more is waiting. Otherwise the socket is empty, and
      // packets close behind this one are let gather (session_options).
      if (n == self->chunk_.size() || self->o_.batch_window.count() == 0) return self->read(gen);
      self->read_timer_.expires_after(self->o_.batch_window);
      self->read_timer_.async_wait([self, gen](error_code) { self->read(gen); });
    });
  }

  // Not reading while the node may not take more: the broker's PINGRESP
  // waits unread, which is no sign of a broker gone.
  void wait_to_read(uint64_t gen) {
    last_received_ = std::chrono::steady_clock::now();
    read_timer_.expires_after(std::chrono::milliseconds(50));
    read_timer_.async_wait([self = shared_from_this(), gen](error_code) { self->read(gen); });
  }

  // Handles the complete packets in inbuf_; false when the connection was
  // dropped meanwhile. A PUBLISH that arrives while the node may not take
  // more (a pause that began while a read was outstanding: one read can
  // bring many messages) stays in inbuf_ with what follows it (held_).
  bool process(uint64_t gen) {
    std::size_t used = 0;
    for (;;) {
      auto d = decode(std::string_view(inbuf_).substr(used), o_.max_packet);
      if (!d) {
        lost(d.error());
        return false;
      }
      if (!*d) break;
      if (connected_ && h_.may_read && std::holds_alternative<mqtt::publish>((*d)->value) && !h_.may_read()) {
        held_ = true;
        break;
      }
      used += (*d)->size;
      handle(std::move((*d)->value), gen);
      if (stale(gen)) return false;
      if (used >= inbuf_.size()) break;
    }
    if (used > inbuf_.size()) {
      discard_ = used - inbuf_.size();
      used = inbuf_.size();
    }
    inbuf_.erase(0, used);
    return true;
  }

  void handle(packet&& p, uint64_t gen) {
    if (auto* c = std::get_if<connack>(&p)) {
      if (c->code != 0) {
        backoff_ms_ = std::max<uint64_t>(backoff_ms_, 5000);  // a refusal is not retried eagerly
        return lost(std::string("the broker refused the connection: ") + connack_reason(c->code));
      }
      connected_ = true;
      connected_at_ = std::chrono::steady_clock::now();
      log(std::string("connected to ") + o_.broker.host + ":" + o_.broker.port +
          (c->session_present ? " (session resumed)" : ""));
      if (o_.subscriptions.empty()) return;
      // A fresh session (no messages until SUBSCRIBE): the engine forgets
      // the packet ids of the one before first, since the broker numbers
      // from scratch.
      if (!c->session_present && h_.on_fresh_session) {
        std::weak_ptr<session_impl> weak = shared_from_this();
        h_.on_fresh_session([weak, gen](bool ok) {
          auto self = weak.lock();
          if (!self) return;
          asio::post(self->io_.ioc, [self, gen, ok] {
            if (self->stale(gen)) return;
            if (!ok) return self->lost("the packet ids of the session before could not be forgotten now");
            self->subscribe_now();
          });
        });
        return;
      }
      subscribe_now();
    } else if (auto* pub = std::get_if<mqtt::publish>(&p)) {
      on_publish(std::move(*pub), gen);
    } else if (auto* a = std::get_if<ack>(&p)) {
      on_ack(*a, gen);
    } else if (auto* s = std::get_if<suback>(&p)) {
      for (std::size_t i = 0; i < s->codes.size() && i < o_.subscriptions.size(); ++i)
        if (s->codes[i] == 0x80) log("the broker refused the subscription to " + o_.subscriptions[i].first);
    }
  }

  // SUBSCRIBE, or UNSUBSCRIBE while unsubscribed (a persistent session
  // keeps its filters across connections).
  void subscribe_now() {
    if (!subscribed_) {
      unsubscribe u;
      u.packet_id = next_packet_id();
      for (auto& [filter, _] : o_.subscriptions) u.filters.push_back(filter);
      return send(encode(u));
    }
    subscribe s;
    s.packet_id = next_packet_id();
    s.filters = o_.subscriptions;
    subscribe_id_ = s.packet_id;
    send(encode(s));
  }

  void on_publish(mqtt::publish&& p, uint64_t gen) {
    if (!h_.on_publish) return;
    if (p.qos == 0) return h_.on_publish(std::move(p), [](bool) {});
    auto ready = std::make_shared<bool>(false);
    acks_.push_back({ack{p.qos == 1 ? ack_kind::puback : ack_kind::pubrec, p.packet_id}, ready});
    std::weak_ptr<session_impl> weak = shared_from_this();
    h_.on_publish(std::move(p), [weak, gen, ready](bool ok) {
      auto self = weak.lock();
      if (!self) return;
      asio::post(self->io_.ioc, [self, gen, ready, ok] {
        if (self->stale(gen)) return;  // its connection is gone: the broker sends it again
        // Not accepted: the acknowledgements after it could never leave in
        // order, so the connection is dropped and the broker sends again.
        if (!ok) return self->lost("a message could not be accepted now");
        *ready = true;
        self->flush_acks();
      });
    });
  }

  // Acknowledgements leave in the order their PUBLISH packets came.
  void flush_acks() {
    while (!acks_.empty() && *acks_.front().second) {
      send(encode(acks_.front().first));
      acks_.pop_front();
    }
  }

  void on_ack(const ack& a, uint64_t gen) {
    if (a.kind == ack_kind::pubrel) {
      std::weak_ptr<session_impl> weak = shared_from_this();
      auto released = [weak, gen, id = a.packet_id](bool ok) {
        auto self = weak.lock();
        if (!self) return;
        asio::post(self->io_.ioc, [self, gen, id, ok] {
          if (self->stale(gen)) return;
          if (!ok) return self->lost("a released packet id could not be forgotten now");
          self->send(encode(ack{ack_kind::pubcomp, id}));
        });
      };
      if (h_.on_release)
        h_.on_release(a.packet_id, std::move(released));
      else
        released(true);
      return;
    }
    auto it = inflight_.find(a.packet_id);
    if (it == inflight_.end()) return;
    if (a.kind == ack_kind::pubrec) {
      send(encode(ack{ack_kind::pubrel, a.packet_id}));
      return;
    }
    if (a.kind == ack_kind::puback || a.kind == ack_kind::pubcomp) {
      auto done = std::move(it->second);
      inflight_.erase(it);
      sinks::outcome o;
      o.v = sinks::verdict::delivered;
      if (done) done(std::move(o));
    }
  }

  void publish_now(mqtt::publish p, sinks::done_fn done) {
    sinks::outcome o;
    if (stopped_ || !connected_) {
      o.answer = "not connected to the broker " + o_.broker.host + ":" + o_.broker.port;
      return done(std::move(o));
    }
    if (p.qos == 0) {
      send(encode(p), [done](bool written) {
        sinks::outcome o;
        o.v = written ? sinks::verdict::delivered : sinks::verdict::retry;
        if (!written) o.answer = "the connection to the broker was lost before it was sent";
        done(std::move(o));
      });
      return;
    }
    if (inflight_.size() >= 65000) {
      o.answer = "too many publications waiting for the broker";
      return done(std::move(o));
    }
    p.packet_id = next_packet_id();
    inflight_[p.packet_id] = std::move(done);
    send(encode(p));
  }

  uint16_t next_packet_id() {
    for (;;) {
      uint16_t id = next_id_++;
      if (next_id_ == 0) next_id_ = 1;
      if (id != 0 && !inflight_.count(id)) return id;
    }
  }

  void send(std::string bytes, std::function<void(bool)> written = {}) {
    if (closing_) {  // nothing after DISCONNECT
      if (written) written(false);
      return;
    }
    out_.emplace_back(std::move(bytes), std::move(written));
    if (!writing_) write_next(generation_);
  }

  // What is queued goes out in one write, up to 256 KiB (the PUBACKs of a
  // group commit, a burst of PUBLISHes): one system call rather than one
  // per packet. A single packet is written from where it is queued (a
  // deque keeps its elements in place while more are added).
  void write_next(uint64_t gen) {
    if (out_.empty() || !stream_) return;
    writing_ = true;
    constexpr std::size_t most = 256 << 10;
    std::size_t n = 1, bytes = out_.front().first.size();
    while (n < out_.size() && bytes + out_[n].first.size() <= most) bytes += out_[n++].first.size();
    if (n > 1) {
      batch_.clear();
      batch_.reserve(bytes);
      for (std::size_t i = 0; i < n; ++i) batch_ += out_[i].first;
    }
    const std::string_view bytes_out = n > 1 ? std::string_view(batch_) : std::string_view(out_.front().first);
    stream_->write(bytes_out, [self = shared_from_this(), gen, n, keep = stream_](error_code ec) {
      if (self->stale(gen)) return;
      if (ec) return self->lost("writing: " + ec.message());
      std::vector<std::function<void(bool)>> written;
      for (std::size_t i = 0; i < n; ++i) {
        if (self->out_.front().second) written.push_back(std::move(self->out_.front().second));
        self->out_.pop_front();
      }
      self->writing_ = false;
      for (auto& w : written) w(true);
      if (!self->out_.empty() && !self->writing_) self->write_next(gen);
    });
  }

  // Sends PINGREQ every half keep-alive; a broker silent for 1.5 keep-alives is gone.
  void ping(uint64_t gen) {
    const auto half = std::chrono::milliseconds(std::max<uint32_t>(o_.keep_alive_s, 2) * 500);
    ping_timer_.expires_after(half);
    ping_timer_.async_wait([self = shared_from_this(), gen, half](error_code ec) {
      if (ec || self->stale(gen)) return;
      if (std::chrono::steady_clock::now() - self->last_received_ > half * 3)
        return self->lost("no answer from the broker for " + std::to_string(self->o_.keep_alive_s * 3 / 2) + " s");
      self->send(encode(bare{bare_kind::pingreq}));
      self->ping(gen);
    });
  }

  // Closes the connection: publications waiting for the broker are told
  // to retry; acknowledgements not sent are dropped (the broker sends
  // those messages again).
  void drop_connection(const std::string& why) {
    ++generation_;
    if (connected_ || !inflight_.empty()) log("disconnected: " + why);
    connected_ = false;
    if (stream_) stream_->close();  // its handlers, still queued, hold it
    stream_.reset();
    acks_.clear();
    auto unsent = std::move(out_);
    out_.clear();
    for (auto& [_, written] : unsent)
      if (written) written(false);
    writing_ = false;
    inbuf_.clear();
    discard_ = 0;
    held_ = false;
    auto waiting = std::move(inflight_);
    inflight_.clear();
    for (auto& [_, done] : waiting) {
      sinks::outcome o;
      o.answer = "the connection to the broker was lost before its answer (" + why + ")";
      if (done) done(std::move(o));
    }
  }

  void lost(const std::string& why) {
    // A connection that lasted resets the backoff; one dropped at once
    // (a message it cannot take, a client id used twice) keeps doubling it.
    if (connected_ && std::chrono::steady_clock::now() - connected_at_ > std::chrono::seconds(10))
      backoff_ms_ = o_.reconnect_initial_ms;
    // Logged when it changes: a broker down for an hour is one line.
    if (!connected_ && why != last_failure_) log(why + " (retrying)");
    last_failure_ = connected_ ? std::string() : why;
    drop_connection(why);
    if (stopped_) return;
    const double unit = std::uniform_real_distribution<double>(0.5, 1.0)(rng_);
    reconnect_timer_.expires_after(std::chrono::milliseconds(static_cast<uint64_t>(double(backoff_ms_) * unit)));
    backoff_ms_ = std::min(backoff_ms_ * 2, o_.reconnect_max_ms);
    reconnect_timer_.async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->connect();
    });
  }

  sinks::io_thread::impl& io_;
  session_options o_;
  session_handlers h_;
  tcp::resolver resolver_;
  asio::steady_timer reconnect_timer_, ping_timer_, read_timer_;
  std::shared_ptr<byte_stream> stream_;
  uint64_t generation_ = 0;
  bool connected_ = false, stopped_ = false, writing_ = false;
  std::string inbuf_;
  std::size_t discard_ = 0;  // bytes of an oversized PUBLISH still to skip
  bool closing_ = false;     // DISCONNECT queued: nothing more is read or sent
  bool subscribed_ = true;   // set_subscribed
  bool held_ = false;        // inbuf_ starts with a PUBLISH not taken yet (a pause)
  std::array<char, 16384> chunk_{};
  std::deque<std::pair<std::string, std::function<void(bool)>>> out_;
  std::string batch_;  // several of out_'s packets, while one write sends them
  std::deque<std::pair<ack, std::shared_ptr<bool>>> acks_;
  std::map<uint16_t, sinks::done_fn> inflight_;
  uint16_t next_id_ = 1;
  uint16_t subscribe_id_ = 0;
  uint64_t backoff_ms_;
  std::mt19937_64 rng_;
  std::chrono::steady_clock::time_point last_received_, connected_at_;
  std::string last_failure_;
};

}  // namespace

std::shared_ptr<session> start_session(sinks::io_thread& io, session_options o, session_handlers h) {
  auto s = std::make_shared<session_impl>(io.get(), std::move(o), std::move(h));
  s->begin();
  return s;
}

}  // namespace flowstate::drivers::mqtt
