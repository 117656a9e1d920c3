#include "flowstate/drivers/postgres.hpp"

#include <simdjson.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cctype>

#include "batcher.hpp"
#include "config_values.hpp"
#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/iso_time.hpp"
#include "pg_connection.hpp"
#include "sink_io.hpp"

namespace flowstate::drivers::postgres {

namespace {

bool identifier(std::string_view s) {
  if (s.empty() || s.size() > 63 || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

std::string sql_name(std::string_view name) {
  std::string out;
  for (std::size_t start = 0;;) {
    auto dot = name.find('.', start);
    out += '"' + std::string(name.substr(start, dot - start)) + '"';
    if (dot == std::string_view::npos) return out;
    out += '.';
    start = dot + 1;
  }
}

result<std::string> string_of(simdjson::dom::element v, const std::string& what) {
  std::string_view s;
  if (v.get_string().get(s) || s.empty()) return fail(what + ": expected a non-empty string, got " + detail::shown(v));
  return std::string(s);
}

result<std::vector<std::string>> names_of(simdjson::dom::element v, const std::string& what) {
  std::vector<std::string> out;
  simdjson::dom::array a;
  if (v.get_array().get(a)) return fail(what + ": expected a list of column names, got " + detail::shown(v));
  for (auto item : a) {
    std::string_view s;
    if (item.get_string().get(s) || !identifier(s))
      return fail(what + ": expected column names (letters, digits, _), got " + detail::shown(item));
    out.emplace_back(s);
  }
  return out;
}

// The value of a JSON element as a parameter: strings as they are, other
// values as JSON text (numbers, booleans, json/jsonb columns); null: NULL.
std::optional<std::string> param_of(simdjson::dom::element v) {
  if (v.is_null()) return std::nullopt;
  std::string_view s;
  if (!v.get_string().get(s)) return std::string(s);
  return std::string(simdjson::minify(v));
}

sinks::outcome outcome_of(const pg::answer& a) {
  sinks::outcome o;
  if (a.ok) {
    o.v = sinks::verdict::delivered;
    return o;
  }
  o.answer = a.connection_lost ? a.error : "PostgreSQL " + a.sqlstate + ": " + a.error;
  o.v = a.connection_lost || retryable(a.sqlstate) ? sinks::verdict::retry : sinks::verdict::permanent;
  return o;
}

struct pending_row {
  pg::statement s;
  sinks::done_fn done;
};

class write_sink final : public sinks::sink, public std::enable_shared_from_this<write_sink> {
 public:
  write_sink(sinks::io_thread& io, write_config c)
      : io_(io), c_(std::move(c)), sql_(sql_of(c_)), conn_(pg::connect(io, c_.connection, c_.timeout_ms)) {}
  ~write_sink() override { conn_->close(); }

  uint32_t concurrency() const override { return static_cast<uint32_t>(c_.batch_size); }
  sinks::retry_policy retry() const override { return c_.retry; }

  void deliver(const sinks::delivery& d, sinks::done_fn done) override {
    auto params = params_of(c_, d);
    if (!params) return done(sinks::permanent(params.error()));
    batch_->add(pending_row{pg::statement{sql_, std::move(*params)}, std::move(done)});
  }

  // The batches run through this sink's connection; they must not keep it.
  void start() {
    std::weak_ptr<write_sink> weak = shared_from_this();
    batch_ = std::make_shared<batcher<pending_row>>(io_.get().ioc, c_.batch_size, c_.batch_ms,
                                                    [weak](std::vector<pending_row> rows) {
                                                      if (auto self = weak.lock())
                                                        self->run(std::move(rows));
                                                      else
                                                        for (auto& r : rows) r.done(sinks::outcome{});
                                                    });
  }

 private:
  void run(std::vector<pending_row> batch) {
    auto rows = std::make_shared<std::vector<pending_row>>(std::move(batch));
    std::vector<pg::statement> statements;
    for (auto& r : *rows) statements.push_back(r.s);
    conn_->run(std::move(statements), [rows](std::vector<pg::answer> answers) {
      for (std::size_t i = 0; i < rows->size(); ++i) (*rows)[i].done(outcome_of(answers[i]));
    });
  }

  sinks::io_thread& io_;
  write_config c_;
  std::string sql_;
  std::shared_ptr<pg::connection> conn_;
  std::shared_ptr<batcher<pending_row>> batch_;
};

class query_sink final : public sinks::sink {
 public:
  query_sink(sinks::io_thread& io, query_config c)
      : c_(std::move(c)), conn_(pg::connect(io, c_.connection, c_.timeout_ms)) {}
  ~query_sink() override { conn_->close(); }
  uint32_t concurrency() const override { return 16; }
  sinks::retry_policy retry() const override { return c_.retry; }

  void deliver(const sinks::delivery& d, sinks::done_fn done) override {
    pg::statement s;
    s.sql = c_.query;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(d.payload.data(), d.payload.size()).get(doc))
      return done(sinks::permanent("the input is not JSON"));
    for (std::size_t i = 0; i < c_.params.size(); ++i) {
      simdjson::dom::element v;
      if (doc.at_pointer(c_.params[i]).get(v))
        return done(sinks::permanent("params[" + std::to_string(i) + "]: the input has nothing at " + c_.params[i]));
      s.params.push_back(param_of(v));
    }
    conn_->run({std::move(s)}, [input = d.payload, done = std::move(done)](std::vector<pg::answer> answers) {
      auto o = outcome_of(answers[0]);
      if (o.v == sinks::verdict::delivered)
        o.result_json = "{\"input\":" + input + ",\"rows\":" + answers[0].rows_json + "}";
      done(std::move(o));
    });
  }

 private:
  query_config c_;
  std::shared_ptr<pg::connection> conn_;
};

}  // namespace

bool retryable(std::string_view sqlstate) {
  auto cls = sqlstate.substr(0, 2);
  return cls == "08" || cls == "40" || cls == "53" || cls == "57" || cls == "58" || sqlstate == "55P03";
}

result<write_config> parse_write(std::string_view config_json, bool upsert) {
  simdjson::dom::parser parser;
  auto parsed_doc = detail::config_object(parser, config_json);
  if (!parsed_doc) return fail(parsed_doc.error());
  simdjson::dom::object doc = *parsed_doc;
  write_config c;
  c.upsert = upsert;
  const std::string conflict_field = upsert ? "key" : "onConflict";
  for (auto field : doc) {
    const std::string_view name = field.key;
    if (name == "kind") continue;
    if (name == "connection") {
      auto s = string_of(field.value, "connection");
      if (!s) return fail(s.error());
      c.connection = *s;
    } else if (name == "table") {
      auto s = string_of(field.value, "table");
      if (!s) return fail(s.error());
      auto dot = s->find('.');
      if (!identifier(s->substr(0, dot)) || (dot != std::string::npos && !identifier(s->substr(dot + 1))))
        return fail("table: expected a table name like readings or iot.readings (letters, digits, _), got \"" + *s +
                    "\"");
      c.table = *s;
    } else if (name == "columns") {
      simdjson::dom::object cols;
      if (field.value.get_object().get(cols))
        return fail("columns: expected a mapping of column names to /pointers, $key, $id or $time, got " +
                    detail::shown(field.value));
      for (auto col : cols) {
        std::string_view source;
        if (!identifier(col.key)) return fail("columns: \"" + std::string(col.key) + "\" is not a column name");
        if (col.value.get_string().get(source) ||
            !(source == "$key" || source == "$id" || source == "$time" || (!source.empty() && source.front() == '/')))
          return fail("columns." + std::string(col.key) +
                      ": expected a JSON pointer like /temperature, or $key, $id, $time");
        c.columns.push_back({std::string(col.key), std::string(source)});
      }
    } else if (name == conflict_field) {
      auto names = names_of(field.value, conflict_field);
      if (!names) return fail(names.error());
      c.conflict = std::move(*names);
    } else if (name == "batch") {
      simdjson::dom::object b;
      if (field.value.get_object().get(b))
        return fail("batch: expected {size: 100, every: 20ms}, got " + detail::shown(field.value));
      for (auto item : b) {
        int64_t n;
        if (item.key == "size" && !item.value.get_int64().get(n) && n >= 1 && n <= 1000) {
          c.batch_size = static_cast<std::size_t>(n);
        } else if (item.key == "every" && detail::duration_ms(item.value, 60000)) {
          c.batch_ms = *detail::duration_ms(item.value, 60000);
        } else {
          return fail("batch." + std::string(item.key) + ": expected size (1 to 1000) or every (a duration up to 1m)");
        }
      }
    } else if (name == "timeout") {
      auto ms = detail::duration_ms(field.value, 300000);
      if (!ms) return fail("timeout: expected a duration up to 5m like 10s, got " + detail::shown(field.value));
      c.timeout_ms = *ms;
    } else if (name == "retry") {
      if (auto st = detail::parse_retry(field.value, c.retry); !st) return fail(st.error());
    } else {
      return fail("unknown field \"" + std::string(name) + "\" (" + (upsert ? "postgres.Upsert" : "postgres.Insert") +
                  " takes connection, table, columns, " + conflict_field + ", batch, timeout and retry)");
    }
  }
  if (c.connection.empty()) return fail("connection: missing (like host=127.0.0.1 port=5432 dbname=iot user=app)");
  if (c.table.empty()) return fail("table: missing");
  if (c.columns.empty()) return fail("columns: missing (like {device: $key, temperature: /temperature})");
  if (upsert && c.conflict.empty())
    return fail("key: missing (the columns of the unique key to update on, like [device])");
  for (auto& k : c.conflict) {
    bool found = false;
    for (auto& col : c.columns) found |= col.name == k;
    if (!found) return fail(conflict_field + ": " + k + " is not one of the columns");
  }
  return c;
}

std::string sql_of(const write_config& c) {
  std::string names, values, conflict, updates;
  for (std::size_t i = 0; i < c.columns.size(); ++i) {
    names += (i ? "," : "") + sql_name(c.columns[i].name);
    values += (i ? ",$" : "$") + std::to_string(i + 1);
  }
  for (std::size_t i = 0; i < c.conflict.size(); ++i) conflict += (i ? "," : "") + sql_name(c.conflict[i]);
  for (auto& col : c.columns) {
    if (std::find(c.conflict.begin(), c.conflict.end(), col.name) != c.conflict.end()) continue;
    updates += (updates.empty() ? "" : ",") + sql_name(col.name) + "=EXCLUDED." + sql_name(col.name);
  }
  std::string sql = "INSERT INTO " + sql_name(c.table) + " (" + names + ") VALUES (" + values + ")";
  if (!c.conflict.empty())
    sql += " ON CONFLICT (" + conflict + ")" +
           (c.upsert && !updates.empty() ? " DO UPDATE SET " + updates : std::string(" DO NOTHING"));
  return sql;
}

result<std::vector<std::optional<std::string>>> params_of(const write_config& c, const sinks::delivery& d) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(d.payload.data(), d.payload.size()).get(doc)) return fail("the output is not JSON");
  std::vector<std::optional<std::string>> out;
  for (auto& col : c.columns) {
    if (col.source == "$key") {
      out.emplace_back(d.key);
    } else if (col.source == "$id") {
      out.emplace_back(d.id);
    } else if (col.source == "$time") {
      out.emplace_back(iso_time(d.time_ms));
    } else {
      simdjson::dom::element v;
      if (doc.at_pointer(col.source).get(v))
        out.emplace_back(std::nullopt);  // missing: NULL (a NOT NULL column refuses it, naming itself)
      else
        out.push_back(param_of(v));
    }
  }
  return out;
}

std::shared_ptr<sinks::sink> make_write_sink(sinks::io_thread& io, write_config c) {
  auto s = std::make_shared<write_sink>(io, std::move(c));
  s->start();
  return s;
}

result<query_config> parse_query(std::string_view config_json) {
  simdjson::dom::parser parser;
  auto parsed_doc = detail::config_object(parser, config_json);
  if (!parsed_doc) return fail(parsed_doc.error());
  simdjson::dom::object doc = *parsed_doc;
  query_config c;
  for (auto field : doc) {
    const std::string_view name = field.key;
    if (name == "kind") continue;
    if (name == "connection" || name == "query") {
      auto s = string_of(field.value, std::string(name));
      if (!s) return fail(s.error());
      (name == "connection" ? c.connection : c.query) = *s;
    } else if (name == "params") {
      simdjson::dom::array a;
      if (field.value.get_array().get(a))
        return fail("params: expected a list of JSON pointers ($1, $2, ...) like [/device]");
      for (auto p : a) {
        std::string_view pointer;
        if (p.get_string().get(pointer) || pointer.empty() || pointer.front() != '/')
          return fail("params: expected JSON pointers into the input like /device, got " + detail::shown(p));
        c.params.emplace_back(pointer);
      }
    } else if (name == "timeout") {
      auto ms = detail::duration_ms(field.value, 300000);
      if (!ms) return fail("timeout: expected a duration up to 5m like 10s, got " + detail::shown(field.value));
      c.timeout_ms = *ms;
    } else if (name == "retry") {
      if (auto st = detail::parse_retry(field.value, c.retry); !st) return fail(st.error());
    } else {
      return fail("unknown field \"" + std::string(name) +
                  "\" (postgres.Query takes connection, query, params, timeout and retry)");
    }
  }
  if (c.connection.empty()) return fail("connection: missing (like host=127.0.0.1 port=5432 dbname=iot user=app)");
  if (c.query.empty()) return fail("query: missing (like SELECT * FROM readings WHERE device = $1)");
  for (std::size_t i = 1; i <= c.params.size(); ++i)
    if (c.query.find("$" + std::to_string(i)) == std::string::npos)
      return fail("params: the query has no $" + std::to_string(i));
  return c;
}

std::shared_ptr<sinks::sink> make_query_sink(sinks::io_thread& io, query_config c) {
  return std::make_shared<query_sink>(io, std::move(c));
}

}  // namespace flowstate::drivers::postgres
