#pragma once
// postgres.Insert, postgres.Upsert (sinks) and postgres.Query (a query
// block) (docs/drivers.md "PostgreSQL"), on libpq's non-blocking API in
// pipeline mode: the statements of a batch travel together, each fails
// alone. Parameters are always bound, never pasted into SQL.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/drivers/sink.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers::postgres {

// Where a column's value comes from: a JSON pointer into the output, or
// $key, $id (the delivery's stable id), $time (the message's time, ISO 8601).
struct column {
  std::string name;
  std::string source;
};

struct write_config {
  bool upsert = false;
  std::string connection;  // libpq conninfo or postgresql:// URI
  std::string table;       // [schema.]name
  std::vector<column> columns;
  std::vector<std::string> conflict;  // Insert: onConflict (DO NOTHING); Upsert: key (DO UPDATE)
  std::size_t batch_size = 100;
  uint64_t batch_ms = 20;
  uint64_t timeout_ms = 10000;
  sinks::retry_policy retry;
};
result<write_config> parse_write(std::string_view config_json, bool upsert);
// The statement's SQL: INSERT ... ON CONFLICT ...
std::string sql_of(const write_config& c);
// Its parameters for one delivery (text; nullopt = NULL); an error names
// what is missing.
result<std::vector<std::optional<std::string>>> params_of(const write_config& c, const sinks::delivery& d);
std::shared_ptr<sinks::sink> make_write_sink(sinks::io_thread& io, write_config c);

struct query_config {
  std::string connection;
  std::string query;                // $1, $2, ... bound from `params`
  std::vector<std::string> params;  // JSON pointers into the input
  uint64_t timeout_ms = 10000;
  sinks::retry_policy retry;
};
result<query_config> parse_query(std::string_view config_json);
std::shared_ptr<sinks::sink> make_query_sink(sinks::io_thread& io, query_config c);

// What an error means for a delivery, by SQLSTATE class: connection,
// resources, serialization and operator classes are retried; data,
// integrity and syntax errors are permanent.
bool retryable(std::string_view sqlstate);

}  // namespace flowstate::drivers::postgres
