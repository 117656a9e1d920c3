#include "flowstate/drivers/http_routes.hpp"

#include <simdjson.h>
#include <strings.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include "config_values.hpp"
#include "flowstate/runtime/decimal.hpp"

namespace flowstate::http {
namespace {

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
  std::vector<std::string_view> params;
  for (auto& s : r.segments) {
    if (s.find('{') != std::string::npos && !is_param(s))
      return fail("path \"" + r.path + "\": a parameter must be a whole segment like {key}");
    if (is_param(s)) {
      if (std::find(params.begin(), params.end(), s) != params.end())
        return fail("path \"" + r.path + "\": the parameter " + s + " appears twice (one value would be lost)");
      params.push_back(s);
    }
    if (is_param(s) && r.key_param.empty()) r.key_param = s.substr(1, s.size() - 2);
    if (s == "{key}") r.key_param = "key";
  }
  return r;
}

}  // namespace

namespace {

std::string decode(std::string_view s, bool plus_is_space) {
  auto hex = [](char c) { return std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Fails when `text` is not UTF-8, naming where it came from.
status require_utf8(std::string_view text, const std::string& where) {
  auto at = invalid_utf8_at(text);
  if (at == std::string_view::npos) return status::success();
  char byte[8];
  std::snprintf(byte, sizeof byte, "0x%02X", static_cast<unsigned char>(text[at]));
  return fail(where + " is not valid UTF-8 text (byte " + byte + " at offset " + std::to_string(at) +
              " after percent-decoding); send text as UTF-8, percent-encoded");
}

}  // namespace

std::string percent_decode(std::string_view s) { return decode(s, true); }

std::string percent_decode_segment(std::string_view s) { return decode(s, false); }

static result<std::vector<route>> parse_routes(simdjson::dom::element doc);

result<std::vector<route>> parse_request_routes(std::string_view config_json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(config_json.data(), config_json.size()).get(doc))
    return fail("driver configuration is not valid JSON");
  simdjson::dom::object fields;
  if (doc.get_object().get(fields)) return fail("expected a map of settings");
  for (auto [name, value] : fields) {
    if (name != "kind" && name != "routes" && name != "method" && name != "path" && name != "timeout")
      return fail("unknown key \"" + std::string(name) + "\"; expected kind, routes, method, path or timeout");
    if ((name == "method" || name == "path") && !value.is_string())
      return fail(std::string(name) + ": expected a string, got " + std::string(simdjson::minify(value)).substr(0, 64));
  }
  if (fields["routes"].error() == simdjson::SUCCESS) {
    if (!fields["routes"].is_array())
      return fail("routes: expected a list like [\"GET /lists/{key}\"], got " +
                  std::string(simdjson::minify(fields["routes"].value_unsafe())).substr(0, 64));
    if (fields["method"].error() == simdjson::SUCCESS || fields["path"].error() == simdjson::SUCCESS)
      return fail("routes: with routes, method and path are not read: leave them out");
  }
  uint32_t timeout_ms = 0;
  simdjson::dom::element timeout;
  if (!doc["timeout"].get(timeout)) {
    auto t = drivers::detail::duration_ms(timeout, UINT32_MAX);
    if (!t)
      return fail("timeout: expected a duration like 2s, 500ms or 1m (at most 49 days), got " +
                  std::string(simdjson::minify(timeout)).substr(0, 64));
    timeout_ms = static_cast<uint32_t>(*t);
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

// A route already added that matches some path r matches too: at each
// segment equal text, or a parameter on either side.
const route* route_table::collision(const node& at, const route& r, std::size_t depth) const {
  if (depth == r.segments.size()) return at.route == no_route ? nullptr : &routes_[at.route];
  const std::string& segment = r.segments[depth];
  if (is_param(segment)) {
    for (const auto& [text, child] : at.literal)
      if (const route* hit = collision(*child, r, depth + 1)) return hit;
  } else if (auto it = at.literal.find(segment); it != at.literal.end()) {
    if (const route* hit = collision(*it->second, r, depth + 1)) return hit;
  }
  return at.param ? collision(*at.param, r, depth + 1) : nullptr;
}

status route_table::add(route r) {
  node& root = index_[{r.method, r.segments.size()}];
  if (const route* existing = collision(root, r, 0))
    return fail("route \"" + r.text + "\" collides with \"" + existing->text + "\"");
  node* at = &root;
  for (const auto& segment : r.segments) {
    std::unique_ptr<node>& next = is_param(segment) ? at->param : at->literal[segment];
    if (!next) next = std::make_unique<node>();
    at = next.get();
  }
  at->route = routes_.size();
  routes_.push_back(std::move(r));
  return status::success();
}

std::size_t route_table::find(const node& at, const std::vector<std::string>& parts, std::size_t depth) const {
  if (depth == parts.size()) return at.route;
  if (auto it = at.literal.find(parts[depth]); it != at.literal.end())
    if (auto hit = find(*it->second, parts, depth + 1); hit != no_route) return hit;
  return at.param ? find(*at.param, parts, depth + 1) : no_route;
}

std::pair<std::string_view, std::string_view> split_target(std::string_view target) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

std::optional<route_match> route_table::match(std::string_view method, std::string_view path) const {
  auto parts = split_path(path);
  auto root = index_.find({std::string(method), parts.size()});
  if (root == index_.end()) return std::nullopt;
  const std::size_t index = find(root->second, parts, 0);
  if (index == no_route) return std::nullopt;
  const route& r = routes_[index];
  route_match m;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto& seg = r.segments[i];
    if (!is_param(seg)) continue;
    auto name = seg.substr(1, seg.size() - 2);
    auto value = percent_decode_segment(parts[i]);
    if (name == r.key_param) m.key = value;
    m.params.emplace_back(std::move(name), std::move(value));
  }
  m.matched = &r;
  return m;
}

namespace {

// The query's parameters, decoded; a repeated name keeps its last value.
result<std::vector<std::pair<std::string, std::string>>> query_params(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t i = 0;
  while (i <= query.size()) {
    auto amp = query.find('&', i);
    if (amp == std::string_view::npos) amp = query.size();
    auto pair = query.substr(i, amp - i);
    i = amp + 1;
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    auto name = percent_decode(pair.substr(0, eq));
    auto value = eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    if (auto st = require_utf8(name, "a query parameter name"); !st) return fail(st.error());
    if (auto st = require_utf8(value, "the query parameter \"" + name + "\""); !st) return fail(st.error());
    bool replaced = false;
    for (auto& [n, v] : out)
      if (n == name) {
        v = std::move(value);
        replaced = true;
        break;
      }
    if (!replaced) out.emplace_back(std::move(name), std::move(value));
  }
  return out;
}

// Header names in lower case; a repeated header's values joined in order
// with ", " (RFC 9110 section 5.3), or "; " for Cookie (RFC 6265).
result<std::vector<std::pair<std::string, std::string>>> header_fields(const header_list& headers) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(headers.size());
  for (auto& [raw_name, value] : headers) {
    std::string name = raw_name;
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (auto st = require_utf8(value, "the header \"" + name + "\""); !st) return fail(st.error());
    bool joined = false;
    for (auto& [n, v] : out)
      if (n == name) {
        v += name == "cookie" ? "; " : ", ";
        v += value;
        joined = true;
        break;
      }
    if (!joined) out.emplace_back(std::move(name), value);
  }
  return out;
}

void append_object(std::string& out, const std::vector<std::pair<std::string, std::string>>& fields) {
  out.push_back('{');
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(out, fields[i].first);
    out.push_back(':');
    append_json_string(out, fields[i].second);
  }
  out.push_back('}');
}

}  // namespace

result<std::string> build_request_message(const request& req, const route_match& m) {
  auto [path, query] = split_target(req.target);
  if (auto st = require_utf8(percent_decode_segment(path), "the path"); !st) return fail(st.error());
  for (auto& [name, value] : m.params)
    if (auto st = require_utf8(value, "the path parameter \"" + name + "\""); !st) return fail(st.error());
  auto params = query_params(query);
  if (!params) return fail(params.error());
  auto headers = header_fields(req.headers);
  if (!headers) return fail(headers.error());
  std::string out;
  out.reserve(160 + req.body.size() + req.headers.size() * 32);
  out += "{\"route\":";
  append_json_string(out, m.matched->text);
  out += ",\"method\":";
  append_json_string(out, req.method);
  out += ",\"path\":";
  append_json_string(out, path);
  out += ",\"params\":";
  append_object(out, m.params);
  out += ",\"query\":";
  append_object(out, *params);
  out += ",\"headers\":";
  append_object(out, *headers);
  out += ",\"body\":";
  // application/json or any +json type (RFC 6839), in any case.
  auto media = req.header("content-type");
  media = media.substr(0, media.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  auto iequals = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
  };
  const bool json_declared =
      iequals(media, "application/json") || (media.size() >= 5 && iequals(media.substr(media.size() - 5), "+json"));
  if (req.body.empty()) {
    out += "null";
  } else {
    // Valid JSON bodies are embedded as values; a body that claims JSON
    // and is not is refused before it reaches a function, and so is a text
    // body that is not UTF-8 (a JSON string cannot carry it).
    thread_local simdjson::dom::parser parser;
    simdjson::dom::element ignored;
    auto error = parser.parse(req.body).get(ignored);
    if (!error) {
      out += req.body;
    } else if (json_declared) {
      if (error == simdjson::NUMBER_ERROR)
        return fail(
            "the request body holds a number this node cannot read (JSON numbers must fit a 64-bit "
            "integer or a double: send a larger one as a string)");
      if (error == simdjson::DEPTH_ERROR)
        return fail("the request body nests deeper than " + std::to_string(simdjson::DEFAULT_MAX_DEPTH) + " levels");
      return fail("the request body is not valid JSON (" + std::string(simdjson::error_message(error)) + ")");
    } else if (auto st = require_utf8(req.body, "the request body"); !st) {
      return fail(st.error());
    } else {
      append_json_string(out, req.body);
    }
  }
  out.push_back('}');
  return out;
}

}  // namespace flowstate::http
