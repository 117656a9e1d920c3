// The admin API's flows answer (GET /api/v1/projects/{p}/flows): every
// flow's blocks with their statistics. In a cluster each node counts the
// executions it ran; the node asked adds up every node's counts, so the UI
// shows the whole cluster's statistics from any node.
#include <simdjson.h>

#include <cstdio>
#include <map>
#include <utility>

#include "block_stats.hpp"
#include "engine_impl.hpp"
#include "peers.hpp"

namespace flowstate::engine_detail {
namespace {

using block_counts = std::map<std::pair<std::string, std::string>, stats_counts>;  // by (flow, block id)

void optional_string(std::string& out, const char* name, const std::string& value) {
  out += ",\"";
  out += name;
  out += "\":";
  if (value.empty())
    out += "null";
  else
    http::append_json_string(out, value);
}

void stats_json(std::string& out, const stats_counts& s) {
  out += ",\"stats\":{\"executions\":{";
  bool first = true;
  for (std::size_t i = 0; i < outcome_names.size(); ++i) {
    auto n = s.executions[i];
    if (n == 0 && i != 0) continue;
    if (!first) out += ',';
    first = false;
    http::append_json_string(out, outcome_names[i]);
    out += ':' + std::to_string(n);
  }
  uint64_t timed = 0;
  for (auto n : s.durations) timed += n;
  char numbers[160];
  std::snprintf(numbers, sizeof numbers, "},\"p50Ms\":%g,\"p99Ms\":%g,\"meanMs\":%g}", s.quantile_ms(0.5),
                s.quantile_ms(0.99), timed > 0 ? double(s.duration_sum_ns) / 1e6 / double(timed) : -1.0);
  out += numbers;
}

// A node's answer to the "stats" question: [[flow, block, [counts...]], ...]
// with the counts in stats_counts' order (executions, durations, sum).
status add_counts(std::string_view answer, block_counts& into) {
  simdjson::dom::parser parser;
  simdjson::dom::array rows;
  if (parser.parse(answer).get_array().get(rows)) return fail("not a JSON array");
  for (auto row : rows) {
    std::string_view flow, block;
    simdjson::dom::array numbers;
    if (row.at(0).get(flow) || row.at(1).get(block) || row.at(2).get(numbers))
      return fail("a row is not [flow, block, [...]]");
    stats_counts c;
    std::size_t i = 0;
    for (auto n : numbers) {
      uint64_t v = 0;
      if (n.get(v)) return fail("a count is not a whole number");
      if (i < c.executions.size())
        c.executions[i] = v;
      else if (i < c.executions.size() + c.durations.size())
        c.durations[i - c.executions.size()] = v;
      else if (i == c.executions.size() + c.durations.size())
        c.duration_sum_ns = v;
      ++i;
    }
    if (i != c.executions.size() + c.durations.size() + 1) return fail("a row has the wrong number of counts");
    into[{std::string(flow), std::string(block)}].add(c);
  }
  return status::success();
}

}  // namespace

result<std::string> engine_impl::local_stats_json(const std::string& name) const {
  auto found = active_named(name);
  if (!found) return fail(found.error());
  std::string out = "[";
  for (const auto& flow : (*found)->flows)
    for (const auto& block : flow.blocks) {
      if (!block.stats) continue;
      stats_counts c;
      c.add(*block.stats);
      if (out.size() > 1) out += ',';
      out += '[';
      http::append_json_string(out, flow.name);
      out += ',';
      http::append_json_string(out, block.id);
      out += ",[";
      for (auto n : c.executions) out += std::to_string(n) + ',';
      for (auto n : c.durations) out += std::to_string(n) + ',';
      out += std::to_string(c.duration_sum_ns) + "]]";
    }
  return out + "]";
}

result<std::string> engine_impl::flows_json(const std::string& name) const {
  auto found = active_named(name);
  if (!found) return fail(found.error());
  const project_rt& rt = **found;
  block_counts counts;
  for (const auto& flow : rt.flows)
    for (const auto& block : flow.blocks)
      if (block.stats) counts[{flow.name, block.id}].add(*block.stats);
  // In a cluster: every other node's counts too; a node that does not
  // answer is named, so a partial sum is never shown as the whole.
  std::vector<std::string> missing;
  std::size_t nodes = 1;
  if (peers_ && core_.has_gate.load())
    for (auto& node : peers_->connected_names()) {
      auto r = peers_->ask(node, {"stats", {name}}, 5000);
      if (r && r->status == 200 && add_counts(r->body, counts))
        ++nodes;
      else
        missing.push_back(node);
    }
  std::string out = "{\"project\":";
  http::append_json_string(out, rt.name);
  out += ",\"revision\":";
  http::append_json_string(out, rt.revision);
  out += ",\"statsNodes\":" + std::to_string(nodes) + ",\"statsMissing\":[";
  for (std::size_t i = 0; i < missing.size(); ++i) {
    if (i) out += ',';
    http::append_json_string(out, missing[i]);
  }
  out += "],\"flows\":[";
  for (std::size_t f = 0; f < rt.flows.size(); ++f) {
    const auto& flow = rt.flows[f];
    if (f) out += ',';
    out += "{\"name\":";
    http::append_json_string(out, flow.name);
    optional_string(out, "onError", flow.on_error >= 0 ? rt.flows[static_cast<std::size_t>(flow.on_error)].name : "");
    out += ",\"blocks\":[";
    for (std::size_t b = 0; b < flow.blocks.size(); ++b) {
      const auto& block = flow.blocks[b];
      if (b) out += ',';
      out += "{\"kind\":";
      http::append_json_string(out, block.kind_name);
      out += ",\"name\":";
      http::append_json_string(out, block.name);
      out += ",\"id\":";
      http::append_json_string(out, block.id);
      optional_string(out, "key", block.key_pointer.value_or(""));
      optional_string(out, "input", block.input.name);
      optional_string(out, "output", block.output.name);
      optional_string(out, "state", block.state.name);
      if (auto it = counts.find({flow.name, block.id}); it != counts.end()) stats_json(out, it->second);
      out += '}';
    }
    out += "]}";
  }
  return out + "]}";
}

}  // namespace flowstate::engine_detail
