// etcd v3's JSON gateway over one keep-alive HTTP/1.1 connection (Beast).
// Every operation runs asynchronously on the client's own io_context with a
// deadline, so a stalled etcd is an error after `timeout_ms`, never a hang.
#include "flowstate/cluster/etcd.hpp"

#include <simdjson.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <chrono>

namespace flowstate::cluster {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;

namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// A JSON string of text without control characters (base64, names).
std::string json_quoted(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + "\"";
}
std::string b64(std::string_view bytes) { return json_quoted(base64_encode(bytes)); }

int64_t number_field(simdjson::dom::element e, const char* name) {
  // The gateway writes int64 as decimal strings, and leaves zero out.
  simdjson::dom::element v;
  if (e[name].get(v)) return 0;
  std::string_view text;
  if (!v.get_string().get(text)) {
    int64_t n = 0;
    std::from_chars(text.data(), text.data() + text.size(), n);
    return n;
  }
  int64_t n = 0;
  if (!v.get_int64().get(n)) return n;
  return 0;
}

std::string string_field(simdjson::dom::element e, const char* name) {
  std::string_view text;
  if (e[name].get_string().get(text)) return {};
  auto decoded = base64_decode(text);
  return decoded ? *decoded : std::string();
}

etcd_kv parse_kv(simdjson::dom::element kv) {
  etcd_kv out;
  out.key = string_field(kv, "key");
  out.value = string_field(kv, "value");
  out.create_revision = number_field(kv, "create_revision");
  out.mod_revision = number_field(kv, "mod_revision");
  out.version = number_field(kv, "version");
  out.lease = number_field(kv, "lease");
  return out;
}

std::vector<etcd_kv> parse_kvs(simdjson::dom::element e) {
  std::vector<etcd_kv> out;
  simdjson::dom::array kvs;
  if (!e["kvs"].get_array().get(kvs))
    for (auto kv : kvs) out.push_back(parse_kv(kv));
  return out;
}

std::string op_json(const etcd_op& op) {
  switch (op.what) {
    case etcd_op::kind::put:
      return "{\"request_put\":{\"key\":" + b64(op.key) + ",\"value\":" + b64(op.value) +
             (op.lease ? ",\"lease\":\"" + std::to_string(op.lease) + "\"" : "") + "}}";
    case etcd_op::kind::erase:
      return "{\"request_delete_range\":{\"key\":" + b64(op.key) +
             (op.range_end.empty() ? "" : ",\"range_end\":" + b64(op.range_end)) + "}}";
    case etcd_op::kind::range:
      return "{\"request_range\":{\"key\":" + b64(op.key) +
             (op.range_end.empty() ? "" : ",\"range_end\":" + b64(op.range_end)) + "}}";
  }
  return "{}";
}

std::string compare_json(const etcd_compare& c) {
  static constexpr const char* results[] = {"EQUAL", "GREATER", "LESS", "NOT_EQUAL"};
  static constexpr const char* targets[] = {"VERSION", "CREATE", "MOD", "VALUE"};
  static constexpr const char* fields[] = {"version", "create_revision", "mod_revision", "value"};
  std::string out = "{\"key\":" + b64(c.key) + ",\"result\":\"" + results[static_cast<int>(c.op)] + "\",\"target\":\"" +
                    targets[static_cast<int>(c.what)] + "\",\"" + fields[static_cast<int>(c.what)] + "\":";
  out += c.what == etcd_compare::target::value ? b64(c.value) : "\"" + std::to_string(c.number) + "\"";
  return out + "}";
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += alphabet[(n >> s) & 63];
  }
  if (i < bytes.size()) {
    uint32_t n = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) n |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? alphabet[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4) return std::nullopt;
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    int pad = (text[i + 3] == '=') + (text[i + 2] == '=');
    if (pad && i + 4 != text.size()) return std::nullopt;
    uint32_t n = 0;
    for (int j = 0; j < 4; ++j) {
      int v = j >= 4 - pad ? 0 : value(text[i + j]);
      if (v < 0) return std::nullopt;
      n = (n << 6) | uint32_t(v);
    }
    out += char((n >> 16) & 0xFF);
    if (pad < 2) out += char((n >> 8) & 0xFF);
    if (pad < 1) out += char(n & 0xFF);
  }
  return out;
}

struct etcd_client::impl {
  etcd_options options;
  std::string host, port;
  asio::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  std::string token;  // from /v3/auth/authenticate, when a user is set

  // After close(): runs the cancelled operation's handlers (which refer to
  // the caller's stack) before the caller returns.
  void finish_cancelled(const bool& done) {
    while (!done) {
      ioc.restart();
      if (ioc.run_one_for(std::chrono::seconds(1)) == 0) break;
    }
  }

  // Runs the io_context until `done` or the deadline; on the deadline the
  // connection is closed (the pending operation then fails).
  bool run_until(const bool& done, std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done) {
      ioc.restart();
      ioc.run_one_until(deadline);
      if (!done && std::chrono::steady_clock::now() >= deadline) {
        if (stream) stream->close();
        finish_cancelled(done);
        return false;
      }
    }
    return true;
  }

  status ensure_connected() {
    if (stream && stream->socket().is_open()) return status::success();
    stream.emplace(ioc);
    buffer.clear();
    asio::ip::tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto endpoints = resolver.resolve(host, port, ec);
    if (ec) return fail("etcd at " + options.endpoint + ": " + ec.message());
    bool done = false;
    stream->async_connect(endpoints, [&](beast::error_code e, auto) {
      ec = e;
      done = true;
    });
    if (!run_until(done, std::chrono::milliseconds(options.timeout_ms)))
      return fail("etcd at " + options.endpoint + ": no connection within " + std::to_string(options.timeout_ms) +
                  " ms");
    if (ec) {
      stream.reset();
      return fail("etcd at " + options.endpoint + ": cannot connect: " + ec.message());
    }
    stream->socket().set_option(asio::ip::tcp::no_delay(true));
    return status::success();
  }

  // One POST with a JSON body; the parsed answer's text.
  result<std::string> post(const std::string& target, const std::string& body, bool retried = false) {
    if (auto st = ensure_connected(); !st) return fail(st.error());
    bhttp::request<bhttp::string_body> req{bhttp::verb::post, target, 11};
    req.set(bhttp::field::host, host + ":" + port);
    req.set(bhttp::field::content_type, "application/json");
    if (!token.empty()) req.set(bhttp::field::authorization, token);
    req.body() = body;
    req.prepare_payload();
    bhttp::response<bhttp::string_body> res;
    beast::error_code ec;
    bool done = false;
    bhttp::async_write(*stream, req, [&](beast::error_code e, std::size_t) {
      if (e) {
        ec = e;
        done = true;
        return;
      }
      bhttp::async_read(*stream, buffer, res, [&](beast::error_code e2, std::size_t) {
        ec = e2;
        done = true;
      });
    });
    if (!run_until(done, std::chrono::milliseconds(options.timeout_ms))) {
      stream.reset();
      return fail("etcd at " + options.endpoint + target + ": no answer within " + std::to_string(options.timeout_ms) +
                  " ms");
    }
    if (ec) {
      stream.reset();
      // A keep-alive connection etcd closed meanwhile: once more on a new one.
      if (!retried && (ec == bhttp::error::end_of_stream || ec == asio::error::connection_reset ||
                       ec == asio::error::broken_pipe || ec == asio::error::eof))
        return post(target, body, true);
      return fail("etcd at " + options.endpoint + target + ": " + ec.message());
    }
    if (!res.keep_alive()) stream.reset();
    if (res.result_int() == 401 && !options.user.empty() && !retried) {
      if (auto st = authenticate(); !st) return fail(st.error());
      return post(target, body, true);
    }
    if (res.result_int() != 200)
      return fail("etcd at " + options.endpoint + target + ": HTTP " + std::to_string(res.result_int()) + ": " +
                  res.body().substr(0, 300));
    return std::move(res.body());
  }

  status authenticate() {
    token.clear();
    auto answer =
        post("/v3/auth/authenticate",
             "{\"name\":" + json_quoted(options.user) + ",\"password\":" + json_quoted(options.password) + "}", true);
    if (!answer) return fail(answer.error());
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    std::string_view t;
    if (parser.parse(*answer).get(doc) || doc["token"].get_string().get(t))
      return fail("etcd at " + options.endpoint + ": authentication answered without a token");
    token = std::string(t);
    return status::success();
  }
};

etcd_client::etcd_client(std::unique_ptr<impl> state) : impl_(std::move(state)) {}
etcd_client::~etcd_client() = default;

result<std::unique_ptr<etcd_client>> etcd_client::connect(etcd_options options) {
  auto state = std::make_unique<impl>();
  std::string_view rest = options.endpoint;
  if (rest.rfind("http://", 0) != 0)
    return fail("etcd endpoint \"" + options.endpoint + "\": expected http://HOST:PORT (e.g. http://127.0.0.1:2379)");
  rest.remove_prefix(7);
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size())
    return fail("etcd endpoint \"" + options.endpoint + "\": expected http://HOST:PORT (e.g. http://127.0.0.1:2379)");
  state->host = std::string(rest.substr(0, colon));
  state->port = std::string(rest.substr(colon + 1));
  state->options = std::move(options);
  if (!state->options.user.empty())
    if (auto st = state->authenticate(); !st) return fail(st.error());
  return std::unique_ptr<etcd_client>(new etcd_client(std::move(state)));
}

std::string etcd_client::prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xFF) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

namespace {

template <class F>
auto parsed(const result<std::string>& answer, F&& f) -> decltype(f(std::declval<simdjson::dom::element>())) {
  using R = decltype(f(std::declval<simdjson::dom::element>()));
  if (!answer) return R(fail(answer.error()));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(*answer).get(doc)) return R(fail("etcd answered with invalid JSON: " + answer->substr(0, 200)));
  return f(doc);
}

}  // namespace

result<int64_t> etcd_client::put(std::string_view key, std::string_view value, int64_t lease) {
  std::string body = "{\"key\":" + b64(key) + ",\"value\":" + b64(value) +
                     (lease ? ",\"lease\":\"" + std::to_string(lease) + "\"" : "") + "}";
  return parsed(impl_->post("/v3/kv/put", body),
                [](simdjson::dom::element d) -> result<int64_t> { return number_field(d["header"], "revision"); });
}

result<std::optional<etcd_kv>> etcd_client::get(std::string_view key) {
  return parsed(impl_->post("/v3/kv/range", "{\"key\":" + b64(key) + "}"),
                [](simdjson::dom::element d) -> result<std::optional<etcd_kv>> {
                  auto kvs = parse_kvs(d);
                  if (kvs.empty()) return std::optional<etcd_kv>();
                  return std::optional<etcd_kv>(std::move(kvs.front()));
                });
}

result<std::vector<etcd_kv>> etcd_client::get_prefix(std::string_view prefix, int64_t* revision) {
  return parsed(
      impl_->post("/v3/kv/range", "{\"key\":" + b64(prefix) + ",\"range_end\":" + b64(prefix_end(prefix)) + "}"),
      [revision](simdjson::dom::element d) -> result<std::vector<etcd_kv>> {
        if (revision) *revision = number_field(d["header"], "revision");
        return parse_kvs(d);
      });
}

result<etcd_txn_result> etcd_client::txn(const std::vector<etcd_compare>& compares, const std::vector<etcd_op>& success,
                                         const std::vector<etcd_op>& failure) {
  auto list = [](const auto& items, auto&& one) {
    std::string out = "[";
    for (std::size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + one(items[i]);
    return out + "]";
  };
  std::string body = "{\"compare\":" + list(compares, compare_json) + ",\"success\":" + list(success, op_json) +
                     ",\"failure\":" + list(failure, op_json) + "}";
  return parsed(impl_->post("/v3/kv/txn", body), [](simdjson::dom::element d) -> result<etcd_txn_result> {
    etcd_txn_result r;
    bool ok = false;
    r.succeeded = !d["succeeded"].get_bool().get(ok) && ok;
    r.revision = number_field(d["header"], "revision");
    simdjson::dom::array responses;
    if (!d["responses"].get_array().get(responses))
      for (auto one : responses) {
        simdjson::dom::element range;
        if (!one["response_range"].get(range)) r.ranges.push_back(parse_kvs(range));
      }
    return r;
  });
}

result<int64_t> etcd_client::lease_grant(int64_t ttl_seconds) {
  return parsed(impl_->post("/v3/lease/grant", "{\"TTL\":\"" + std::to_string(ttl_seconds) + "\"}"),
                [](simdjson::dom::element d) -> result<int64_t> {
                  auto id = number_field(d, "ID");
                  if (!id) return fail("etcd granted no lease");
                  return id;
                });
}

result<int64_t> etcd_client::lease_keepalive(int64_t lease) {
  // The gateway streams keep-alive answers; one request, one answer line.
  return parsed(impl_->post("/v3/lease/keepalive", "{\"ID\":\"" + std::to_string(lease) + "\"}"),
                [](simdjson::dom::element d) -> result<int64_t> {
                  simdjson::dom::element r;
                  if (d["result"].get(r)) return fail("etcd answered a lease keep-alive without a result");
                  return number_field(r, "TTL");
                });
}

status etcd_client::lease_revoke(int64_t lease) {
  auto answer = impl_->post("/v3/lease/revoke", "{\"ID\":\"" + std::to_string(lease) + "\"}");
  if (!answer && answer.error().find("not found") == std::string::npos) return fail(answer.error());
  return status::success();
}

status etcd_client::watch(std::string_view prefix, int64_t start_revision,
                          const std::function<bool(const std::vector<etcd_event>&)>& on_events,
                          const std::atomic<bool>& stop) {
  auto& s = *impl_;
  if (auto st = s.ensure_connected(); !st) return st;
  bhttp::request<bhttp::string_body> req{bhttp::verb::post, "/v3/watch", 11};
  req.set(bhttp::field::host, s.host + ":" + s.port);
  req.set(bhttp::field::content_type, "application/json");
  if (!s.token.empty()) req.set(bhttp::field::authorization, s.token);
  req.body() = "{\"create_request\":{\"key\":" + b64(prefix) + ",\"range_end\":" + b64(prefix_end(prefix)) +
               ",\"start_revision\":\"" + std::to_string(start_revision) + "\"}}";
  req.prepare_payload();
  beast::error_code ec;
  bool done = false;
  bhttp::async_write(*s.stream, req, [&](beast::error_code e, std::size_t) {
    ec = e;
    done = true;
  });
  if (!s.run_until(done, std::chrono::milliseconds(s.options.timeout_ms)) || ec) {
    s.stream.reset();
    return fail("etcd at " + s.options.endpoint + ": cannot start a watch");
  }
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(boost::none);
  done = false;
  bhttp::async_read_header(*s.stream, s.buffer, parser, [&](beast::error_code e, std::size_t) {
    ec = e;
    done = true;
  });
  if (!s.run_until(done, std::chrono::milliseconds(s.options.timeout_ms)) || ec || parser.get().result_int() != 200) {
    s.stream.reset();
    return fail("etcd at " + s.options.endpoint + ": the watch was refused");
  }
  std::string pending;
  simdjson::dom::parser json;
  char piece[16384];
  while (!stop.load()) {
    parser.get().body().data = piece;
    parser.get().body().size = sizeof piece;
    done = false;
    std::size_t got = 0;
    bhttp::async_read_some(*s.stream, s.buffer, parser, [&](beast::error_code e, std::size_t) {
      ec = e;
      done = true;
    });
    // Wake every second to look at `stop`.
    while (!done && !stop.load()) {
      s.ioc.restart();
      s.ioc.run_one_for(std::chrono::seconds(1));
    }
    if (!done) {
      s.stream->close();
      s.finish_cancelled(done);
      s.stream.reset();
      return status::success();
    }
    if (ec && ec != bhttp::error::need_buffer) {
      s.stream.reset();
      return fail("etcd at " + s.options.endpoint + ": the watch ended: " + ec.message());
    }
    got = sizeof piece - parser.get().body().size;
    pending.append(piece, got);
    // The gateway writes one JSON object per line.
    for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      simdjson::dom::element doc, r;
      if (line.empty() || json.parse(line).get(doc) || doc["result"].get(r)) continue;
      simdjson::dom::array events;
      if (r["events"].get_array().get(events)) continue;
      std::vector<etcd_event> batch;
      for (auto ev : events) {
        etcd_event out;
        std::string_view type;
        out.deleted = !ev["type"].get_string().get(type) && type == "DELETE";
        simdjson::dom::element kv;
        if (!ev["kv"].get(kv)) out.kv = parse_kv(kv);
        batch.push_back(std::move(out));
      }
      if (!batch.empty() && !on_events(batch)) {
        s.stream.reset();
        return status::success();
      }
    }
    if (parser.is_done()) {
      s.stream.reset();
      return fail("etcd at " + s.options.endpoint + ": the watch stream ended");
    }
  }
  s.stream.reset();
  return status::success();
}

}  // namespace flowstate::cluster
