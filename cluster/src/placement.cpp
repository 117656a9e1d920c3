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
  std::string out = "{\"first\":" + std::to_string(r.first) + ",\"end\":" + std::to_string(r.end) +
                    ",\"node\":" + json_string(r.node) + ",\"storeId\":" + json_string(r.store_id) +
                    ",\"epoch\":" + std::to_string(r.epoch);
  if (!r.replicas.empty() || !r.in_sync.empty()) {
    out += ",\"replicas\":[";
    for (std::size_t i = 0; i < r.replicas.size(); ++i)
      out += (i ? ",{\"node\":" : "{\"node\":") + json_string(r.replicas[i].node) +
             ",\"storeId\":" + json_string(r.replicas[i].store_id) + "}";
    out += "],\"inSync\":[";
    for (std::size_t i = 0; i < r.in_sync.size(); ++i) out += (i ? "," : "") + json_string(r.in_sync[i]);
    out += "]";
  }
  if (!r.adopt_log.empty())
    out += ",\"adopt\":{\"log\":" + json_string(r.adopt_log) + ",\"index\":" + std::to_string(r.adopt_index) + "}";
  return out + "}";
}

bool range_owner::is_replica(const std::string& name) const {
  return std::any_of(replicas.begin(), replicas.end(), [&](const replica& r) { return r.node == name; });
}

bool range_owner::is_in_sync(const std::string& name) const {
  return std::find(in_sync.begin(), in_sync.end(), name) != in_sync.end();
}

result<range_owner> decode_range(std::string_view json) {
  return parse_object<range_owner>(json, "placement record", [](simdjson::dom::object o, range_owner& r) {
    uint64_t first = 0, end = 0;
    if (auto p = read_uint(o, "first", first)) return p;
    if (auto p = read_uint(o, "end", end)) return p;
    if (auto p = read_uint(o, "epoch", r.epoch)) return p;
    if (auto p = read_string(o, "node", r.node, true)) return p;
    if (auto p = read_string(o, "storeId", r.store_id, true)) return p;
    simdjson::dom::array replicas, in_sync;
    if (!o["replicas"].get_array().get(replicas))
      for (auto e : replicas) {
        simdjson::dom::object ro;
        if (e.get_object().get(ro)) return std::optional<std::string>("a replica is not an object");
        replica rep;
        if (auto p = read_string(ro, "node", rep.node, true)) return p;
        if (auto p = read_string(ro, "storeId", rep.store_id, true)) return p;
        r.replicas.push_back(std::move(rep));
      }
    simdjson::dom::object adopt;
    if (!o["adopt"].get_object().get(adopt)) {
      if (auto p = read_string(adopt, "log", r.adopt_log, true)) return p;
      if (auto p = read_uint(adopt, "index", r.adopt_index)) return p;
    }
    if (!o["inSync"].get_array().get(in_sync))
      for (auto e : in_sync) {
        std::string_view name;
        if (e.get_string().get(name)) return std::optional<std::string>("\"inSync\" holds a non-string");
        r.in_sync.emplace_back(name);
      }
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

range_owner without_follower(const range_owner& r, const std::string& node) {
  auto out = r;
  std::erase_if(out.replicas, [&](const replica& f) { return f.node == node; });
  if (node != r.node) std::erase(out.in_sync, node);
  return out;
}

std::vector<range_owner> split_for_move(const range_owner& r, uint32_t first, uint32_t end, const std::string& to,
                                        const std::string& to_store, bool transfer, const std::string& adopt_log,
                                        uint64_t adopt_index) {
  std::vector<range_owner> out;
  const auto base = without_follower(r, to);
  auto part = [&](uint32_t a, uint32_t b) {
    auto kept = transfer ? r : base;
    kept.adopt_log.clear();
    kept.adopt_index = 0;
    kept.first = a;
    kept.end = b;
    return kept;
  };
  if (r.first < first) out.push_back(part(r.first, first));
  range_owner moved{first, end, to, to_store, r.epoch + 1, base.replicas, {}, adopt_log, adopt_index};
  // A transfer's source keeps its copy, a follower's from then on.
  if (transfer) moved.replicas.push_back({r.node, r.store_id});
  if (!r.in_sync.empty()) {
    moved.in_sync = {to};
    for (auto& name : base.in_sync)
      if (name != r.node || transfer) moved.in_sync.push_back(name);
  }
  out.push_back(std::move(moved));
  if (end < r.end) out.push_back(part(end, r.end));
  return out;
}

std::string encode_config(const cluster_config& c) {
  return "{\"replication\":" + std::to_string(c.replication) + ",\"minInSync\":" + std::to_string(c.min_in_sync) + "}";
}

result<cluster_config> decode_config(std::string_view json) {
  return parse_object<cluster_config>(json, "cluster config", [](simdjson::dom::object o, cluster_config& c) {
    uint64_t replication = 0, min_in_sync = 0;
    if (auto p = read_uint(o, "replication", replication)) return p;
    if (auto p = read_uint(o, "minInSync", min_in_sync)) return p;
    if (replication < 1 || replication > 7 || min_in_sync < 1 || min_in_sync > replication)
      return std::optional<std::string>("expected 1 <= minInSync <= replication <= 7");
    c.replication = static_cast<uint32_t>(replication);
    c.min_in_sync = static_cast<uint32_t>(min_in_sync);
    return std::optional<std::string>();
  });
}

cluster_config effective_config(const cluster_config& set, std::size_t nodes) {
  const auto count = static_cast<uint32_t>(std::max<std::size_t>(nodes, 1));
  if (set.replication == 0) {
    // Unset: three copies from three nodes, two of them in sync for a
    // sync commit; with two nodes both; one node alone has one.
    if (count >= 3) return {3, 2};
    return {count, count};
  }
  cluster_config c = set;
  c.replication = std::min<uint32_t>(c.replication, count);
  return c;
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

namespace flowstate::cluster {

namespace {

bool registered_as(const std::map<std::string, node_info>& nodes, const std::string& name, const std::string& store) {
  auto it = nodes.find(name);
  return it != nodes.end() && it->second.store_id == store;
}

}  // namespace

std::optional<range_owner> failover(const range_owner& r, const std::map<std::string, node_info>& nodes) {
  // Registered under its name with another data directory (an empty one):
  // it holds nothing of the range, which fails over as if it were gone.
  if (registered_as(nodes, r.node, r.store_id)) return std::nullopt;
  std::vector<std::string> candidates;
  for (auto& rep : r.replicas)
    if (rep.node != r.node && r.is_in_sync(rep.node) && registered_as(nodes, rep.node, rep.store_id))
      candidates.push_back(rep.node);
  if (candidates.empty()) return std::nullopt;
  std::sort(candidates.begin(), candidates.end());
  const auto& chosen = candidates.front();
  range_owner next = r;
  next.node = chosen;
  next.epoch = r.epoch + 1;
  next.adopt_log.clear();  // the followers' copies are of the old leader's log, not a move's
  next.adopt_index = 0;
  next.replicas.clear();
  for (auto& rep : r.replicas)
    if (rep.node == chosen)
      next.store_id = rep.store_id;
    else if (rep.node != r.node)
      next.replicas.push_back(rep);
  next.in_sync = {chosen};
  for (auto& n : r.in_sync)
    if (n != chosen && n != r.node) next.in_sync.push_back(n);
  return next;
}

std::optional<range_owner> with_replicas(const range_owner& r, const std::map<std::string, node_info>& nodes,
                                         const cluster_config& config, const std::set<std::string>& avoid,
                                         const std::map<std::string, uint32_t>& copies) {
  if (!registered_as(nodes, r.node, r.store_id)) return std::nullopt;
  const std::size_t want = config.replication > 0 ? config.replication - 1 : 0;
  range_owner next = r;
  auto drop = [&](const std::string& name) {
    std::erase_if(next.replicas, [&](const replica& rep) { return rep.node == name; });
    std::erase(next.in_sync, name);
  };
  if (want == 0 && r.replicas.empty()) return std::nullopt;  // no replication: as before
  if (next.in_sync.empty() || next.in_sync.front() != r.node) {
    std::erase(next.in_sync, r.node);
    next.in_sync.insert(next.in_sync.begin(), r.node);
  }
  // The leader's own name among its followers (a stale record): out.
  std::erase_if(next.replicas, [&](const replica& rep) { return rep.node == r.node; });
  // Back with another data directory: its copy is gone; a new one is built.
  for (auto& rep : r.replicas) {
    auto it = nodes.find(rep.node);
    if (it != nodes.end() && it->second.store_id != rep.store_id) {
      drop(rep.node);
      next.replicas.push_back({rep.node, it->second.store_id});
    }
  }
  std::vector<std::string> free;
  for (auto& [name, n] : nodes)
    if (name != r.node && !avoid.count(name) && !next.is_replica(name)) free.push_back(name);
  auto load = [&](const std::string& n) {
    auto it = copies.find(n);
    return it == copies.end() ? 0u : it->second;
  };
  std::sort(free.begin(), free.end(),
            [&](const std::string& a, const std::string& b) { return load(a) != load(b) ? load(a) < load(b) : a < b; });
  // A follower whose node is gone (or draining), when another is free.
  for (auto& rep : std::vector<replica>(next.replicas)) {
    if (free.empty()) break;
    if (nodes.count(rep.node) && !avoid.count(rep.node)) continue;
    drop(rep.node);
  }
  while (next.replicas.size() < want && !free.empty()) {
    auto name = free.front();
    free.erase(free.begin());
    next.replicas.push_back({name, nodes.at(name).store_id});
  }
  // Too many: out-of-sync ones go first, then the last added.
  while (next.replicas.size() > want) {
    auto victim = std::find_if(next.replicas.rbegin(), next.replicas.rend(),
                               [&](const replica& rep) { return !next.is_in_sync(rep.node); });
    drop(victim != next.replicas.rend() ? victim->node : next.replicas.back().node);
  }
  if (next == r) return std::nullopt;
  return next;
}

}  // namespace flowstate::cluster
