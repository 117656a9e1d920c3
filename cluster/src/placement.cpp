#include "flowstate/cluster/placement.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <tuple>

namespace flowstate::cluster {

namespace {

// JSON string escaping for the few fields written here (names, addresses,
// hex ids): quotes, backslashes and control characters.
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

template <class T>
result<T> parse_object(std::string_view json, std::string_view what,
                       const std::function<std::optional<std::string>(simdjson::dom::object, T&)>& fill) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (parser.parse(json.data(), json.size()).get(doc) || doc.get_object().get(obj))
    return fail(std::string(what) + ": not a JSON object: " + std::string(json.substr(0, 200)));
  T out;
  if (auto problem = fill(obj, out)) return fail(std::string(what) + ": " + *problem);
  return out;
}

std::optional<std::string> read_string(simdjson::dom::object o, const char* field, std::string& out, bool required) {
  std::string_view v;
  auto e = o[field];
  if (e.error() == simdjson::NO_SUCH_FIELD)
    return required ? std::optional<std::string>(std::string("no \"") + field + "\"") : std::nullopt;
  if (e.get_string().get(v)) return std::string("\"") + field + "\" is not a string";
  out = std::string(v);
  return std::nullopt;
}

std::optional<std::string> read_uint(simdjson::dom::object o, const char* field, uint64_t& out) {
  if (o[field].get_uint64().get(out)) return std::string("\"") + field + "\" is not an unsigned integer";
  return std::nullopt;
}

}  // namespace

std::string encode_node(const node_info& n) {
  return "{\"name\":" + json_string(n.name) + ",\"storeId\":" + json_string(n.store_id) +
         ",\"incarnation\":" + json_string(n.incarnation) + ",\"peer\":" + json_string(n.peer) +
         ",\"http\":" + json_string(n.http) + ",\"admin\":" + json_string(n.admin) + "}";
}

result<node_info> decode_node(std::string_view json) {
  return parse_object<node_info>(json, "node record", [](simdjson::dom::object o, node_info& n) {
    for (auto [field, out, required] :
         {std::tuple{"name", &n.name, true}, std::tuple{"storeId", &n.store_id, true},
          std::tuple{"incarnation", &n.incarnation, true}, std::tuple{"peer", &n.peer, false},
          std::tuple{"http", &n.http, false}, std::tuple{"admin", &n.admin, false}})
      if (auto p = read_string(o, field, *out, required)) return p;
    return std::optional<std::string>();
  });
}

std::string encode_range(const range_owner& r) {
  return "{\"first\":" + std::to_string(r.first) + ",\"end\":" + std::to_string(r.end) +
         ",\"node\":" + json_string(r.node) + ",\"storeId\":" + json_string(r.store_id) +
         ",\"epoch\":" + std::to_string(r.epoch) + "}";
}

result<range_owner> decode_range(std::string_view json) {
  return parse_object<range_owner>(json, "placement record", [](simdjson::dom::object o, range_owner& r) {
    uint64_t first = 0, end = 0;
    if (auto p = read_uint(o, "first", first)) return p;
    if (auto p = read_uint(o, "end", end)) return p;
    if (auto p = read_uint(o, "epoch", r.epoch)) return p;
    if (auto p = read_string(o, "node", r.node, true)) return p;
    if (auto p = read_string(o, "storeId", r.store_id, true)) return p;
    if (first >= end || end > UINT32_MAX)
      return std::optional<std::string>("range [" + std::to_string(first) + ", " + std::to_string(end) +
                                        ") is empty or too large");
    r.first = static_cast<uint32_t>(first);
    r.end = static_cast<uint32_t>(end);
    return std::optional<std::string>();
  });
}

const range_owner* placement::owner_of(uint32_t group) const {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), group,
                             [](uint32_t g, const range_owner& r) { return g < r.first; });
  if (it == ranges.begin()) return nullptr;
  --it;
  return group < it->end ? &*it : nullptr;
}

std::optional<std::string> placement::problem(uint32_t groups) const {
  uint32_t next = 0;
  for (const auto& r : ranges) {
    auto name = "[" + std::to_string(r.first) + ", " + std::to_string(r.end) + ") on " + r.node;
    if (r.first > next)
      return "key groups [" + std::to_string(next) + ", " + std::to_string(r.first) + ") have no owner";
    if (r.first < next) return "range " + name + " overlaps the range before it";
    if (r.end > groups) return "range " + name + " goes past the " + std::to_string(groups) + " key groups";
    next = r.end;
  }
  if (next < groups) return "key groups [" + std::to_string(next) + ", " + std::to_string(groups) + ") have no owner";
  return std::nullopt;
}

std::vector<std::pair<std::string, uint32_t>> placement::groups_per_node() const {
  std::map<std::string, uint32_t> count;
  for (const auto& r : ranges) count[r.node] += r.end - r.first;
  return {count.begin(), count.end()};
}

std::vector<range_owner> split_for_move(const range_owner& r, uint32_t first, uint32_t end, const std::string& to,
                                        const std::string& to_store) {
  std::vector<range_owner> out;
  if (r.first < first) out.push_back({r.first, first, r.node, r.store_id, r.epoch});
  out.push_back({first, end, to, to_store, r.epoch + 1});
  if (end < r.end) out.push_back({end, r.end, r.node, r.store_id, r.epoch});
  return out;
}

std::vector<move_request> plan_even(const placement& p, const std::vector<std::string>& nodes, uint32_t groups) {
  std::vector<move_request> out;
  if (nodes.empty()) return out;
  std::map<std::string, int64_t> count;
  for (auto& n : nodes) count[n] = 0;
  for (auto& r : p.ranges)
    if (count.count(r.node)) count[r.node] += r.end - r.first;
  // Who keeps one more: those holding the most now (fewer moves).
  std::vector<std::string> order(nodes);
  std::sort(order.begin(), order.end(), [&](const std::string& a, const std::string& b) {
    return count[a] != count[b] ? count[a] > count[b] : a < b;
  });
  std::map<std::string, int64_t> want;
  const int64_t base = groups / order.size(), extra = groups % order.size();
  for (std::size_t i = 0; i < order.size(); ++i) want[order[i]] = base + (static_cast<int64_t>(i) < extra ? 1 : 0);
  // Pieces to give away, from the end of each range: every range of a node
  // outside `nodes`, then what each node holds above its share.
  struct piece {
    uint32_t first, end;
  };
  std::vector<piece> pieces;
  std::map<std::string, int64_t> surplus;
  for (auto& [n, c] : count) surplus[n] = c - want[n];
  for (auto it = p.ranges.rbegin(); it != p.ranges.rend(); ++it) {
    if (!count.count(it->node)) {
      pieces.push_back({it->first, it->end});
      continue;
    }
    auto& extra_here = surplus[it->node];
    if (extra_here <= 0) continue;
    const auto take = static_cast<uint32_t>(std::min<int64_t>(extra_here, it->end - it->first));
    pieces.push_back({it->end - take, it->end});
    extra_here -= take;
  }
  // Given, in order, to the nodes below their share.
  for (auto& pc : pieces) {
    uint32_t at = pc.first;
    while (at < pc.end) {
      std::string to;
      for (auto& n : order)
        if (count[n] < want[n] && (to.empty() || count[n] - want[n] < count[to] - want[to])) to = n;
      if (to.empty()) break;
      const auto take = static_cast<uint32_t>(std::min<int64_t>(want[to] - count[to], pc.end - at));
      out.push_back({at, at + take, to});
      count[to] += take;
      at += take;
    }
  }
  return out;
}

std::string encode_deploy(const deploy_record& d) {
  return "{\"revision\":" + json_string(d.revision) + ",\"epoch\":" + std::to_string(d.epoch) +
         ",\"from\":" + json_string(d.from) + "}";
}

result<deploy_record> decode_deploy(std::string_view json) {
  return parse_object<deploy_record>(json, "deploy record", [](simdjson::dom::object o, deploy_record& d) {
    if (auto p = read_string(o, "revision", d.revision, true)) return p;
    if (auto p = read_uint(o, "epoch", d.epoch)) return p;
    return read_string(o, "from", d.from, false);
  });
}

std::string encode_report(const deploy_report& r) {
  return "{\"epoch\":" + std::to_string(r.epoch) + ",\"revision\":" + json_string(r.revision) +
         ",\"error\":" + json_string(r.error) + "}";
}

result<deploy_report> decode_report(std::string_view json) {
  return parse_object<deploy_report>(json, "deploy report", [](simdjson::dom::object o, deploy_report& r) {
    if (auto p = read_uint(o, "epoch", r.epoch)) return p;
    if (auto p = read_string(o, "revision", r.revision, false)) return p;
    return read_string(o, "error", r.error, false);
  });
}

std::string encode_move(const move_request& m) {
  char pause[32];
  std::snprintf(pause, sizeof pause, "%.3f", m.longest_pause_ms);
  return "{\"first\":" + std::to_string(m.first) + ",\"end\":" + std::to_string(m.end) +
         ",\"to\":" + json_string(m.to) + ",\"state\":" + json_string(m.state) +
         ",\"message\":" + json_string(m.message) + ",\"longestPauseMs\":" + pause + "}";
}

result<move_request> decode_move(std::string_view json) {
  return parse_object<move_request>(json, "move request", [](simdjson::dom::object o, move_request& m) {
    uint64_t first = 0, end = 0;
    if (auto p = read_uint(o, "first", first)) return p;
    if (auto p = read_uint(o, "end", end)) return p;
    if (auto p = read_string(o, "to", m.to, true)) return p;
    if (auto p = read_string(o, "state", m.state, false)) return p;
    if (auto p = read_string(o, "message", m.message, false)) return p;
    double pause = 0;
    if (!o["longestPauseMs"].get_double().get(pause)) m.longest_pause_ms = pause;
    if (first >= end || end > UINT32_MAX)
      return std::optional<std::string>("groups [" + std::to_string(first) + ", " + std::to_string(end) +
                                        ") are empty or too many");
    m.first = static_cast<uint32_t>(first);
    m.end = static_cast<uint32_t>(end);
    return std::optional<std::string>();
  });
}

placement initial_placement(std::vector<node_info> nodes, uint32_t groups) {
  placement p;
  if (nodes.empty() || groups == 0) return p;
  std::sort(nodes.begin(), nodes.end(), [](const node_info& a, const node_info& b) { return a.name < b.name; });
  const auto n = static_cast<uint32_t>(std::min<std::size_t>(nodes.size(), groups));
  uint32_t first = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t size = groups / n + (i < groups % n ? 1 : 0);
    p.ranges.push_back({first, first + size, nodes[i].name, nodes[i].store_id, 1});
    first += size;
  }
  return p;
}

}  // namespace flowstate::cluster
