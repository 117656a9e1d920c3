#include <simdjson.h>

#include <algorithm>

#include "config_values.hpp"
#include "flowstate/drivers/http_types.hpp"
#include "flowstate/drivers/influxdb.hpp"
#include "flowstate/runtime/keys.hpp"

namespace flowstate::drivers::influxdb {

namespace {

std::string escaped(std::string_view s, std::string_view specials) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    // A line break would end the line: the protocol has no escape for it.
    if (c == '\n' || c == '\r') c = ' ';
    if (specials.find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

result<std::string> string_field(simdjson::dom::element v, const char* what) {
  std::string_view s;
  if (v.get_string().get(s)) return fail(std::string(what) + ": expected a string, got " + detail::shown(v));
  return std::string(s);
}

}  // namespace

namespace detail_server {

status parse_server(std::string_view name, simdjson::dom::element v, server& at, bool& known) {
  known = true;
  if (name == "url") {
    auto url = string_field(v, "url");
    if (!url) return fail(url.error());
    std::string probe = "{\"url\":";
    http::append_json_string(probe, *url);
    auto parsed = http_post::parse(probe + "}");
    if (!parsed) return fail(parsed.error());
    if (parsed->target.size() != 1 || parsed->target[0].text != "/")
      return fail("url: expected the server's address only, like http://127.0.0.1:8086");
    at.tls = parsed->tls;
    at.host = parsed->host;
    at.port = parsed->port;
  } else if (name == "version") {
    int64_t n;
    if (v.get_int64().get(n) || (n != 1 && n != 2)) return fail("version: expected 1 or 2, got " + detail::shown(v));
    at.version = static_cast<int>(n);
  } else if (name == "database" || name == "retentionPolicy" || name == "org" || name == "bucket") {
    auto s = string_field(v, std::string(name).c_str());
    if (!s || s->empty()) return fail(std::string(name) + ": expected a non-empty string, got " + detail::shown(v));
    (name == "database"          ? at.database
     : name == "retentionPolicy" ? at.retention_policy
     : name == "org"             ? at.org
                                 : at.bucket) = *s;
  } else if (name == "username" || name == "password" || name == "token") {
    auto s = string_field(v, std::string(name).c_str());
    if (!s) return fail(s.error());
    (name == "username" ? at.username : name == "password" ? at.password : at.token) = *s;
  } else if (name == "timeout") {
    auto ms = detail::duration_ms(v, 300000);
    if (!ms) return fail("timeout: expected a duration up to 5m like 10s, got " + detail::shown(v));
    at.timeout_ms = *ms;
  } else {
    known = false;
  }
  return status::success();
}

status check_server(const server& at) {
  if (at.host.empty()) return fail("url: missing (the InfluxDB server, like http://127.0.0.1:8086)");
  if (at.version == 1 && at.database.empty()) return fail("database: missing (InfluxDB 1.x writes into a database)");
  if (at.version == 2 && (at.org.empty() || at.bucket.empty()))
    return fail("version 2 needs org and bucket (and token)");
  return status::success();
}

std::string query_escape(std::string_view value) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

}  // namespace detail_server

using detail_server::check_server;
using detail_server::parse_server;

std::string escape_measurement(std::string_view s) { return escaped(s, ", "); }
std::string escape_key(std::string_view s) { return escaped(s, ",= "); }
std::string escape_string_field(std::string_view s) { return escaped(s, "\"\\"); }

result<write_config> parse_write(std::string_view config_json) {
  simdjson::dom::parser parser;
  auto parsed_doc = detail::config_object(parser, config_json);
  if (!parsed_doc) return fail(parsed_doc.error());
  simdjson::dom::object doc = *parsed_doc;
  write_config c;
  bool has_measurement = false;
  for (auto field : doc) {
    const std::string_view name = field.key;
    if (name == "kind") continue;
    bool known = false;
    if (auto st = parse_server(name, field.value, c.at, known); !st) return fail(st.error());
    if (known) continue;
    if (name == "measurement") {
      auto s = string_field(field.value, "measurement");
      if (!s || s->empty())
        return fail("measurement: expected a name like readings, got " + detail::shown(field.value));
      auto t = http_post::parse_template(*s);
      if (!t) return fail("measurement: " + t.error());
      c.measurement = std::move(*t);
      has_measurement = true;
    } else if (name == "tags") {
      simdjson::dom::object tags;
      if (field.value.get_object().get(tags))
        return fail("tags: expected a mapping of tag keys to templates like {device: \"{{key}}\"}, got " +
                    detail::shown(field.value));
      for (auto tag : tags) {
        auto s = string_field(tag.value, "tags");
        if (!s) return fail("tags." + std::string(tag.key) + ": " + s.error());
        auto t = http_post::parse_template(*s);
        if (!t) return fail("tags." + std::string(tag.key) + ": " + t.error());
        c.tags.emplace_back(std::string(tag.key), std::move(*t));
      }
      std::sort(c.tags.begin(), c.tags.end(), [](auto& a, auto& b) { return a.first < b.first; });
    } else if (name == "fields") {
      auto fields = detail::pointer_map(field.value, "fields", "{temperature: /temperature}");
      if (!fields) return fail(fields.error());
      c.fields = std::move(*fields);
    } else if (name == "time") {
      std::string_view p;
      if (field.value.get_string().get(p) || p.empty() || p.front() != '/')
        return fail("time: expected a JSON pointer to milliseconds since 1970 like /ts, got " +
                    detail::shown(field.value));
      c.time_pointer = std::string(p);
    } else if (name == "batch") {
      simdjson::dom::object b;
      if (field.value.get_object().get(b))
        return fail("batch: expected {size: 500, every: 100ms}, got " + detail::shown(field.value));
      for (auto item : b) {
        if (item.key == "size") {
          int64_t n;
          if (item.value.get_int64().get(n) || n < 1 || n > 10000)
            return fail("batch.size: expected 1 to 10000 points, got " + detail::shown(item.value));
          c.batch_size = static_cast<std::size_t>(n);
        } else if (item.key == "every") {
          auto ms = detail::duration_ms(item.value, 60000);
          if (!ms)
            return fail("batch.every: expected a duration up to 1m like 100ms, got " + detail::shown(item.value));
          c.batch_ms = *ms;
        } else {
          return fail("batch: unknown field \"" + std::string(item.key) + "\" (it takes size and every)");
        }
      }
    } else if (name == "retry") {
      if (auto st = detail::parse_retry(field.value, c.retry); !st) return fail(st.error());
    } else {
      return fail("unknown field \"" + std::string(name) +
                  "\" (influxdb.Write takes url, database, retentionPolicy, username, password, version, org, "
                  "bucket, token, measurement, tags, fields, time, batch, timeout and retry)");
    }
  }
  if (auto st = check_server(c.at); !st) return fail(st.error());
  if (!has_measurement) return fail("measurement: missing (the measurement the points go to, like readings)");
  if (c.fields.empty()) return fail("fields: missing (at least one field, like {temperature: /temperature})");
  return c;
}

result<std::string> line_of(const write_config& c, const sinks::delivery& d) {
  auto m = http_post::render(c.measurement, d, false);
  if (!m) return fail("measurement: " + m.error());
  // Line protocol has no way to write a backslash at the end of a
  // measurement or tag value: it would escape the separator after it.
  auto trailing_backslash = [](const std::string& s) { return !s.empty() && s.back() == '\\'; };
  if (trailing_backslash(*m))
    return fail("measurement: \"" + *m + "\" ends with a backslash, which line protocol cannot carry");
  std::string line = escape_measurement(*m);
  for (auto& [key, t] : c.tags) {
    auto v = http_post::render(t, d, false);
    if (!v) return fail("tags." + key + ": " + v.error());
    if (v->empty()) continue;  // an empty tag value is not allowed: the tag is left out
    if (trailing_backslash(*v))
      return fail("tags." + key + ": \"" + *v + "\" ends with a backslash, which line protocol cannot carry");
    line += ',' + escape_key(key) + '=' + escape_key(*v);
  }
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(d.payload.data(), d.payload.size()).get(doc)) return fail("the output is not JSON");
  bool first = true;
  for (auto& [key, pointer] : c.fields) {
    simdjson::dom::element v;
    if (doc.at_pointer(pointer).get(v) || v.is_null()) continue;
    line += first ? ' ' : ',';
    first = false;
    line += escape_key(key) + '=';
    std::string_view s;
    bool b;
    if (!v.get_string().get(s)) {
      line += '"' + escape_string_field(s) + '"';
    } else if (!v.get_bool().get(b)) {
      line += b ? "true" : "false";
    } else if (v.is_number()) {
      line += simdjson::minify(v);  // a float field (an integer too: "42" is the float 42)
    } else {
      line += '"' + escape_string_field(simdjson::minify(v)) + '"';
    }
  }
  if (first) return fail("fields: the output has none of the fields (" + c.fields.front().second + ", ...)");
  // Nanoseconds. Without `time:`, the message's time (milliseconds) plus a
  // part of the delivery's id below the millisecond: two outputs of one
  // series in the same millisecond stay two points, and a repeat of one
  // delivery lands on the same point.
  int64_t ms = d.time_ms;
  int64_t below = static_cast<int64_t>(stable_hash64(d.id) % 1000000);
  if (!c.time_pointer.empty()) {
    simdjson::dom::element v;
    if (doc.at_pointer(c.time_pointer).get(v) || v.get_int64().get(ms))
      return fail("time: the output has no integer (milliseconds since 1970) at " + c.time_pointer);
    below = 0;
  }
  if (ms < 0 || ms > INT64_MAX / 1000000)
    return fail("time: " + std::to_string(ms) + " is not milliseconds since 1970 (before 1970 or past 2262)");
  line += ' ' + std::to_string(ms * 1000000 + below);
  return line;
}

}  // namespace flowstate::drivers::influxdb
