#include "flowstate/drivers/http_routes.hpp"

#include <simdjson.h>

#include <charconv>
#include <limits>

#include "flowstate/runtime/utf8.hpp"

namespace flowstate::http {
namespace {

// Why `text` (named by `where`) cannot go into a message, or nullopt when it
// is valid UTF-8: workers only take UTF-8 text.
std::optional<std::string> not_utf8(std::string_view where, std::string_view text) {
  auto at = invalid_utf8_at(text);
  if (at == std::string_view::npos) return std::nullopt;
  static constexpr char hex[] = "0123456789abcdef";
  auto byte = static_cast<unsigned char>(text[at]);
  return "expected UTF-8 text in " + std::string(where) + ", found byte 0x" + hex[byte >> 4] + hex[byte & 0xF] +
         " at offset " + std::to_string(at);
}

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.emplace_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool is_param(std::string_view s) { return s.size() > 2 && s.front() == '{' && s.back() == '}'; }

result<route> parse_route(std::string_view method, std::string_view path) {
  route r;
  r.method = std::string(method);
  for (auto& c : r.method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  static const char* methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"};
  bool known = false;
  for (auto* m : methods) known |= r.method == m;
  if (!known)
    return fail("unknown HTTP method \"" + std::string(method) +
                "\" (expected GET, POST, PUT, PATCH, DELETE, HEAD or OPTIONS)");
  if (path.empty() || path.front() != '/') return fail("path \"" + std::string(path) + "\" must start with /");
  r.path = std::string(path);
  r.text = r.method + " " + r.path;
  r.segments = split_path(path);
  for (auto& s : r.segments) {
    if (s.find('{') != std::string::npos && !is_param(s))
      return fail("path \"" + r.path + "\": a parameter must be a whole segment like {key}");
    if (is_param(s) && r.key_param.empty()) r.key_param = s.substr(1, s.size() - 2);
    if (s == "{key}") r.key_param = "key";
  }
  return r;
}

}  // namespace

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

static result<std::vector<route>> parse_routes(simdjson::dom::element doc);

// "2s", "500ms", or a number of milliseconds; nothing for a value that is
// not one or does not fit in 32 bits of milliseconds (about 49 days).
static std::optional<uint32_t> parse_timeout(simdjson::dom::element e) {
  constexpr uint64_t max_ms = std::numeric_limits<uint32_t>::max();
  int64_t n;
  if (!e.get_int64().get(n))
    return n > 0 && static_cast<uint64_t>(n) <= max_ms ? std::optional<uint32_t>(static_cast<uint32_t>(n))
                                                       : std::nullopt;
  std::string_view s;
  if (e.get_string().get(s)) return std::nullopt;
  uint64_t value = 0;
  auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (error != std::errc() || end == s.data() || value > max_ms) return std::nullopt;
  auto unit = s.substr(static_cast<std::size_t>(end - s.data()));
  uint64_t scale = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000 : 0;
  if (scale == 0 || value * scale > max_ms) return std::nullopt;
  return static_cast<uint32_t>(value * scale);
}

result<std::vector<route>> parse_request_routes(std::string_view config_json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(config_json.data(), config_json.size()).get(doc))
    return fail("driver configuration is not valid JSON");
  uint32_t timeout_ms = 0;
  simdjson::dom::element timeout;
  if (!doc["timeout"].get(timeout)) {
    auto t = parse_timeout(timeout);
    if (!t) return fail("timeout: expected a duration like 2s or 500ms");
    timeout_ms = *t;
  }
  auto with_timeout = [timeout_ms](result<std::vector<route>> r) {
    if (r)
      for (auto& x : *r) x.timeout_ms = timeout_ms;
    return r;
  };
  return with_timeout(parse_routes(doc));
}

static result<std::vector<route>> parse_routes(simdjson::dom::element doc) {
  std::vector<route> out;
  simdjson::dom::array list;
  if (!doc["routes"].get_array().get(list)) {
    for (auto item : list) {
      std::string_view text;
      if (item.get_string().get(text)) return fail("routes: each entry must be a string like \"GET /lists/{key}\"");
      auto space = text.find(' ');
      if (space == std::string_view::npos)
        return fail("routes: \"" + std::string(text) + "\" must be \"METHOD /path\"");
      auto r = parse_route(text.substr(0, space), text.substr(space + 1));
      if (!r) return fail("routes: " + r.error());
      out.push_back(std::move(*r));
    }
    if (out.empty()) return fail("routes: the list is empty");
    return out;
  }
  std::string_view method, path;
  if (doc["path"].get_string().get(path)) return fail("expected `path:` (e.g. /count/{key}) or `routes:`");
  if (doc["method"].get_string().get(method)) method = "POST";
  auto r = parse_route(method, path);
  if (!r) return fail(r.error());
  out.push_back(std::move(*r));
  return out;
}

status route_table::add(route r) {
  for (auto& existing : routes_) {
    if (existing.method != r.method || existing.segments.size() != r.segments.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < r.segments.size() && same; ++i) {
      auto& a = existing.segments[i];
      auto& b = r.segments[i];
      same = is_param(a) || is_param(b) || a == b;
    }
    if (same) return fail("route \"" + r.text + "\" collides with \"" + existing.text + "\"");
  }
  routes_.push_back(std::move(r));
  return status::success();
}

std::pair<std::string_view, std::string_view> split_target(std::string_view target) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

std::optional<route_match> route_table::match(std::string_view method, std::string_view path) const {
  auto parts = split_path(path);
  for (auto& r : routes_) {
    if (r.method != method || r.segments.size() != parts.size()) continue;
    route_match m;
    bool ok = true;
    for (std::size_t i = 0; i < parts.size() && ok; ++i) {
      auto& seg = r.segments[i];
      if (is_param(seg)) {
        auto name = seg.substr(1, seg.size() - 2);
        auto value = percent_decode(parts[i]);
        if (name == r.key_param) m.key = value;
        m.params.emplace_back(std::move(name), std::move(value));
      } else {
        ok = seg == parts[i];
      }
    }
    if (!ok) continue;
    m.matched = &r;
    return m;
  }
  return std::nullopt;
}

result<std::string> build_request_message(const request& req, const route_match& m) {
  auto [path, query] = split_target(req.target);
  std::string out;
  out.reserve(160 + req.body.size() + req.headers.size() * 32);
  // Text that is not UTF-8 is refused here (a 400), before it reaches a
  // worker: the wire protocol and the languages take UTF-8 only.
  if (auto why = not_utf8("the request path", path)) return fail(*why);
  for (const auto& [name, value] : m.params)
    if (auto why = not_utf8("path parameter {" + name + "}", value)) return fail(*why);
  for (const auto& [name, value] : req.headers) {
    if (auto why = not_utf8("a header name", name)) return fail(*why);
    if (auto why = not_utf8("header " + name, value)) return fail(*why);
  }
  out += "{\"route\":";
  append_json_string(out, m.matched->text);
  out += ",\"method\":";
  append_json_string(out, req.method);
  out += ",\"path\":";
  append_json_string(out, path);
  out += ",\"params\":{";
  for (std::size_t i = 0; i < m.params.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(out, m.params[i].first);
    out.push_back(':');
    append_json_string(out, m.params[i].second);
  }
  out += "},\"query\":{";
  bool first = true;
  std::size_t i = 0;
  while (i < query.size()) {
    auto amp = query.find('&', i);
    if (amp == std::string_view::npos) amp = query.size();
    auto pair = query.substr(i, amp - i);
    i = amp + 1;
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    if (!first) out.push_back(',');
    first = false;
    auto name = percent_decode(pair.substr(0, eq));
    auto value = eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    if (auto why = not_utf8("a query parameter name", name)) return fail(*why);
    if (auto why = not_utf8("query parameter " + name, value)) return fail(*why);
    append_json_string(out, name);
    out.push_back(':');
    append_json_string(out, value);
  }
  out += "},\"headers\":{";
  for (std::size_t h = 0; h < req.headers.size(); ++h) {
    if (h) out.push_back(',');
    std::string name = req.headers[h].first;
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    append_json_string(out, name);
    out.push_back(':');
    append_json_string(out, req.headers[h].second);
  }
  out += "},\"body\":";
  auto content_type = req.header("content-type");
  bool json_declared = content_type.find("json") != std::string_view::npos;
  if (req.body.empty()) {
    out += "null";
  } else {
    // Valid JSON bodies are embedded as values; a body that claims JSON
    // and is not is refused before it reaches a function.
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element ignored;
    bool valid = !parser.parse(req.body).get(ignored);
    if (valid) {
      out += req.body;
    } else if (json_declared) {
      return fail("the request body is not valid JSON");
    } else if (auto why = not_utf8("the request body", req.body)) {
      return fail(*why + " (a body that is not JSON is passed as text)");
    } else {
      append_json_string(out, req.body);
    }
  }
  out.push_back('}');
  return out;
}

}  // namespace flowstate::http
