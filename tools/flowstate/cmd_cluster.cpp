// flowstate cluster status: the cluster as etcd holds it (docs/cluster.md).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>

#include "commands.hpp"
#include "flowstate/cluster/membership.hpp"

namespace flowstate::cli {

namespace {

struct status_options {
  std::string etcd = "http://127.0.0.1:2379";
  std::string name = "default";
  bool json = false;
};

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out + "\"";
}

int cluster_status(const status_options& o) {
  auto etcd = cluster::etcd_options::at(o.etcd);
  if (const char* u = std::getenv("FLOWSTATE_ETCD_USER")) etcd.user = u;
  if (const char* p = std::getenv("FLOWSTATE_ETCD_PASSWORD")) etcd.password = p;
  auto v = cluster::read_cluster_view(etcd, o.name);
  if (!v) {
    std::fprintf(stderr, "flowstate cluster status: %s\n", v.error().c_str());
    return 1;
  }
  auto problem = v->ranges.ranges.empty() ? std::optional<std::string>() : v->ranges.problem(4096);
  if (o.json) {
    std::string out = "{\"cluster\":" + json_string(o.name) + ",\"revision\":" + std::to_string(v->revision) +
                      ",\"controller\":" + (v->controller.empty() ? "null" : json_string(v->controller)) +
                      ",\"nodes\":[";
    bool first = true;
    for (auto& [name, n] : v->nodes) {
      out += std::string(first ? "" : ",") + cluster::encode_node(n);
      first = false;
    }
    out += "],\"ranges\":[";
    first = true;
    for (auto& r : v->ranges.ranges) {
      out += std::string(first ? "" : ",") + cluster::encode_range(r);
      first = false;
    }
    out += "],\"problem\":" + (problem ? json_string(*problem) : std::string("null")) + "}";
    std::printf("%s\n", out.c_str());
    return 0;
  }
  std::printf("cluster %s (etcd %s, revision %lld)\n", o.name.c_str(), o.etcd.c_str(),
              static_cast<long long>(v->revision));
  std::printf("controller: %s\n", v->controller.empty() ? "(none)" : v->controller.c_str());
  std::printf("nodes: %zu\n", v->nodes.size());
  auto per_node = v->ranges.groups_per_node();
  for (auto& [name, n] : v->nodes) {
    uint32_t groups = 0;
    for (auto& [owner, count] : per_node)
      if (owner == name) groups = count;
    std::printf("  %-16s http %-21s peer %-21s store %.12s incarnation %s key groups %u\n", name.c_str(),
                n.http.c_str(), n.peer.c_str(), n.store_id.c_str(), n.incarnation.c_str(), groups);
  }
  if (v->ranges.ranges.empty()) {
    std::printf("key groups: not placed yet\n");
    return 0;
  }
  std::printf("key groups:\n");
  for (auto& r : v->ranges.ranges)
    std::printf("  [%u, %u) on %s%s, epoch %llu\n", r.first, r.end, r.node.c_str(),
                v->nodes.count(r.node) ? "" : " (not registered: unavailable)",
                static_cast<unsigned long long>(r.epoch));
  if (problem) std::printf("problem: %s\n", problem->c_str());
  return 0;
}

}  // namespace

void register_cluster_commands(CLI::App& app) {
  auto* cluster = app.add_subcommand("cluster", "A cluster's nodes and placement (docs/cluster.md)");
  cluster->require_subcommand(1);
  register_cluster_up_command(*cluster);
  auto o = std::make_shared<status_options>();
  auto* status = cluster->add_subcommand("status", "Nodes, controller and key-group ranges, as etcd holds them");
  status->add_option("--cluster", o->etcd, "The cluster's etcd (http://HOST:PORT)")->capture_default_str();
  status->add_option("--cluster-name", o->name, "The cluster's name in etcd")->capture_default_str();
  status->add_flag("--json", o->json, "One JSON object");
  status->callback([o] {
    int rc = cluster_status(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace flowstate::cli
