// http.Post's network side: each try is one request (http_client.hpp).
#include "flowstate/drivers/http_post.hpp"
#include "flowstate/drivers/outbound.hpp"
#include "http_client.hpp"

namespace flowstate::drivers::http_post {

namespace {

namespace bhttp = boost::beast::http;

class post_sink final : public sinks::sink {
 public:
  post_sink(sinks::io_thread& io, config c) : io_(io), c_(std::move(c)) {}

  uint32_t concurrency() const override { return c_.concurrency; }
  sinks::retry_policy retry() const override { return c_.retry; }

  void deliver(const sinks::delivery& d, sinks::done_fn done) override {
    auto refuse = [&](std::string why) { done(sinks::permanent(std::move(why))); };
    bhttp::request<bhttp::string_body> req;
    auto target = render(c_.target, d, true);
    if (!target) return refuse("url: " + target.error());
    const http_client::endpoint at{c_.host, c_.port, c_.tls};
    req.method_string(c_.method);
    req.target(*target);
    req.version(11);
    http_client::set_common_headers(req, at);
    req.set(bhttp::field::content_type, "application/json");
    for (auto& [name, t] : c_.headers) {
      auto value = render(t, d, false);
      if (!value) return refuse("headers." + name + ": " + value.error());
      req.set(name, *value);
    }
    req.set("Idempotency-Key", d.id);
    auto body = http_post::body_of(c_, d);
    if (!body) return refuse(body.error());
    req.body() = std::move(*body);
    req.prepare_payload();
    http_client::send(io_, at, std::move(req), c_.timeout_ms, [done = std::move(done)](result<http_client::answer> a) {
      if (!a && outbound::is_refusal(a.error())) return done(sinks::permanent(a.error()));
      if (!a) {
        sinks::outcome o;
        o.answer = a.error();
        return done(std::move(o));
      }
      done(classify(a->status, a->retry_after, a->body));
    });
  }

 private:
  sinks::io_thread& io_;
  config c_;
};

}  // namespace

std::shared_ptr<sinks::sink> make_sink(sinks::io_thread& io, config c) {
  return std::make_shared<post_sink>(io, std::move(c));
}

}  // namespace flowstate::drivers::http_post
