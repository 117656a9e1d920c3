#include "flowstate/drivers/http_post.hpp"

#include <simdjson.h>

#include <cctype>

#include "config_values.hpp"
#include "flowstate/runtime/decimal.hpp"

namespace flowstate::drivers::http_post {

namespace {

constexpr uint64_t max_timeout_ms = 300000;
constexpr uint64_t max_retry_delay_ms = 24ull * 3600 * 1000;

bool token_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// scheme://host[:port]/rest, host and port literal.
status parse_url(std::string_view url, config& c) {
  std::string_view rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    c.tls = true;
    rest = url.substr(8);
  } else {
    return fail("url: expected http://host/path or https://host/path, got \"" + std::string(url.substr(0, 64)) + "\"");
  }
  auto slash = rest.find_first_of("/?");
  auto authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view("/") : rest.substr(slash);
  if (authority.find("{{") != std::string_view::npos)
    return fail("url: the host cannot be a template (placeholders go in the path and query)");
  if (authority.find('@') != std::string_view::npos)
    return fail("url: credentials in the URL are not supported: send them in a header");
  std::string_view host = authority, port = c.tls ? "443" : "80";
  if (!authority.empty() && authority.front() == '[') {
    auto end = authority.find(']');
    if (end == std::string_view::npos) return fail("url: unclosed '[' in the host");
    host = authority.substr(1, end - 1);
    if (end + 1 < authority.size()) {
      if (authority[end + 1] != ':') return fail("url: expected ':' and a port after the IPv6 address");
      port = authority.substr(end + 2);
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  auto port_number = parse_decimal<uint32_t>(port);
  if (host.empty()) return fail("url: no host");
  if (!port_number || *port_number == 0 || *port_number > 65535)
    return fail("url: the port must be a number from 1 to 65535, got \"" + std::string(port) + "\"");
  for (char ch : host)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == ':' || ch == '_'))
      return fail("url: the host \"" + std::string(host) + "\" has a character a host name cannot have");
  c.host = std::string(host);
  c.port = std::string(port);
  for (char ch : path)
    if (static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f)
      return fail("url: spaces and control characters must be percent-encoded in the path");
  auto t = parse_template(path);
  if (!t) return fail("url: " + t.error());
  c.target = std::move(*t);
  return status::success();
}

void percent_encode(std::string& out, std::string_view s) {
  static const char hex[] = "0123456789ABCDEF";
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
}

}  // namespace

result<template_text> parse_template(std::string_view s) {
  template_text out;
  std::size_t at = 0;
  while (at < s.size()) {
    auto open = s.find("{{", at);
    if (open == std::string_view::npos) {
      out.push_back({piece::what::text, std::string(s.substr(at))});
      break;
    }
    if (open > at) out.push_back({piece::what::text, std::string(s.substr(at, open - at))});
    auto close = s.find("}}", open + 2);
    if (close == std::string_view::npos) return fail("\"{{\" at offset " + std::to_string(open) + " is not closed");
    auto inner = s.substr(open + 2, close - open - 2);
    while (!inner.empty() && inner.front() == ' ') inner.remove_prefix(1);
    while (!inner.empty() && inner.back() == ' ') inner.remove_suffix(1);
    if (inner == "key")
      out.push_back({piece::what::key, ""});
    else if (inner == "id")
      out.push_back({piece::what::id, ""});
    else if (!inner.empty() && inner.front() == '/')
      out.push_back({piece::what::pointer, std::string(inner)});
    else
      return fail("{{" + std::string(inner) + "}}: expected {{key}}, {{id}} or a JSON pointer like {{/deviceId}}");
    at = close + 2;
  }
  return out;
}

result<config> parse(std::string_view config_json) {
  simdjson::dom::parser parser;
  auto parsed_doc = detail::config_object(parser, config_json);
  if (!parsed_doc) return fail(parsed_doc.error());
  simdjson::dom::object doc = *parsed_doc;
  config c;
  bool has_url = false;
  for (auto field : doc) {
    const std::string_view name = field.key;
    if (name == "kind") continue;
    if (name == "url") {
      std::string_view url;
      if (field.value.get_string().get(url)) return fail("url: expected a string, got " + detail::shown(field.value));
      if (auto st = parse_url(url, c); !st) return fail(st.error());
      has_url = true;
    } else if (name == "method") {
      std::string_view m;
      if (field.value.get_string().get(m) || (m != "POST" && m != "PUT" && m != "PATCH"))
        return fail("method: expected POST, PUT or PATCH, got " + detail::shown(field.value));
      c.method = std::string(m);
    } else if (name == "headers") {
      simdjson::dom::object h;
      if (field.value.get_object().get(h))
        return fail("headers: expected a mapping of header names to values, got " + detail::shown(field.value));
      for (auto header : h) {
        const std::string hname(header.key);
        if (hname.empty() || !std::all_of(hname.begin(), hname.end(), token_char))
          return fail("headers: \"" + hname + "\" is not a valid header name");
        std::string_view value;
        if (header.value.get_string().get(value))
          return fail("headers." + hname + ": expected a string, got " + detail::shown(header.value));
        if (value.find_first_of("\r\n") != std::string_view::npos)
          return fail("headers." + hname + ": a header value cannot hold a line break");
        auto t = parse_template(value);
        if (!t) return fail("headers." + hname + ": " + t.error());
        c.headers.emplace_back(hname, std::move(*t));
      }
    } else if (name == "body") {
      std::string_view p;
      if (field.value.get_string().get(p) || (!p.empty() && p.front() != '/'))
        return fail("body: expected a JSON pointer into the output like \"/alert\" (or \"\" for all of it), got " +
                    detail::shown(field.value));
      c.body_pointer = std::string(p);
    } else if (name == "timeout") {
      auto ms = detail::duration_ms(field.value, max_timeout_ms);
      if (!ms) return fail("timeout: expected a duration up to 5m like 10s, got " + detail::shown(field.value));
      c.timeout_ms = *ms;
    } else if (name == "concurrency") {
      int64_t n;
      if (field.value.get_int64().get(n) || n < 1 || n > 256)
        return fail("concurrency: expected a whole number from 1 to 256, got " + detail::shown(field.value));
      c.concurrency = static_cast<uint32_t>(n);
    } else if (name == "retry") {
      if (auto st = detail::parse_retry(field.value, c.retry); !st) return fail(st.error());
    } else {
      return fail("unknown field \"" + std::string(name) +
                  "\" (http.Post takes url, method, headers, body, timeout, concurrency and retry)");
    }
  }
  if (!has_url) return fail("url: missing (where to send each output, like https://hooks.example.com/alerts)");
  return c;
}

result<std::string> render(const template_text& t, const sinks::delivery& d, bool url) {
  std::string out;
  std::optional<simdjson::dom::parser> parser;
  simdjson::dom::element doc;
  auto add = [&](std::string_view s) {
    if (url)
      percent_encode(out, s);
    else
      out += s;
  };
  for (auto& p : t) {
    switch (p.kind) {
      case piece::what::text:
        out += p.text;
        break;
      case piece::what::key:
        add(d.key);
        break;
      case piece::what::id:
        add(d.id);
        break;
      case piece::what::pointer: {
        if (!parser) {
          parser.emplace();
          if (parser->parse(d.payload.data(), d.payload.size()).get(doc)) return fail("the output is not JSON");
        }
        simdjson::dom::element v;
        if (doc.at_pointer(p.text).get(v)) return fail("the output has nothing at " + p.text);
        std::string_view s;
        if (!v.get_string().get(s))
          add(s);
        else
          add(simdjson::minify(v));
        break;
      }
    }
  }
  if (!url && out.find_first_of("\r\n") != std::string::npos) return fail("a value would put a line break in a header");
  return out;
}

result<std::string> body_of(const config& c, const sinks::delivery& d) {
  if (c.body_pointer.empty()) return d.payload;
  simdjson::dom::parser parser;
  simdjson::dom::element doc, v;
  if (parser.parse(d.payload.data(), d.payload.size()).get(doc)) return fail("the output is not JSON");
  if (doc.at_pointer(c.body_pointer).get(v)) return fail("body: the output has nothing at " + c.body_pointer);
  return std::string(simdjson::minify(v));
}

sinks::outcome classify(unsigned status, std::string_view retry_after, std::string_view body) {
  sinks::outcome o;
  std::string shown(body.substr(0, 512));
  for (auto& c : shown)
    if (static_cast<unsigned char>(c) < ' ' && c != '\n') c = ' ';
  o.answer = "HTTP " + std::to_string(status) + (shown.empty() ? "" : ": " + shown);
  if (status >= 200 && status < 300) {
    o.v = sinks::verdict::delivered;
  } else if (status == 408 || status == 425 || status == 429 || status >= 500) {
    o.v = sinks::verdict::retry;
    if (auto s = parse_decimal<uint32_t>(retry_after); s && *s <= 86400) o.retry_after_ms = int64_t{*s} * 1000;
  } else {
    o.v = sinks::verdict::permanent;
  }
  return o;
}

}  // namespace flowstate::drivers::http_post
