// Custom drivers' processes (custom.hpp, docs/drivers.md "Custom drivers"):
// one driver process per source or sink block, run and spoken to on the
// sinks' I/O thread. Every handler runs on that one thread.
#include <openssl/evp.h>
#include <simdjson.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <istream>

#include "flowstate/drivers/custom.hpp"
#include "flowstate/runtime/json_text.hpp"
#include "flowstate/sandbox/driver_process.hpp"
#include "sink_io.hpp"

namespace flowstate::drivers::custom {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t max_line = 16u << 20;  // one protocol message
constexpr auto connect_timeout = std::chrono::seconds(10);
constexpr uint32_t max_connecting = 32;

std::string base64(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string start_message(const driver_options& o, bool sink) {
  std::string m = "{\"type\":\"start\",\"role\":\"" + std::string(sink ? "sink" : "source") +
                  "\",\"name\":" + json_quote(o.name) + ",\"package\":" + json_quote(o.code.kind.package) +
                  ",\"config\":" + o.config.driver_json + ",\"concurrency\":" + std::to_string(o.config.concurrency);
  if (o.code.kind.lang == language::js) {
    m += ",\"code\":" + json_quote(o.code.js_bundle);
  } else {
    m += ",\"files\":{";
    bool first = true;
    for (auto& [path, text] : o.code.files) {
      m += (first ? "" : ",") + json_quote(path) + ":" + json_quote(text);
      first = false;
    }
    m += "},\"wheels\":[";
    for (std::size_t i = 0; i < o.code.wheels.size(); ++i) m += (i ? ",\"" : "\"") + base64(o.code.wheels[i]) + "\"";
    m += "]";
  }
  return m + "}";
}

class process_driver : public std::enable_shared_from_this<process_driver> {
 public:
  process_driver(sinks::io_thread& io, driver_options o, bool sink, source_handlers h)
      : ioc_(io.get().ioc),
        o_(std::move(o)),
        sink_(sink),
        handlers_(std::move(h)),
        restart_(ioc_),
        pause_(ioc_),
        relisten_(ioc_) {
    for (auto& at : o_.config.listen) listeners_.push_back({at, nullptr, {}});
  }

  void start() {
    asio::post(ioc_, [self = shared_from_this()] {
      self->open_listeners();
      self->spawn();
    });
  }

  void stop() {
    asio::post(ioc_, [self = shared_from_this()] {
      if (self->stopped_) return;
      self->stopped_ = true;
      self->restart_.cancel();
      self->pause_.cancel();
      self->relisten_.cancel();
      for (auto& l : self->listeners_) l.acceptor.reset();  // the ports are free again
      if (!self->control_) return;
      self->write("{\"type\":\"stop\"}");
      // A moment to close its connections, then it ends either way.
      auto grace = std::make_shared<asio::steady_timer>(self->ioc_, std::chrono::seconds(2));
      grace->async_wait([self, grace](auto) { self->died("stopped"); });
    });
  }

  void deliver(const sinks::delivery& d, sinks::done_fn done) {
    asio::post(ioc_, [self = shared_from_this(), d, done = std::move(done)]() mutable {
      if (self->stopped_) return done(retry_outcome("the driver is stopping"));
      if (self->state_ == state::down)
        return done(retry_outcome("the driver process is not running (" + self->last_error_ + ")"));
      const uint64_t ref = self->next_ref_++;
      auto deadline =
          std::make_shared<asio::steady_timer>(self->ioc_, std::chrono::milliseconds(self->o_.config.timeout_ms));
      deadline->async_wait(
          [weak = self->weak_from_this(), ref, gen = self->generation_](const boost::system::error_code& ec) {
            if (auto s = weak.lock(); s && !ec && gen == s->generation_) s->overdue(ref);
          });
      self->pending_[ref] = {std::move(done), d.payload.empty() ? std::string("null") : d.payload, deadline};
      std::string m = "{\"type\":\"deliver\",\"ref\":" + std::to_string(ref) + ",\"id\":" + json_quote(d.id) +
                      ",\"key\":" + json_quote(d.key) + ",\"payload\":" + (d.payload.empty() ? "null" : d.payload) +
                      ",\"timeMs\":" + std::to_string(d.time_ms) + ",\"attempt\":" + std::to_string(d.attempt) + "}";
      if (self->state_ == state::ready)
        self->write(std::move(m));
      else
        self->queued_.push_back(std::move(m));
    });
  }

  const driver_config& config() const { return o_.config; }

 private:
  enum class state { down, starting, ready };

  static sinks::outcome retry_outcome(std::string why) {
    sinks::outcome out;
    out.v = sinks::verdict::retry;
    out.answer = std::move(why);
    return out;
  }

  void log(const std::string& level, std::string text) {
    // At most 50 lines a second from one driver; the rest are counted.
    auto now = std::chrono::steady_clock::now();
    if (now - window_ > std::chrono::seconds(1)) {
      if (dropped_)
        std::fprintf(stderr, "flowstate driver %s: %u log lines dropped (more than 50 a second)\n", o_.name.c_str(),
                     dropped_);
      window_ = now;
      lines_ = 0;
      dropped_ = 0;
    }
    if (++lines_ > 50) {
      ++dropped_;
      return;
    }
    // Redacted before it is cut (a cut could leave part of a secret), and
    // one line: a driver cannot forge the node's log lines.
    if (o_.redact) text = o_.redact(std::move(text));
    if (text.size() > 2000) text = text.substr(0, 2000) + "...";
    for (auto& c : text)
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') c = ' ';
    std::fprintf(stderr, "flowstate driver %s: %s%s\n", o_.name.c_str(), level == "info" ? "" : (level + ": ").c_str(),
                 text.c_str());
  }

  void spawn() {
    if (stopped_ || control_) return;
    sandbox::driver_launch launch;
    launch.language =
        o_.code.kind.lang == language::js ? sandbox::driver_language::js : sandbox::driver_language::python;
    launch.js_binary = o_.js_binary;
    launch.memory_mb = o_.config.memory_mb;
    auto child = sandbox::spawn_driver(launch);
    if (!child) {
      last_error_ = child.error();
      log("error", "cannot start: " + child.error());
      return schedule_restart();
    }
    child_ = *child;
    control_ = std::make_unique<asio::posix::stream_descriptor>(ioc_, child_.control);
    child_.control = -1;  // owned by control_ now
    in_ = std::make_unique<asio::streambuf>(max_line);
    held_line_.clear();  // the previous process's: its driver emits it again (never acknowledged)
    state_ = state::starting;
    ++generation_;
    write(start_message(o_, sink_));
    read();
  }

  void schedule_restart() {
    if (stopped_) return;
    const auto delay = std::chrono::milliseconds(std::min<uint64_t>(30000, 1000ull << std::min(failures_, 5u)));
    ++failures_;
    restart_.expires_after(delay);
    restart_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->spawn();
    });
  }

  // A delivery without an answer within the configured timeout: retried
  // (a late answer is ignored); the third in a row restarts the process.
  void overdue(uint64_t ref) {
    auto it = pending_.find(ref);
    if (it == pending_.end()) return;
    auto done = std::move(it->second.done);
    pending_.erase(it);
    const std::string why = "no answer from the driver within " + std::to_string(o_.config.timeout_ms) + " ms";
    done(retry_outcome(why));
    if (++overdue_in_a_row_ >= 3) {
      overdue_in_a_row_ = 0;
      died(why + ", three deliveries in a row");
    }
  }

  // The process is gone (or must go): everything in flight is retried.
  void died(const std::string& why) {
    if (!control_) return;
    if (!stopped_) log("error", "the driver process ended: " + why + "; restarting");
    last_error_ = why;
    control_->close();
    control_.reset();
    sandbox::kill_driver(child_);
    // New connections wait in the listeners' backlogs for the next process.
    for (auto& l : listeners_)
      if (l.acceptor) l.acceptor->cancel();
    state_ = state::down;
    ++generation_;
    connecting_ = 0;
    out_.clear();
    writing_ = false;
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& [_, p] : pending) {
      if (p.deadline) p.deadline->cancel();
      p.done(retry_outcome("the driver process ended: " + why));
    }
    queued_.clear();  // their done functions are in pending_ already
    schedule_restart();
  }

  void write(std::string line) {
    if (!control_) return;
    out_.push_back(std::move(line) + "\n");
    if (!writing_) write_next();
  }

  void write_next() {
    if (out_.empty() || !control_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    asio::async_write(*control_, asio::buffer(out_.front()),
                      [self = shared_from_this(), gen = generation_](const boost::system::error_code& ec, std::size_t) {
                        if (gen != self->generation_) return;
                        if (ec) return self->died("writing to it: " + ec.message());
                        self->out_.pop_front();
                        self->write_next();
                      });
  }

  // Backed up (or paused): whether the source may not take a message now.
  bool held_back() const { return !sink_ && handlers_.may_read && !handlers_.may_read(); }

  void read() {
    if (!control_) return;
    if (held_back()) {
      // The source's next message waits (its driver's own buffers fill and
      // it stops reading from its device or broker).
      pause_.expires_after(std::chrono::milliseconds(50));
      pause_.async_wait([self = shared_from_this(), gen = generation_](const boost::system::error_code& ec) {
        if (!ec && gen == self->generation_) self->read();
      });
      return;
    }
    if (!held_line_.empty()) {
      // A line read before the pause began: handled first.
      auto line = std::move(held_line_);
      held_line_.clear();
      const auto gen = generation_;
      handle(line);
      if (gen == generation_) read();
      return;
    }
    asio::async_read_until(
        *control_, *in_, '\n',
        [self = shared_from_this(), gen = generation_](const boost::system::error_code& ec, std::size_t n) {
          if (gen != self->generation_) return;
          if (ec) {
            return self->died(ec == asio::error::eof ? std::string("it exited") : "reading from it: " + ec.message());
          }
          std::string line(n - 1, '\0');
          self->in_->sgetn(line.data(), static_cast<std::streamsize>(n - 1));
          self->in_->consume(1);
          // The read was posted before a pause began: the line waits for
          // the pause's end rather than an emit slipping past it.
          if (self->held_back()) {
            self->held_line_ = std::move(line);
            return self->read();
          }
          self->handle(line);
          if (gen == self->generation_) self->read();
        });
  }

  void handle(const std::string& line) {
    simdjson::dom::element m;
    std::string_view type;
    if (parser_.parse(line).get(m) || m["type"].get_string().get(type)) {
      log("error", "not a protocol message: " + line.substr(0, 200));
      return died("it broke the protocol");
    }
    uint64_t ref = 0;
    if (m["ref"].get_uint64().get(ref)) ref = 0;
    auto text = [&](const char* field) {
      std::string_view v;
      return m[field].get_string().get(v) ? std::string() : std::string(v);
    };
    if (type == "ready") {
      state_ = state::ready;
      failures_ = 0;
      for (auto& q : queued_) write(std::move(q));
      queued_.clear();
      for (std::size_t i = 0; i < listeners_.size(); ++i) accept_on(i);
    } else if (type == "fatal") {
      log("error", text("error"));
      died("it failed");
    } else if (type == "log") {
      log(text("level"), text("message"));
    } else if (type == "emit" && !sink_ && handlers_.on_emit) {
      auto refuse = [&](const std::string& why) {
        write("{\"type\":\"ack\",\"ref\":" + std::to_string(ref) + ",\"ok\":false,\"error\":" + json_quote(why) + "}");
      };
      if (stopped_) return refuse("the source is stopping");
      emitted e;
      for (const char* field : {"key", "id"}) {
        auto v = m[field];
        if (v.error() || v.is_null()) continue;
        std::string_view sv;
        if (v.get_string().get(sv)) return refuse(std::string(field) + ": expected a string");
        (std::string_view(field) == "key" ? e.key : e.id) = std::string(sv);
      }
      simdjson::dom::element payload;
      e.payload_json = m["payload"].get(payload) ? "null" : simdjson::minify(payload);
      handlers_.on_emit(std::move(e), [weak = weak_from_this(), gen = generation_, ref](bool ok, std::string why) {
        auto self = weak.lock();
        if (!self) return;
        asio::post(self->ioc_, [self, gen, ref, ok, why = std::move(why)] {
          if (gen != self->generation_) return;  // that process is gone; its successor emits again
          self->write("{\"type\":\"ack\",\"ref\":" + std::to_string(ref) + ",\"ok\":" + (ok ? "true" : "false") +
                      (ok ? std::string() : ",\"error\":" + json_quote(why)) + "}");
        });
      });
    } else if (type == "connect") {
      int64_t port = 0;
      if (m["port"].get_int64().get(port)) port = 0;
      connect(ref, text("host"), port);
    } else if (type == "delivered" || type == "failed") {
      overdue_in_a_row_ = 0;
      auto it = pending_.find(ref);
      if (it == pending_.end()) return;  // past its deadline: retried already
      if (it->second.deadline) it->second.deadline->cancel();
      auto done = std::move(it->second.done);
      const std::string input = std::move(it->second.input);
      pending_.erase(it);
      sinks::outcome out;
      if (type == "delivered") {
        out.v = sinks::verdict::delivered;
        // Between two functions (a query), the next one gets this.
        simdjson::dom::element result;
        out.result_json = "{\"input\":" + input +
                          ",\"result\":" + (m["result"].get(result) ? "null" : simdjson::minify(result)) + "}";
      } else {
        bool permanent = false;
        if (m["permanent"].get_bool().get(permanent)) permanent = false;
        out.v = permanent ? sinks::verdict::permanent : sinks::verdict::retry;
        out.answer = text("error");
        if (o_.redact) out.answer = o_.redact(std::move(out.answer));
        int64_t after = -1;
        if (!m["retryAfterMs"].get_int64().get(after)) out.retry_after_ms = after;
      }
      done(std::move(out));
    }
  }

  static std::string shown(const endpoint& e) {
    const bool v6 = e.host.find(':') != std::string::npos;
    return (v6 ? "[" + e.host + "]" : e.host) + ":" + std::to_string(e.port);
  }

  // Binds what `listen:` names and is not bound yet; a port in use (say,
  // by the process of the revision before, stopping) is tried again every
  // 2 s, logged once per change.
  void open_listeners() {
    if (stopped_) return;
    bool missing = false;
    for (std::size_t i = 0; i < listeners_.size(); ++i) {
      auto& l = listeners_[i];
      if (l.acceptor) continue;
      boost::system::error_code ec;
      const auto address = asio::ip::make_address(l.at.host, ec);
      const tcp::endpoint at(address, l.at.port);
      auto acceptor = std::make_unique<tcp::acceptor>(ioc_);
      if (!ec) acceptor->open(at.protocol(), ec);
      if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
      if (!ec) acceptor->bind(at, ec);
      if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
      if (ec) {
        if (ec.message() != l.last_error)
          log("error", "cannot listen on " + shown(l.at) + ": " + ec.message() + " (trying again every 2 s)");
        l.last_error = ec.message();
        missing = true;
        continue;
      }
      log("info", "listening on " + shown(l.at));
      l.last_error.clear();
      l.acceptor = std::move(acceptor);
      if (state_ == state::ready) accept_on(i);
    }
    if (!missing) return;
    relisten_.expires_after(std::chrono::seconds(2));
    relisten_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->open_listeners();
    });
  }

  // Takes the next connection on listener i and hands it to the process
  // (fd 4, tagged "accept-REF"), then says `accepted`. Only while a
  // process is ready: otherwise connections wait in the backlog.
  void accept_on(std::size_t i) {
    auto& l = listeners_[i];
    if (!l.acceptor || stopped_ || state_ != state::ready) return;
    l.acceptor->async_accept(
        [self = shared_from_this(), i, gen = generation_](const boost::system::error_code& ec, tcp::socket socket) {
          if (gen != self->generation_ || self->stopped_) return;
          if (ec) {
            if (ec == asio::error::operation_aborted) return;
            // Out of file descriptors, a connection reset while queued: a
            // moment, then on.
            self->log("warn", "accepting on " + shown(self->listeners_[i].at) + ": " + ec.message());
            auto later = std::make_shared<asio::steady_timer>(self->ioc_, std::chrono::milliseconds(100));
            later->async_wait([self, i, gen, later](const boost::system::error_code& e) {
              if (!e && gen == self->generation_) self->accept_on(i);
            });
            return;
          }
          boost::system::error_code ignored;
          const auto peer = socket.remote_endpoint(ignored);
          const int fd = socket.release(ignored);
          const uint64_t ref = self->next_accepted_++;
          auto handed = sandbox::hand_over(self->child_, fd, "accept-" + std::to_string(ref));
          ::close(fd);
          if (!handed) return self->died(handed.error());
          self->write("{\"type\":\"accepted\",\"ref\":" + std::to_string(ref) +
                      ",\"listener\":" + json_quote(shown(self->listeners_[i].at)) +
                      ",\"peer\":" + json_quote(shown({peer.address().to_string(), peer.port()})) + "}");
          self->accept_on(i);
        });
  }

  // `denied`: refused by the node's rules (not a network failure): the
  // driver's error says so (EACCES in Node.js, PermissionError in Python).
  void refuse_connect(uint64_t ref, const std::string& why, bool denied = false) {
    if (denied) log("warn", "connect refused: " + why);
    write("{\"type\":\"connect_failed\",\"ref\":" + std::to_string(ref) + ",\"error\":" + json_quote(why) +
          (denied ? ",\"denied\":true}" : "}"));
  }

  void connect(uint64_t ref, const std::string& host, int64_t port) {
    if (port <= 0 || port > 65535)
      return refuse_connect(ref, "port " + std::to_string(port) + " is out of range", true);
    if (auto why = check_named(o_.config, host, static_cast<uint16_t>(port)); !why.empty())
      return refuse_connect(ref, why, true);
    // Connections being made for the driver at once are capped (each holds a
    // socket and a timer of the node's); the driver's own sockets are bounded
    // by its sandbox's file limit.
    if (connecting_ >= max_connecting)
      return refuse_connect(ref, std::to_string(max_connecting) + " connections are being made already: try again");
    ++connecting_;
    auto resolver = std::make_shared<tcp::resolver>(ioc_);
    resolver->async_resolve(
        host, std::to_string(port),
        [self = shared_from_this(), gen = generation_, ref, host, port, resolver](const boost::system::error_code& ec,
                                                                                  tcp::resolver::results_type results) {
          if (gen != self->generation_) return;
          --self->connecting_;
          if (ec) return self->refuse_connect(ref, host + ": " + ec.message());
          std::vector<tcp::endpoint> allowed;
          std::string why;
          for (auto& r : results) {
            auto refusal = check_address(host, r.endpoint().address().to_string());
            if (refusal.empty())
              allowed.push_back(r.endpoint());
            else
              why = refusal;
          }
          if (allowed.empty())
            return self->refuse_connect(ref, why.empty() ? host + ": no address" : why, !why.empty());
          ++self->connecting_;
          auto socket = std::make_shared<tcp::socket>(self->ioc_);
          auto timer = std::make_shared<asio::steady_timer>(self->ioc_, connect_timeout);
          auto timed_out = std::make_shared<bool>(false);
          timer->async_wait([socket, timed_out](const boost::system::error_code& e) {
            if (e) return;
            *timed_out = true;
            socket->close();
          });
          asio::async_connect(
              *socket, allowed,
              [self, gen, ref, host, port, socket, timer, timed_out](const boost::system::error_code& e,
                                                                     const tcp::endpoint&) {
                timer->cancel();
                if (gen != self->generation_) return;
                --self->connecting_;
                if (*timed_out)
                  return self->refuse_connect(
                      ref,
                      host + ":" + std::to_string(port) + ": no connection within " +
                          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(connect_timeout).count()) +
                          " s");
                if (e || !socket->is_open())
                  return self->refuse_connect(ref, host + ": " + (e ? e.message() : std::string("closed")));
                // Out of Asio's reactor first, then closed here: the driver
                // holds its own copy.
                boost::system::error_code ignored;
                const int fd = socket->release(ignored);
                auto handed = sandbox::hand_over(self->child_, fd, std::to_string(ref));
                ::close(fd);
                if (!handed) return self->died(handed.error());
                self->write("{\"type\":\"connected\",\"ref\":" + std::to_string(ref) + "}");
              });
        });
  }

  asio::io_context& ioc_;
  driver_options o_;
  const bool sink_;
  source_handlers handlers_;
  sandbox::driver_child child_;
  std::unique_ptr<asio::posix::stream_descriptor> control_;
  std::unique_ptr<asio::streambuf> in_;
  std::string held_line_;  // a line read just as a pause began, handled once it ends
  std::deque<std::string> out_;
  bool writing_ = false;
  state state_ = state::down;
  bool stopped_ = false;
  uint64_t generation_ = 0;
  uint32_t failures_ = 0;
  uint32_t connecting_ = 0;  // connects for this process in progress (reset with it)
  std::string last_error_ = "starting";
  asio::steady_timer restart_, pause_, relisten_;
  struct listener {
    endpoint at;
    std::unique_ptr<tcp::acceptor> acceptor;  // null until bound
    std::string last_error;                   // of the last failed bind, logged once
  };
  std::vector<listener> listeners_;
  uint64_t next_accepted_ = 1;
  struct in_flight {
    sinks::done_fn done;
    std::string input;  // the delivery's payload: a query's answer carries it
    std::shared_ptr<asio::steady_timer> deadline;
  };
  uint32_t overdue_in_a_row_ = 0;  // deliveries that passed their deadline since the last answer
  std::map<uint64_t, in_flight> pending_;
  std::vector<std::string> queued_;
  uint64_t next_ref_ = 1;
  simdjson::dom::parser parser_;
  std::chrono::steady_clock::time_point window_{};
  uint32_t lines_ = 0, dropped_ = 0;
};

class custom_sink final : public sinks::sink {
 public:
  explicit custom_sink(std::shared_ptr<process_driver> d) : d_(std::move(d)) {}
  ~custom_sink() override { d_->stop(); }
  void deliver(const sinks::delivery& d, sinks::done_fn done) override { d_->deliver(d, std::move(done)); }
  uint32_t concurrency() const override { return d_->config().concurrency; }
  sinks::retry_policy retry() const override { return d_->config().retry; }

 private:
  std::shared_ptr<process_driver> d_;
};

class custom_source final : public source {
 public:
  explicit custom_source(std::shared_ptr<process_driver> d) : d_(std::move(d)) {}
  ~custom_source() override { d_->stop(); }
  void stop() override { d_->stop(); }

 private:
  std::shared_ptr<process_driver> d_;
};

}  // namespace

std::shared_ptr<source> start_source(sinks::io_thread& io, driver_options options, source_handlers handlers) {
  auto d = std::make_shared<process_driver>(io, std::move(options), false, std::move(handlers));
  d->start();
  return std::make_shared<custom_source>(std::move(d));
}

std::shared_ptr<sinks::sink> make_sink(sinks::io_thread& io, driver_options options) {
  auto d = std::make_shared<process_driver>(io, std::move(options), true, source_handlers{});
  d->start();
  return std::make_shared<custom_sink>(std::move(d));
}

}  // namespace flowstate::drivers::custom
