// GET /api/v1/cluster/graph: the actor graph of a cluster (docs/cluster.md
// "The actor graph"). Each node describes its own part (shard actors with
// their key groups and messages in flight, worker pools, the outbox and
// the inbox, messages it delivered to each other node); the node asked
// collects every connected node's part and the edges between them.
#include <simdjson.h>

#include "engine_impl.hpp"
#include "peers.hpp"

namespace flowstate::engine_detail {

std::string engine_impl::local_graph() const {
  std::string out = "{\"name\":";
  http::append_json_string(out, options_.node_name.empty() ? std::string("this node") : options_.node_name);
  out += ",\"shards\":[";
  const std::size_t n = core_.shards.size();
  for (std::size_t i = 0; i < n; ++i) {
    out += (i ? "," : "") + std::string("{\"index\":") + std::to_string(i) +
           ",\"firstGroup\":" + std::to_string(i * key_group_count / n) +
           ",\"endGroup\":" + std::to_string((i + 1) * key_group_count / n) +
           ",\"inFlight\":" + std::to_string(core_.in_flight[i].load()) + "}";
  }
  out += "],\"workers\":[";
  bool first = true;
  {
    std::shared_lock lock(mutex_);
    for (auto& [_, e] : projects_) {
      if (!e->active || !e->pools) continue;
      for (auto [language, worker] : {std::pair{"js", e->pools->js.get()}, std::pair{"py", e->pools->py.get()}}) {
        if (!worker) continue;
        out += std::string(first ? "" : ",") + "{\"project\":";
        http::append_json_string(out, e->active->name);
        out += ",\"language\":\"" + std::string(language) +
               "\",\"processes\":" + std::to_string(worker->worker_pids().size()) + "}";
        first = false;
      }
    }
  }
  // Driver instances: every block of the active revisions that is not a
  // function (sources, sinks, queries, replies, timers, topics).
  out += "],\"drivers\":[";
  first = true;
  {
    std::shared_lock lock(mutex_);
    for (auto& [_, e] : projects_) {
      if (!e->active) continue;
      for (auto& flow : e->active->flows)
        for (auto& b : flow.blocks) {
          if (b.kind == block_kind::function) continue;
          out += std::string(first ? "" : ",") + "{\"project\":";
          http::append_json_string(out, e->active->name);
          out += ",\"flow\":";
          http::append_json_string(out, flow.name);
          out += ",\"block\":";
          http::append_json_string(out, b.id);
          out += ",\"kind\":";
          http::append_json_string(out, b.kind_name);
          out += "}";
          first = false;
        }
    }
  }
  out += "],\"outbox\":{\"pending\":" + std::to_string(core_.outbox_pending.load()) +
         ",\"delivered\":" + std::to_string(core_.outbox_delivered.load()) +
         "},\"inbox\":{\"accepted\":" + std::to_string(core_.inbox_accepted.load()) +
         ",\"repeats\":" + std::to_string(core_.inbox_repeats.load()) + "},\"sentTo\":{";
  {
    std::lock_guard lock(core_.sent_mu);
    first = true;
    for (auto& [to, count] : core_.sent_to) {
      if (!first) out += ",";
      http::append_json_string(out, to);
      out += ":" + std::to_string(count);
      first = false;
    }
  }
  return out + "}}";
}

result<std::string> engine_impl::cluster_graph() const {
  auto info = cluster_info();
  // An embedded node (or one without peers) draws the same graph, with
  // itself as its one node.
  if (!info || !peers_)
    return "{\"cluster\":" + (info ? *info : std::string("null")) + ",\"nodes\":[" + local_graph() +
           "],\"edges\":[],\"unreachable\":[]}";
  std::vector<std::string> parts{local_graph()};
  std::string unreachable;
  for (auto& node : peers_->connected_names()) {
    auto r = peers_->ask(node, {"graph", {}}, 10000);
    if (!r || r->status != 200) {
      unreachable += (unreachable.empty() ? "" : ", ") + node;
      continue;
    }
    parts.push_back(std::move(r->body));
  }
  // Edges: messages each node's outbox delivered to another.
  std::string edges;
  simdjson::dom::parser parser;
  for (auto& part : parts) {
    simdjson::dom::element doc;
    std::string_view from;
    simdjson::dom::object sent;
    if (parser.parse(part).get(doc) || doc["name"].get(from) || doc["sentTo"].get(sent)) continue;
    for (auto [to, count] : sent) {
      uint64_t n = 0;
      if (count.get(n)) continue;
      edges += std::string(edges.empty() ? "" : ",") + "{\"from\":";
      http::append_json_string(edges, from);
      edges += ",\"to\":";
      http::append_json_string(edges, to);
      edges += ",\"messages\":" + std::to_string(n) + "}";
    }
  }
  std::string out = "{\"cluster\":" + *info + ",\"nodes\":[";
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? "," : "") + parts[i];
  out += "],\"edges\":[" + edges + "],\"unreachable\":[";
  if (!unreachable.empty()) {
    std::size_t at = 0;
    bool first = true;
    while (at <= unreachable.size()) {
      auto comma = unreachable.find(", ", at);
      auto name = unreachable.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      out += first ? "" : ",";
      http::append_json_string(out, name);
      first = false;
      if (comma == std::string::npos) break;
      at = comma + 2;
    }
  }
  return out + "]}";
}

}  // namespace flowstate::engine_detail
