// Custom drivers' kinds and configurations (custom.hpp): which package,
// what the driver gets, and which hosts it may reach.
#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>

#include "config_values.hpp"
#include "flowstate/drivers/custom.hpp"
#include "flowstate/drivers/outbound.hpp"
#include "flowstate/runtime/json_text.hpp"

namespace flowstate::drivers::custom {

namespace {

bool npm_name_char(char c) {
  return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// "@scope/name" or "name", as npm allows them (lower case).
bool valid_npm_name(const std::string& name) {
  auto part = [](std::string_view s) {
    if (s.empty() || s.size() > 214 || s[0] == '.' || s[0] == '_') return false;
    for (char c : s)
      if (!npm_name_char(c)) return false;
    return true;
  };
  if (name.empty()) return false;
  if (name[0] == '@') {
    auto slash = name.find('/');
    return slash != std::string::npos && part(std::string_view(name).substr(1, slash - 1)) &&
           part(std::string_view(name).substr(slash + 1));
  }
  return part(name);
}

// A Python module name: identifiers joined by dots.
bool valid_python_name(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.') return false;
  bool start = true;
  for (char c : name) {
    if (c == '.') {
      if (start) return false;
      start = true;
      continue;
    }
    bool letter = std::isalpha(static_cast<unsigned char>(c)) || c == '_';
    if (!letter && (start || !std::isdigit(static_cast<unsigned char>(c)))) return false;
    start = false;
  }
  return true;
}

uint16_t default_port(std::string scheme) {
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::map<std::string, uint16_t> ports = {
      {"http", 80},    {"ws", 80},         {"https", 443},       {"wss", 443},    {"mqtt", 1883},
      {"mqtts", 8883}, {"postgres", 5432}, {"postgresql", 5432}, {"redis", 6379}, {"amqp", 5672},
      {"modbus", 502}, {"smtp", 25},       {"ftp", 21}};
  auto it = ports.find(scheme);
  return it == ports.end() ? 0 : it->second;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "host", "host:port", "[v6]", "[v6]:port": false when malformed.
bool split_host_port(std::string_view text, endpoint& out) {
  std::string_view host = text, port;
  if (!text.empty() && text[0] == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return false;
    host = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      port = rest.substr(1);
    }
  } else if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    if (text.find(':') != colon) {
      host = text;  // a bare IPv6 address
    } else {
      host = text.substr(0, colon);
      port = text.substr(colon + 1);
    }
  }
  if (host.empty()) return false;
  out.host = lower(std::string(host));
  out.port = 0;
  if (!port.empty()) {
    unsigned value = 0;
    for (char c : port) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
      value = value * 10 + static_cast<unsigned>(c - '0');
      if (value > 65535) return false;
    }
    if (value == 0) return false;
    out.port = static_cast<uint16_t>(value);
  }
  return true;
}

// scheme://[user@]host[:port][/...]
void url_endpoint(std::string_view text, std::vector<endpoint>& named) {
  auto sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return;
  for (char c : text.substr(0, sep))
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return;
  auto authority = text.substr(sep + 3);
  authority = authority.substr(0, authority.find_first_of("/?#"));
  if (auto at = authority.rfind('@'); at != std::string_view::npos) authority = authority.substr(at + 1);
  endpoint e;
  if (!split_host_port(authority, e)) return;
  if (e.port == 0) e.port = default_port(std::string(text.substr(0, sep)));
  if (e.port != 0) named.push_back(std::move(e));
}

void collect(simdjson::dom::element e, std::vector<endpoint>& named) {
  std::string_view s;
  simdjson::dom::object o;
  simdjson::dom::array a;
  if (!e.get_string().get(s)) {
    url_endpoint(s, named);
  } else if (!e.get_object().get(o)) {
    std::string_view host;
    int64_t port = 0;
    if (!o["host"].get_string().get(host) && !o["port"].get_int64().get(port) && port > 0 && port < 65536) {
      endpoint ep;
      if (split_host_port(host, ep)) named.push_back({ep.host, static_cast<uint16_t>(port)});
    }
    for (auto field : o) collect(field.value, named);
  } else if (!e.get_array().get(a)) {
    for (auto item : a) collect(item, named);
  }
}

// `listen: [5020, "127.0.0.1:9000", "[::]:7000"]`: addresses, not names
// (the node binds them), each once.
status parse_listen(simdjson::dom::element value, std::vector<endpoint>& out) {
  if (outbound::public_only())
    return fail("listen: a hosted node opens no ports for drivers (a driver may connect out, to public addresses)");
  simdjson::dom::array items;
  if (value.get_array().get(items))
    return fail("listen: expected a list like [5020, \"127.0.0.1:9000\"], got " + detail::shown(value));
  for (auto item : items) {
    endpoint e;
    int64_t port = 0;
    std::string_view text;
    boost::system::error_code ec;
    if (!item.get_int64().get(port)) {
      if (port < 1 || port > 65535) return fail("listen: port " + std::to_string(port) + " is out of range (1-65535)");
      e = {"0.0.0.0", static_cast<uint16_t>(port)};
    } else if (item.get_string().get(text) || !split_host_port(text, e) || e.port == 0 ||
               (boost::asio::ip::make_address(e.host, ec), ec)) {
      return fail("listen: expected a port (5020) or an address and port (\"127.0.0.1:5020\", \"[::]:5020\"), got " +
                  detail::shown(item));
    }
    for (auto& seen : out)
      if (seen.host == e.host && seen.port == e.port)
        return fail("listen: " + detail::shown(item) + " is listed twice");
    out.push_back(std::move(e));
  }
  return status::success();
}

}  // namespace

result<std::optional<kind_name>> parse_kind(const std::string& kind) {
  kind_name k;
  if (kind.rfind("npm:", 0) == 0) {
    k.lang = language::js;
    k.package = kind.substr(4);
    if (!valid_npm_name(k.package))
      return fail("kind " + kind + ": \"" + k.package +
                  "\" is not an npm package name (lower case, like npm:flowstate-modbus or npm:@acme/modbus)");
  } else if (kind.rfind("python:", 0) == 0) {
    k.lang = language::python;
    k.package = kind.substr(7);
    if (!valid_python_name(k.package))
      return fail("kind " + kind + ": \"" + k.package +
                  "\" is not a Python module name (like python:acme_graphite, found in vendor/)");
  } else {
    return std::optional<kind_name>();
  }
  return std::optional<kind_name>(std::move(k));
}

result<driver_config> parse_config(const std::string& config_json) {
  simdjson::dom::parser parser;
  auto object = detail::config_object(parser, config_json);
  if (!object) return fail(object.error());
  driver_config c;
  std::string rest;
  for (auto field : *object) {
    const std::string_view name = field.key;
    if (name == "kind") continue;
    if (name == "hosts") {
      simdjson::dom::array hosts;
      if (field.value.get_array().get(hosts))
        return fail("hosts: expected a list like [\"10.0.0.5:502\", \"api.example.com\"], got " +
                    detail::shown(field.value));
      for (auto h : hosts) {
        std::string_view text;
        endpoint e;
        if (h.get_string().get(text) || !split_host_port(text, e))
          return fail("hosts: expected \"host\" or \"host:port\" (\"[::1]:80\" for IPv6), got " + detail::shown(h));
        c.named.push_back(std::move(e));
      }
      continue;
    }
    if (name == "listen") {
      if (auto st = parse_listen(field.value, c.listen); !st) return fail(st.error());
      continue;
    }
    if (name == "memory" || name == "concurrency") {
      int64_t n = 0;
      const bool memory = name == "memory";
      if (field.value.get_int64().get(n) || n < (memory ? 32 : 1) || n > (memory ? 4096 : 256))
        return fail(std::string(name) + (memory ? ": expected MiB from 32 to 4096" : ": expected 1 to 256") + ", got " +
                    detail::shown(field.value));
      (memory ? c.memory_mb : c.concurrency) = static_cast<uint32_t>(n);
      continue;
    }
    if (name == "timeout") {
      auto ms = detail::duration_ms(field.value, 3600000);
      if (!ms || *ms < 100)
        return fail("timeout: expected a duration from 100ms to 1h like \"30s\", got " + detail::shown(field.value));
      c.timeout_ms = static_cast<uint32_t>(*ms);
      continue;
    }
    if (name == "retry") {
      if (auto st = detail::parse_retry(field.value, c.retry); !st) return fail(st.error());
      continue;
    }
    collect(field.value, c.named);
    rest += (rest.empty() ? "" : ",") + json_quote(name) + ":" + simdjson::minify(field.value);
  }
  c.driver_json = "{" + rest + "}";
  return c;
}

std::string check_named(const driver_config& c, const std::string& host_in, uint16_t port) {
  endpoint wanted;
  if (!split_host_port(host_in, wanted)) return "\"" + host_in + "\" is not a host name or address";
  for (auto& e : c.named)
    if (e.host == wanted.host && (e.port == 0 || e.port == port)) return {};
  std::string list;
  for (auto& e : c.named)
    list += (list.empty() ? "" : ", ") + e.host + (e.port ? ":" + std::to_string(e.port) : std::string());
  return wanted.host + ":" + std::to_string(port) +
         " is not named by the driver's configuration (it names: " + (list.empty() ? std::string("nothing") : list) +
         "; list more under hosts:)";
}

std::string check_address(const std::string& host, const std::string& address_text) {
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(address_text, ec);
  if (ec) return address_text + " is not an address";
  if (address.is_v6() && address.to_v6().is_v4_mapped())
    address = boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
  // A hosted node: public addresses only, named or not.
  if (auto refused = outbound::check(host, address.to_string()); !refused.empty()) return refused;
  const bool special = outbound::is_internal(address.to_string());
  if (!special) return {};
  // Named as that address itself (not through a name that resolves to it).
  endpoint e;
  if (split_host_port(host, e)) {
    auto named = boost::asio::ip::make_address(e.host, ec);
    if (!ec && named == address) return {};
  }
  return host + " resolves to " + address.to_string() +
         ", a loopback, private or link-local address: a driver reaches one only when its configuration names "
         "the address itself";
}

}  // namespace flowstate::drivers::custom
