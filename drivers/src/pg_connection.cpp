#include "pg_connection.hpp"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>

#include "flowstate/drivers/outbound.hpp"
#include "flowstate/runtime/json_text.hpp"
#include "sink_io.hpp"

namespace flowstate::drivers::pg {

namespace {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

// A text value as JSON: numbers, booleans and JSON columns as such, the
// rest as strings.
void append_value(std::string& out, const PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) {
    out += "null";
    return;
  }
  const char* v = PQgetvalue(r, row, col);
  switch (PQftype(r, col)) {
    case 20:
    case 21:
    case 23:
    case 700:
    case 701:
    case 1700:  // int8 int2 int4 float4 float8 numeric
      if (std::string_view(v) == "NaN" || std::string_view(v).find("Infinity") != std::string_view::npos)
        append_json_string(out, v);
      else
        out += v;
      return;
    case 16:  // bool
      out += v[0] == 't' ? "true" : "false";
      return;
    case 114:
    case 3802:  // json, jsonb
      out += v;
      return;
    default:
      append_json_string(out, v);
  }
}

std::string rows_of(const PGresult* r) {
  std::string out = "[";
  for (int row = 0; row < PQntuples(r); ++row) {
    out += row ? ",{" : "{";
    for (int col = 0; col < PQnfields(r); ++col) {
      if (col) out += ',';
      append_json_string(out, PQfname(r, col));
      out += ':';
      append_value(out, r, row, col);
    }
    out += '}';
  }
  return out + "]";
}

struct batch {
  std::vector<statement> statements;
  std::function<void(std::vector<answer>)> done;
  std::vector<answer> answers;
  std::size_t finished = 0;
};

class connection_impl final : public connection, public std::enable_shared_from_this<connection_impl> {
 public:
  connection_impl(sinks::io_thread& io, std::string conninfo, uint64_t timeout_ms)
      : io_(io.get()), conninfo_(std::move(conninfo)), timeout_ms_(timeout_ms), socket_(io_.ioc), deadline_(io_.ioc) {}
  ~connection_impl() override { drop(); }

  void run(std::vector<statement> statements, std::function<void(std::vector<answer>)> done) override {
    asio::post(io_.ioc,
               [self = shared_from_this(), b = batch{std::move(statements), std::move(done), {}, 0}]() mutable {
                 if (self->closed_) return self->fail(b, "the driver is stopping");
                 self->queue_.push_back(std::move(b));
                 if (!self->busy_) self->next();
               });
  }

  void close() override {
    auto self = shared_from_this();
    auto job = [self] {
      self->closed_ = true;
      self->drop();
    };
    if (io_.ioc.get_executor().running_in_this_thread() || io_.ioc.stopped()) return job();
    asio::post(io_.ioc, job);
  }

 private:
  void next() {
    if (queue_.empty() || closed_) return;
    busy_ = true;
    ++generation_;
    const uint64_t gen = generation_;
    deadline_.expires_after(std::chrono::milliseconds(timeout_ms_));
    deadline_.async_wait([self = shared_from_this(), gen](error_code ec) {
      if (!ec && gen == self->generation_ && self->busy_) self->lost("no answer within the timeout");
    });
    if (conn_ && PQstatus(conn_) == CONNECTION_OK) return send();
    connect();
  }

  // Why the connected server may not be used (outbound.hpp), or "".
  std::string peer_refused() {
    if (!outbound::public_only()) return {};
    sockaddr_storage peer{};
    socklen_t size = sizeof peer;
    char text[INET6_ADDRSTRLEN] = "";
    if (getpeername(PQsocket(conn_), reinterpret_cast<sockaddr*>(&peer), &size) != 0) return "no peer address";
    if (peer.ss_family == AF_INET)
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&peer)->sin_addr, text, sizeof text);
    else if (peer.ss_family == AF_INET6)
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr, text, sizeof text);
    else
      return "a local socket: a hosted node's drivers reach public addresses only";
    return outbound::check(PQhost(conn_) ? PQhost(conn_) : text, text);
  }

  void connect() {
    drop();
    conn_ = PQconnectStart(conninfo_.c_str());
    if (!conn_ || PQstatus(conn_) == CONNECTION_BAD) return lost(conn_ ? PQerrorMessage(conn_) : "out of memory");
    PQsetnonblocking(conn_, 1);
    poll_connect(PGRES_POLLING_WRITING);
  }

  // Follows PQconnectPoll, waiting on the socket as it asks.
  void poll_connect(PostgresPollingStatusType want) {
    if (!watch_socket()) return lost("no socket");
    const uint64_t gen = generation_;
    auto again = [self = shared_from_this(), gen](error_code ec) {
      if (ec || gen != self->generation_) return;
      switch (PQconnectPoll(self->conn_)) {
        case PGRES_POLLING_READING:
          return self->poll_connect(PGRES_POLLING_READING);
        case PGRES_POLLING_WRITING:
          return self->poll_connect(PGRES_POLLING_WRITING);
        case PGRES_POLLING_OK:
          // A hosted node: the server reached must be at a public address.
          if (auto refused = self->peer_refused(); !refused.empty()) return self->lost(refused);
          if (!PQenterPipelineMode(self->conn_)) return self->lost(PQerrorMessage(self->conn_));
          return self->send();
        default:
          return self->lost(PQerrorMessage(self->conn_));
      }
    };
    socket_.async_wait(want == PGRES_POLLING_READING ? asio::posix::stream_descriptor::wait_read
                                                     : asio::posix::stream_descriptor::wait_write,
                       again);
  }

  // The descriptor Asio waits on: a duplicate of libpq's socket (libpq may
  // change sockets while it connects; it keeps owning its own).
  bool watch_socket() {
    const int fd = PQsocket(conn_);
    if (fd < 0) return false;
    if (fd == watched_fd_ && socket_.is_open()) return true;
    error_code ignored;
    socket_.close(ignored);
    const int copy = ::dup(fd);
    if (copy < 0) return false;
    socket_.assign(copy, ignored);
    watched_fd_ = fd;
    return !ignored;
  }

  void send() {
    auto& b = queue_.front();
    b.answers.assign(b.statements.size(), answer{});
    b.finished = 0;
    for (auto& s : b.statements) {
      std::vector<const char*> values;
      for (auto& p : s.params) values.push_back(p ? p->c_str() : nullptr);
      if (!PQsendQueryParams(conn_, s.sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(), nullptr,
                             nullptr, 0) ||
          !PQpipelineSync(conn_))
        return lost(PQerrorMessage(conn_));
    }
    flush();
  }

  void flush() {
    const int r = PQflush(conn_);
    if (r < 0) return lost(PQerrorMessage(conn_));
    const uint64_t gen = generation_;
    if (r == 1) {
      socket_.async_wait(asio::posix::stream_descriptor::wait_write, [self = shared_from_this(), gen](error_code ec) {
        if (!ec && gen == self->generation_) self->flush();
      });
      return;
    }
    read();
  }

  void read() {
    const uint64_t gen = generation_;
    socket_.async_wait(asio::posix::stream_descriptor::wait_read, [self = shared_from_this(), gen](error_code ec) {
      if (ec || gen != self->generation_) return;
      if (!PQconsumeInput(self->conn_)) return self->lost(PQerrorMessage(self->conn_));
      self->collect();
    });
  }

  // Takes the results that arrived; each statement's ends at its sync point.
  void collect() {
    auto& b = queue_.front();
    while (!PQisBusy(conn_)) {
      PGresult* r = PQgetResult(conn_);
      if (!r) continue;  // the end of one statement's results; its sync point follows
      const auto st = PQresultStatus(r);
      if (st == PGRES_PIPELINE_SYNC) {
        PQclear(r);
        if (++b.finished == b.statements.size()) return finish();
        continue;
      }
      auto& a = b.answers[b.finished];
      if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        a.ok = true;
        if (st == PGRES_TUPLES_OK) a.rows_json = rows_of(r);
      } else {
        a.ok = false;
        const char* message = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        a.error = message ? message : (st == PGRES_PIPELINE_ABORTED ? "aborted" : PQresStatus(st));
        a.sqlstate = state ? state : "";
      }
      PQclear(r);
    }
    read();
  }

  void finish() {
    auto b = std::move(queue_.front());
    queue_.pop_front();
    busy_ = false;
    ++generation_;  // the deadline of this batch is over
    deadline_.cancel();
    b.done(std::move(b.answers));
    next();
  }

  void fail(batch& b, const std::string& why) {
    std::vector<answer> answers(b.statements.size());
    for (auto& a : answers) {
      a.connection_lost = true;
      a.error = why;
    }
    b.done(std::move(answers));
  }

  // The connection is gone (or never came): every batch waiting fails
  // "try again"; the next run connects afresh.
  void lost(const std::string& why) {
    std::string text = why;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    drop();
    busy_ = false;
    ++generation_;
    deadline_.cancel();
    auto waiting = std::move(queue_);
    queue_.clear();
    for (auto& b : waiting) fail(b, "PostgreSQL: " + text);
  }

  void drop() {
    error_code ignored;
    socket_.close(ignored);
    watched_fd_ = -1;
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
  }

  sinks::io_thread::impl& io_;
  std::string conninfo_;
  uint64_t timeout_ms_;
  PGconn* conn_ = nullptr;
  asio::posix::stream_descriptor socket_;
  int watched_fd_ = -1;
  asio::steady_timer deadline_;
  std::deque<batch> queue_;
  bool busy_ = false, closed_ = false;
  uint64_t generation_ = 0;
};

}  // namespace

std::shared_ptr<connection> connect(sinks::io_thread& io, std::string conninfo, uint64_t timeout_ms) {
  return std::make_shared<connection_impl>(io, std::move(conninfo), timeout_ms);
}

}  // namespace flowstate::drivers::pg
