// influxdb.Write's network side: deliveries gathered into one /write per
// batch (size or time, whichever comes first). A batch InfluxDB refuses
// with 400 (one bad point: a field of another type) is written again point
// by point, so only the bad point fails; rewriting a good point is
// harmless (same series and time).
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "batcher.hpp"
#include "flowstate/drivers/influxdb.hpp"
#include "http_client.hpp"
#include "sink_io.hpp"

namespace flowstate::drivers::influxdb {

namespace detail_server {
std::string query_escape(std::string_view value);
}

namespace {

namespace asio = boost::asio;
namespace bhttp = boost::beast::http;

void add_query(std::string& target, std::string_view name, std::string_view value) {
  target += target.find('?') == std::string::npos ? '?' : '&';
  target += name;
  target += '=';
  target += detail_server::query_escape(value);
}

struct pending_point {
  std::string line;
  sinks::done_fn done;
};

class write_sink final : public sinks::sink, public std::enable_shared_from_this<write_sink> {
 public:
  write_sink(sinks::io_thread& io, write_config c) : io_(io), c_(std::move(c)) {}

  uint32_t concurrency() const override { return static_cast<uint32_t>(std::min<std::size_t>(c_.batch_size, 10000)); }
  sinks::retry_policy retry() const override { return c_.retry; }

  void deliver(const sinks::delivery& d, sinks::done_fn done) override {
    auto line = line_of(c_, d);
    if (!line) return done(sinks::permanent(line.error()));
    batch_->add(pending_point{std::move(*line), std::move(done)});
  }

  // The batches send through this sink, which they must not keep alive.
  void start() {
    std::weak_ptr<write_sink> weak = shared_from_this();
    batch_ = std::make_shared<batcher<pending_point>>(
        io_.get().ioc, c_.batch_size, c_.batch_ms, [weak](std::vector<pending_point> points) {
          if (auto self = weak.lock())
            self->send(std::make_shared<std::vector<pending_point>>(std::move(points)), true);
          else
            for (auto& p : points) p.done(sinks::outcome{});
        });
  }

 private:
  bhttp::request<bhttp::string_body> request_for(const std::vector<pending_point>& points) const {
    bhttp::request<bhttp::string_body> req;
    const http_client::endpoint at{c_.at.host, c_.at.port, c_.at.tls};
    std::string target = c_.at.version == 1 ? "/write" : "/api/v2/write";
    if (c_.at.version == 1) {
      add_query(target, "db", c_.at.database);
      if (!c_.at.retention_policy.empty()) add_query(target, "rp", c_.at.retention_policy);
      if (c_.at.username) add_query(target, "u", *c_.at.username);
      if (c_.at.password) add_query(target, "p", *c_.at.password);
      add_query(target, "precision", "ns");
    } else {
      add_query(target, "org", c_.at.org);
      add_query(target, "bucket", c_.at.bucket);
      add_query(target, "precision", "ns");
    }
    req.method(bhttp::verb::post);
    req.target(target);
    req.version(11);
    http_client::set_common_headers(req, at);
    req.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    if (c_.at.version == 2 && c_.at.token) req.set(bhttp::field::authorization, "Token " + *c_.at.token);
    std::string body;
    for (auto& p : points) body += p.line + '\n';
    req.body() = std::move(body);
    req.prepare_payload();
    return req;
  }

  // Sends a batch; `may_split`: a 400 for several points is tried point by point.
  void send(std::shared_ptr<std::vector<pending_point>> batch, bool may_split) {
    const http_client::endpoint at{c_.at.host, c_.at.port, c_.at.tls};
    http_client::send(
        io_, at, request_for(*batch), c_.at.timeout_ms,
        [self = shared_from_this(), batch, may_split](result<http_client::answer> a) {
          if (a && a->status == 400 && may_split && batch->size() > 1) {
            for (auto& p : *batch)
              self->send(std::make_shared<std::vector<pending_point>>(std::vector<pending_point>{std::move(p)}), false);
            return;
          }
          sinks::outcome o;
          if (!a)
            o.answer = a.error();
          else
            o = http_post::classify(a->status, a->retry_after, a->body);
          for (auto& p : *batch) p.done(o);
        });
  }

  sinks::io_thread& io_;
  write_config c_;
  std::shared_ptr<batcher<pending_point>> batch_;
};

}  // namespace

std::shared_ptr<sinks::sink> make_write_sink(sinks::io_thread& io, write_config c) {
  auto s = std::make_shared<write_sink>(io, std::move(c));
  s->start();
  return s;
}

}  // namespace flowstate::drivers::influxdb
