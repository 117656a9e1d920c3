// influxdb.Query: one /query per input, its answer handed back as the
// delivery's result (the engine commits it as the next block's input).
#include <simdjson.h>

#include "config_values.hpp"
#include "flowstate/drivers/http_types.hpp"
#include "flowstate/drivers/influxdb.hpp"
#include "http_client.hpp"

namespace flowstate::drivers::influxdb {

namespace detail_server {
status parse_server(std::string_view name, simdjson::dom::element v, server& at, bool& known);
status check_server(const server& at);
std::string query_escape(std::string_view value);
}  // namespace detail_server

result<query_config> parse_query(std::string_view config_json) {
  simdjson::dom::parser parser;
  auto parsed_doc = detail::config_object(parser, config_json);
  if (!parsed_doc) return fail(parsed_doc.error());
  simdjson::dom::object doc = *parsed_doc;
  query_config c;
  for (auto field : doc) {
    const std::string_view name = field.key;
    if (name == "kind") continue;
    bool known = false;
    if (auto st = detail_server::parse_server(name, field.value, c.at, known); !st) return fail(st.error());
    if (known) continue;
    if (name == "query") {
      std::string_view q;
      if (field.value.get_string().get(q) || q.empty())
        return fail("query: expected an InfluxQL query like SELECT ... WHERE device = $device, got " +
                    detail::shown(field.value));
      c.query = std::string(q);
    } else if (name == "params") {
      auto params = detail::pointer_map(field.value, "params", "{device: /device}");
      if (!params) return fail(params.error());
      c.params = std::move(*params);
    } else if (name == "retry") {
      if (auto st = detail::parse_retry(field.value, c.retry); !st) return fail(st.error());
    } else {
      return fail("unknown field \"" + std::string(name) +
                  "\" (influxdb.Query takes url, database, username, password, query, params, timeout and retry)");
    }
  }
  if (auto st = detail_server::check_server(c.at); !st) return fail(st.error());
  if (c.at.version != 1) return fail("version: influxdb.Query speaks InfluxQL to InfluxDB 1.x (version 1)");
  if (c.query.empty()) return fail("query: missing (the InfluxQL query, like SELECT mean(t) FROM readings)");
  for (auto& [name, _] : c.params)
    if (c.query.find("$" + name) == std::string::npos) return fail("params." + name + ": the query has no $" + name);
  return c;
}

result<std::string> params_of(const query_config& c, std::string_view input_json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(input_json.data(), input_json.size()).get(doc)) return fail("the input is not JSON");
  std::string out = "{";
  for (auto& [name, pointer] : c.params) {
    simdjson::dom::element v;
    if (doc.at_pointer(pointer).get(v)) return fail("params." + name + ": the input has nothing at " + pointer);
    if (out.size() > 1) out += ',';
    http::append_json_string(out, name);
    out += ':';
    out += simdjson::minify(v);
  }
  return out + "}";
}

result<std::string> answer_of(std::string_view input_json, std::string_view influx_json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc, first;
  if (parser.parse(influx_json.data(), influx_json.size()).get(doc) || doc["results"].at(0).get(first))
    return fail("InfluxDB's answer is not what a query returns: " + std::string(influx_json.substr(0, 200)));
  std::string_view error;
  if (!first["error"].get_string().get(error)) return fail("InfluxDB: " + std::string(error));
  std::string out = "{\"input\":" + std::string(input_json) + ",\"series\":";
  simdjson::dom::element series;
  out += first["series"].get(series) ? std::string("[]") : std::string(simdjson::minify(series));
  return out + "}";
}

namespace {

class query_sink final : public sinks::sink {
 public:
  query_sink(sinks::io_thread& io, query_config c) : io_(io), c_(std::move(c)) {}
  uint32_t concurrency() const override { return 16; }
  sinks::retry_policy retry() const override { return c_.retry; }

  void deliver(const sinks::delivery& d, sinks::done_fn done) override {
    auto params = params_of(c_, d.payload);
    if (!params) {
      sinks::outcome o;
      o.v = sinks::verdict::permanent;
      o.answer = params.error();
      return done(std::move(o));
    }
    namespace bhttp = boost::beast::http;
    const http_client::endpoint at{c_.at.host, c_.at.port, c_.at.tls};
    std::string body = "db=" + detail_server::query_escape(c_.at.database) +
                       "&q=" + detail_server::query_escape(c_.query) +
                       "&params=" + detail_server::query_escape(*params) + "&epoch=ms";
    if (c_.at.username) body += "&u=" + detail_server::query_escape(*c_.at.username);
    if (c_.at.password) body += "&p=" + detail_server::query_escape(*c_.at.password);
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/query", 11};
    http_client::set_common_headers(req, at);
    req.set(bhttp::field::content_type, "application/x-www-form-urlencoded");
    req.body() = std::move(body);
    req.prepare_payload();
    http_client::send(io_, at, std::move(req), c_.at.timeout_ms,
                      [input = d.payload, done = std::move(done)](result<http_client::answer> a) {
                        sinks::outcome o;
                        if (!a) {
                          o.answer = a.error();
                          return done(std::move(o));
                        }
                        o = http_post::classify(a->status, a->retry_after, a->body);
                        if (o.v != sinks::verdict::delivered) return done(std::move(o));
                        auto answer = answer_of(input, a->body);
                        if (!answer) {
                          // InfluxQL's own error is for good; an answer cut
                          // short (a timeout, the size cap) is tried again.
                          o.v = answer.error().rfind("InfluxDB: ", 0) == 0 ? sinks::verdict::permanent
                                                                           : sinks::verdict::retry;
                          o.answer = answer.error();
                        } else {
                          o.result_json = std::move(*answer);
                        }
                        done(std::move(o));
                      });
  }

 private:
  sinks::io_thread& io_;
  query_config c_;
};

}  // namespace

std::shared_ptr<sinks::sink> make_query_sink(sinks::io_thread& io, query_config c) {
  return std::make_shared<query_sink>(io, std::move(c));
}

}  // namespace flowstate::drivers::influxdb
