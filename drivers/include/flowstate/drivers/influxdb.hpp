#pragma once
// influxdb.Write (docs/drivers.md "influxdb.Write"): a sink that writes each
// output as one point in InfluxDB's line protocol, batched by size and
// time. A point's series (measurement and tags) and its time come from the
// output and the message, so a repeated delivery overwrites the same point
// instead of adding one.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/drivers/http_post.hpp"
#include "flowstate/drivers/sink.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers::influxdb {

struct server {
  bool tls = false;
  std::string host, port;
  int version = 1;                         // 1: /write?db=&rp= (tested); 2: /api/v2/write?org=&bucket= (untested)
  std::string database, retention_policy;  // 1.x
  std::string org, bucket;                 // 2.x
  std::optional<std::string> username, password, token;
  uint64_t timeout_ms = 10000;
};

struct write_config {
  server at;
  http_post::template_text measurement;
  std::vector<std::pair<std::string, http_post::template_text>> tags;  // sorted by key (InfluxDB's advice)
  std::vector<std::pair<std::string, std::string>> fields;             // field key -> JSON pointer
  std::string time_pointer;  // "" = the message's time; else ms since the epoch at this pointer
  std::size_t batch_size = 500;
  uint64_t batch_ms = 100;
  sinks::retry_policy retry;
};

result<write_config> parse_write(std::string_view config_json);

// The line-protocol line of one delivery, or why it has none (a permanent
// failure: a missing field, a tag value that is empty).
result<std::string> line_of(const write_config& c, const sinks::delivery& d);

// Escaping rules of the line protocol.
std::string escape_measurement(std::string_view s);   // , and space
std::string escape_key(std::string_view s);           // , = and space (tag keys, tag values, field keys)
std::string escape_string_field(std::string_view s);  // " and backslash, inside quotes

// The sink: deliveries gathered into one request per batch.
std::shared_ptr<sinks::sink> make_write_sink(sinks::io_thread& io, write_config c);

// influxdb.Query: an InfluxQL query with bound parameters ($name) taken
// from the block's input; its answer is the next block's input.
struct query_config {
  server at;
  std::string query;
  std::vector<std::pair<std::string, std::string>> params;  // $name -> JSON pointer into the input
  sinks::retry_policy retry;
};
result<query_config> parse_query(std::string_view config_json);
// InfluxDB 1.x's `params` value for one input: {"name": value, ...}.
result<std::string> params_of(const query_config& c, std::string_view input_json);
// The next block's input from InfluxDB's answer: {"input": <the query's
// input>, "series": [...]} (series as InfluxDB gives them, times in ms), or
// the statement's error.
result<std::string> answer_of(std::string_view input_json, std::string_view influx_json);
std::shared_ptr<sinks::sink> make_query_sink(sinks::io_thread& io, query_config c);

}  // namespace flowstate::drivers::influxdb
