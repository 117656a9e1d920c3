// flowstate cluster status: the cluster as etcd holds it; cluster move: key
// groups to another node, carried out by the controller (docs/cluster.md).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <thread>

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

cluster::etcd_options etcd_from_env(const std::string& endpoint) {
  auto etcd = cluster::etcd_options::at(endpoint);
  if (const char* u = std::getenv("FLOWSTATE_ETCD_USER")) etcd.user = u;
  if (const char* p = std::getenv("FLOWSTATE_ETCD_PASSWORD")) etcd.password = p;
  return etcd;
}

int cluster_status(const status_options& o) {
  auto v = cluster::read_cluster_view(etcd_from_env(o.etcd), o.name);
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
    out += "],\"moves\":[";
    first = true;
    for (auto& [id, m] : v->moves) {
      auto one = cluster::encode_move(m);
      out += std::string(first ? "" : ",") + "{\"id\":" + json_string(id) + "," + one.substr(1);
      first = false;
    }
    out += "],\"draining\":[";
    first = true;
    for (auto& name : v->draining) {
      out += std::string(first ? "" : ",") + json_string(name);
      first = false;
    }
    out += "],\"config\":" + cluster::encode_config(v->config);
    out += ",\"problem\":" + (problem ? json_string(*problem) : std::string("null")) + "}";
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
  std::printf("replication: %s\n", v->config.replication
                                       ? (std::to_string(v->config.replication) + " copies, min_in_sync " +
                                          std::to_string(v->config.min_in_sync))
                                             .c_str()
                                       : "not set (the default: 3 copies, min_in_sync 2; 2 and 2 with two nodes)");
  std::printf("key groups:\n");
  for (auto& r : v->ranges.ranges) {
    std::string followers;
    for (auto& rep : r.replicas)
      followers += (followers.empty() ? "" : ", ") + rep.node + (r.is_in_sync(rep.node) ? "" : " (catching up)") +
                   (v->nodes.count(rep.node) ? "" : " (down)");
    std::printf("  [%u, %u) on %s%s, epoch %llu%s%s\n", r.first, r.end, r.node.c_str(),
                v->nodes.count(r.node) ? "" : " (not registered: unavailable)",
                static_cast<unsigned long long>(r.epoch), followers.empty() ? "" : ", followers ", followers.c_str());
  }
  for (auto& [id, m] : v->moves)
    std::printf("move %s: key groups [%u, %u) to %s: %s%s%s\n", id.c_str(), m.first, m.end, m.to.c_str(),
                m.state.c_str(), m.message.empty() ? "" : ": ", m.message.c_str());
  for (auto& name : v->draining) std::printf("draining: %s\n", name.c_str());
  if (problem) std::printf("problem: %s\n", problem->c_str());
  return 0;
}

struct move_options {
  std::string etcd = "http://127.0.0.1:2379";
  std::string name = "default";
  std::string groups;  // A-B: key groups [A, B)
  std::string to;
  int timeout_s = 600;
};

int cluster_move(const move_options& o) {
  cluster::move_request m;
  {
    auto dash = o.groups.find('-');
    char* end = nullptr;
    unsigned long a = std::strtoul(o.groups.c_str(), &end, 10);
    unsigned long b = dash == std::string::npos ? 0 : std::strtoul(o.groups.c_str() + dash + 1, &end, 10);
    if (dash == std::string::npos || end == nullptr || *end || a >= b || b > 4096) {
      std::fprintf(stderr,
                   "flowstate cluster move: expected --groups A-B (key groups A up to, not including, B; at most "
                   "4096), found \"%s\"\n",
                   o.groups.c_str());
      return 2;
    }
    m.first = static_cast<uint32_t>(a);
    m.end = static_cast<uint32_t>(b);
  }
  m.to = o.to;
  auto client = cluster::etcd_client::connect(etcd_from_env(o.etcd));
  if (!client) {
    std::fprintf(stderr, "flowstate cluster move: %s\n", client.error().c_str());
    return 1;
  }
  auto view = cluster::read_cluster_view(etcd_from_env(o.etcd), o.name);
  if (!view) {
    std::fprintf(stderr, "flowstate cluster move: %s\n", view.error().c_str());
    return 1;
  }
  if (!view->nodes.count(o.to)) {
    std::fprintf(stderr, "flowstate cluster move: no node named \"%s\" is in cluster %s now\n", o.to.c_str(),
                 o.name.c_str());
    return 1;
  }
  const auto id = std::to_string(std::chrono::system_clock::now().time_since_epoch().count()) + "-" +
                  std::to_string(std::random_device{}() % 100000);
  const auto key = cluster::move_key(o.name, id);
  if (auto r = (*client)->put(key, cluster::encode_move(m)); !r) {
    std::fprintf(stderr, "flowstate cluster move: %s\n", r.error().c_str());
    return 1;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto kv = (*client)->get(key);
    if (!kv || !*kv) continue;
    auto now = cluster::decode_move((*kv)->value);
    if (!now || (now->state != "done" && now->state != "failed")) continue;
    (void)(*client)->txn({}, {cluster::etcd_op::erase(key)});
    if (now->state == "failed") {
      std::fprintf(stderr, "flowstate cluster move: %s\n", now->message.c_str());
      return 1;
    }
    std::printf("%s (longest pause %.1f ms)\n", now->message.c_str(), now->longest_pause_ms);
    return 0;
  }
  std::fprintf(stderr,
               "flowstate cluster move: no outcome within %d s (is a controller running? `cluster status` shows it); "
               "the request stays in etcd at %s\n",
               o.timeout_s, key.c_str());
  return 1;
}

// `cluster drain NODE` / `cluster rebalance`: a request in etcd the
// controller acts on; waits until the placement shows it done.
int cluster_request(const move_options& o, const std::string& node) {
  const char* what = node.empty() ? "rebalance" : "drain";
  auto client = cluster::etcd_client::connect(etcd_from_env(o.etcd));
  if (!client) {
    std::fprintf(stderr, "flowstate cluster %s: %s\n", what, client.error().c_str());
    return 1;
  }
  auto before = cluster::read_cluster_view(etcd_from_env(o.etcd), o.name);
  if (!before) {
    std::fprintf(stderr, "flowstate cluster %s: %s\n", what, before.error().c_str());
    return 1;
  }
  if (!node.empty() && !before->nodes.count(node)) {
    std::fprintf(stderr, "flowstate cluster drain: no node named \"%s\" is in cluster %s now\n", node.c_str(),
                 o.name.c_str());
    return 1;
  }
  const auto key = cluster::cluster_prefix(o.name) + (node.empty() ? "rebalance" : "draining/" + node);
  if (auto r = (*client)->put(key, "1"); !r) {
    std::fprintf(stderr, "flowstate cluster %s: %s\n", what, r.error().c_str());
    return 1;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto v = cluster::read_cluster_view(etcd_from_env(o.etcd), o.name);
    if (!v) continue;
    bool pending = false;
    for (auto& [_, m] : v->moves) pending = pending || m.state == "requested" || m.state == "running";
    if (pending || (node.empty() && v->rebalance)) continue;
    uint32_t left = 0;
    for (auto& [owner, count] : v->ranges.groups_per_node())
      if (owner == node) left = count;
    if (left) continue;
    std::string spread;
    for (auto& [owner, count] : v->ranges.groups_per_node())
      spread += (spread.empty() ? "" : ", ") + owner + " " + std::to_string(count);
    if (node.empty())
      std::printf("key groups per node: %s\n", spread.c_str());
    else
      std::printf("node %s owns no key groups now (%s); it can be stopped\n", node.c_str(), spread.c_str());
    return 0;
  }
  std::fprintf(stderr, "flowstate cluster %s: not done within %d s (`cluster status` shows where it stands)\n", what,
               o.timeout_s);
  return 1;
}

// `cluster config replication=N min_in_sync=M`: the settings in etcd.
int cluster_config_command(const status_options& o, const std::vector<std::string>& settings) {
  auto v = cluster::read_cluster_view(etcd_from_env(o.etcd), o.name);
  if (!v) {
    std::fprintf(stderr, "flowstate cluster config: %s\n", v.error().c_str());
    return 1;
  }
  auto c = v->config;
  if (settings.empty()) {
    if (c.replication)
      std::printf("replication=%u min_in_sync=%u\n", c.replication, c.min_in_sync);
    else
      std::printf(
          "replication not set: the default, 3 copies of each key group with min_in_sync 2 from three nodes, 2 "
          "and 2 with two nodes, 1 with one\n");
    return 0;
  }
  for (auto& s : settings) {
    auto eq = s.find('=');
    char* end = nullptr;
    unsigned long n = eq == std::string::npos ? 0 : std::strtoul(s.c_str() + eq + 1, &end, 10);
    const auto name = s.substr(0, eq);
    if (eq == std::string::npos || !end || *end || n < 1 || n > 7 || (name != "replication" && name != "min_in_sync")) {
      std::fprintf(stderr, "flowstate cluster config: expected replication=N or min_in_sync=M (1 to 7), found \"%s\"\n",
                   s.c_str());
      return 2;
    }
    (name == "replication" ? c.replication : c.min_in_sync) = static_cast<uint32_t>(n);
  }
  if (c.replication == 0) c.replication = 3;
  if (c.min_in_sync == 0) c.min_in_sync = std::min<uint32_t>(c.replication, 2);
  if (c.min_in_sync > c.replication) {
    std::fprintf(stderr, "flowstate cluster config: min_in_sync=%u is more than replication=%u\n", c.min_in_sync,
                 c.replication);
    return 2;
  }
  if (auto st = cluster::write_cluster_config(etcd_from_env(o.etcd), o.name, c); !st) {
    std::fprintf(stderr, "flowstate cluster config: %s\n", st.error().c_str());
    return 1;
  }
  std::printf("replication=%u min_in_sync=%u (the controller adds or drops followers now)\n", c.replication,
              c.min_in_sync);
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
  auto co = std::make_shared<status_options>();
  auto settings = std::make_shared<std::vector<std::string>>();
  auto* config = cluster->add_subcommand(
      "config", "Shows or sets the replication settings: replication=N min_in_sync=M (docs/cluster.md)");
  config->add_option("settings", *settings, "replication=N (copies of each key group), min_in_sync=M");
  config->add_option("--cluster", co->etcd, "The cluster's etcd (http://HOST:PORT)")->capture_default_str();
  config->add_option("--cluster-name", co->name, "The cluster's name in etcd")->capture_default_str();
  config->callback([co, settings] {
    int rc = cluster_config_command(*co, *settings);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
  auto mo = std::make_shared<move_options>();
  auto* move = cluster->add_subcommand(
      "move", "Moves key groups to a node, live: their requests wait for the move, none fails (docs/cluster.md)");
  move->add_option("--groups", mo->groups, "Key groups A-B: from A up to, not including, B (0-4096 is all)")
      ->required();
  move->add_option("--to", mo->to, "The node that takes them")->required();
  move->add_option("--cluster", mo->etcd, "The cluster's etcd (http://HOST:PORT)")->capture_default_str();
  move->add_option("--cluster-name", mo->name, "The cluster's name in etcd")->capture_default_str();
  move->add_option("--timeout", mo->timeout_s, "Seconds to wait for the outcome")->capture_default_str();
  move->callback([mo] {
    int rc = cluster_move(*mo);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
  auto dopt = std::make_shared<move_options>();
  auto drain_node = std::make_shared<std::string>();
  auto* drain = cluster->add_subcommand(
      "drain", "Moves every key group off a node, live; then it can be stopped (docs/cluster.md)");
  drain->add_option("node", *drain_node, "The node to empty")->required();
  auto* rebalance =
      cluster->add_subcommand("rebalance", "Spreads the key groups evenly over the nodes, live (docs/cluster.md)");
  for (auto* c : {drain, rebalance}) {
    c->add_option("--cluster", dopt->etcd, "The cluster's etcd (http://HOST:PORT)")->capture_default_str();
    c->add_option("--cluster-name", dopt->name, "The cluster's name in etcd")->capture_default_str();
    c->add_option("--timeout", dopt->timeout_s, "Seconds to wait until it is done")->capture_default_str();
  }
  drain->callback([dopt, drain_node] {
    int rc = cluster_request(*dopt, *drain_node);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
  rebalance->callback([dopt] {
    int rc = cluster_request(*dopt, "");
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace flowstate::cli
