#include "records.hpp"

#include <simdjson.h>

#include <chrono>
#include <random>

#include "flowstate/runtime/decimal.hpp"
#include "flowstate/runtime/keys.hpp"

namespace flowstate::engine_detail {

std::string encode_queued(const queued_input& q) {
  key_builder b;
  b.str(q.flow).str(q.block).str(q.msg.id).str(q.msg.key).str(q.msg.trace_id);
  b.u64(static_cast<uint64_t>(q.msg.time_ms)).str(q.msg.payload);
  // After the fields earlier versions read, which ignore them.
  const bool failed = !q.precondition_failed.empty();
  if (q.deploy || !q.identity.empty() || failed) b.u64(q.deploy);
  if (!q.identity.empty() || failed) b.str(q.identity);
  if (failed) b.str(q.precondition_failed);
  return b.take();
}

result<queued_input> decode_queued(std::string_view bytes) {
  key_reader r(bytes);
  queued_input q;
  auto flow = r.str();
  auto block = r.str();
  auto id = r.str();
  auto key = r.str();
  auto trace = r.str();
  auto time = r.u64();
  auto payload = r.str();
  if (!flow || !block || !id || !key || !trace || !time || !payload) return fail("malformed queue entry");
  q.flow = std::move(*flow);
  q.block = std::move(*block);
  q.msg.id = std::move(*id);
  q.msg.key = std::move(*key);
  q.msg.trace_id = std::move(*trace);
  q.msg.time_ms = static_cast<int64_t>(*time);
  q.msg.payload = std::move(*payload);
  if (!r.at_end()) {
    auto deploy = r.u64();
    if (!deploy) return fail("malformed queue entry (deploy number)");
    q.deploy = *deploy;
  }
  if (!r.at_end()) {
    auto identity = r.str();
    if (!identity) return fail("malformed queue entry (identity)");
    q.identity = std::move(*identity);
  }
  if (!r.at_end()) {
    auto detail = r.str();
    if (!detail) return fail("malformed queue entry (error)");
    q.precondition_failed = std::move(*detail);
  }
  return q;
}

namespace {
std::string hex64(uint64_t v) {
  static const char* digits = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, v >>= 4) out[static_cast<std::size_t>(i)] = digits[v & 15];
  return out;
}
}  // namespace

std::string new_message_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return hex64(rng()) + hex64(rng());
}

std::string derive_message_id(std::string_view input_id, std::string_view block_id, std::size_t index) {
  std::string material;
  material.reserve(input_id.size() + block_id.size() + 24);
  material.append(input_id).push_back('\x1f');
  material.append(block_id).push_back('\x1f');
  material.append(std::to_string(index));
  auto h1 = stable_hash64(material);
  material.push_back('\x1e');
  auto h2 = stable_hash64(material);
  return hex64(h1) + hex64(h2);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {
void field(std::string& out, const char* name, std::string_view value, bool first = false) {
  if (!first) out.push_back(',');
  http::append_json_string(out, name);
  out.push_back(':');
  http::append_json_string(out, value);
}
}  // namespace

std::string error_record_json(const error_fields& e) {
  std::string out = "{";
  field(out, "id", e.id, true);
  field(out, "type", e.type);
  field(out, "message", e.message);
  field(out, "flow", e.flow);
  field(out, "block", e.block);
  field(out, "key", e.key);
  field(out, "messageId", e.message_id);
  field(out, "revision", e.revision);
  field(out, "at", iso_time(e.at_ms));
  out += ",\"details\":" + (e.details_json.empty() ? std::string("{}") : e.details_json);
  out += ",\"input\":" + (e.input_json.empty() ? std::string("null") : e.input_json);
  field(out, "traceId", e.trace_id);
  out += ",\"acceptedAtMs\":" + std::to_string(e.accepted_ms);
  out += "}";
  return out;
}

result<error_fields> parse_error_record(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc)) return fail("the error record is not valid JSON");
  error_fields e;
  auto str = [&](const char* k, std::string& out) {
    std::string_view v;
    if (!doc[k].get_string().get(v)) out = std::string(v);
  };
  str("id", e.id);
  if (auto parsed = parse_error_id(e.id)) e.seq = parsed->second;
  str("type", e.type);
  str("message", e.message);
  str("flow", e.flow);
  str("block", e.block);
  str("key", e.key);
  str("messageId", e.message_id);
  str("revision", e.revision);
  str("traceId", e.trace_id);
  int64_t accepted = 0;
  if (!doc["acceptedAtMs"].get_int64().get(accepted)) e.accepted_ms = accepted;
  simdjson::dom::element input, details;
  if (!doc["input"].get(input)) e.input_json = simdjson::minify(input);
  if (!doc["details"].get(details)) e.details_json = simdjson::minify(details);
  return e;
}

http::response error_response(const error_fields& e) {
  int status = 500;
  if (e.type == "PreconditionFailed") status = 422;
  if (e.type == "Timeout") status = 504;
  auto r = http::problem(status, e.type, e.message, std::string(problem_type_error_prefix) + e.type);
  // Extend the problem with the error's identity so a client can report it.
  r.body.pop_back();
  r.body += ",\"errorId\":";
  http::append_json_string(r.body, e.id);
  r.body += ",\"flow\":";
  http::append_json_string(r.body, e.flow);
  r.body += ",\"block\":";
  http::append_json_string(r.body, e.block);
  r.body += ",\"details\":" + (e.details_json.empty() ? std::string("{}") : e.details_json) + "}";
  return r;
}

result<http::response> render_http_response(std::string_view output_json) {
  thread_local simdjson::dom::parser parser;
  http::response r;
  simdjson::dom::element doc;
  if (parser.parse(output_json.data(), output_json.size()).get(doc))
    return fail("http.Response: the output is not valid JSON");
  simdjson::dom::object obj;
  if (doc.get_object().get(obj)) {
    r.body = std::string(output_json);
    return r;
  }
  int64_t status = 200;
  simdjson::dom::element status_el;
  if (!obj["status"].get(status_el)) {
    // 1xx is informational: it cannot end a request.
    if (status_el.get_int64().get(status) || status < 200 || status > 599)
      return fail("http.Response: `status` must be an integer from 200 to 599, got " +
                  std::string(simdjson::minify(status_el)).substr(0, 64));
  }
  r.status = static_cast<int>(status);
  simdjson::dom::object headers;
  bool has_content_type = false;
  if (!obj["headers"].get_object().get(headers)) {
    for (auto [name, value] : headers) {
      std::string_view v;
      if (value.get_string().get(v)) continue;
      std::string n(name);
      if (!http::valid_header_name(n))
        return fail("http.Response: header name " + json_quote(n.substr(0, 64)) +
                    " is not a valid HTTP field name (letters, digits and !#$%&'*+-.^_`|~ only)");
      if (!http::valid_header_value(v))
        return fail("http.Response: header " + json_quote(n) +
                    ": its value holds a line break or another control character");
      for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (n == "content-type") {
        r.content_type = std::string(v);
        has_content_type = true;
      } else if (n != "content-length" && n != "connection" && n != "transfer-encoding") {
        r.headers.emplace_back(std::string(name), std::string(v));
      }
    }
  }
  simdjson::dom::element body;
  if (http::status_has_no_body(r.status)) {
    // null, "" or none: a 204 or 304 has no body to send.
    if (!obj["body"].get(body) && !body.is_null() && !(body.is_string() && body.get_string().value_unsafe().empty()))
      return fail("http.Response: a " + std::to_string(r.status) +
                  " response has no body: leave `body` out (or null), or use another status");
    r.body.clear();
    r.content_type.clear();
  } else if (obj["body"].get(body)) {
    r.body.clear();
    if (!has_content_type) r.content_type.clear();
  } else if (body.is_string()) {
    r.body = std::string(body.get_string().value_unsafe());
    if (!has_content_type) r.content_type = "text/plain; charset=utf-8";
  } else {
    r.body = simdjson::minify(body);
  }
  return r;
}

result<std::string> key_at_pointer(std::string_view json, const std::string& pointer) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc)) return fail("the message is not valid JSON");
  simdjson::dom::element at;
  if (doc.at_pointer(pointer).get(at)) return fail("key " + pointer + ": the message has nothing there");
  std::string_view s;
  if (at.get_string().get(s))
    return fail("key " + pointer + ": expected a string, got " + std::string(simdjson::minify(at)));
  return std::string(s);
}

std::optional<column> key_group_column(std::string_view name) {
  for (auto c : key_group_columns)
    if (column_name(c) == name) return c;
  return std::nullopt;
}

std::optional<uint32_t> key_group_of_record(std::string_view k) {
  // Each element is a tag byte and 4 bytes: the group is the third.
  if (k.size() < 15 || static_cast<uint8_t>(k[10]) != static_cast<uint8_t>(key_tag::u32)) return std::nullopt;
  uint32_t g = 0;
  for (std::size_t b = 11; b < 15; ++b) g = (g << 8) | static_cast<unsigned char>(k[b]);
  return g;
}

}  // namespace flowstate::engine_detail
