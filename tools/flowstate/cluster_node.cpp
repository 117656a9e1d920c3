#include "cluster_node.hpp"

#include <atomic>
#include <cstdio>
#include <map>

#include "flowstate/cluster/membership.hpp"
#include "cli_target.hpp"

namespace flowstate::cli {

namespace {

// What the gate reads on every request: the placement as last seen and who
// this node is, swapped whole on each change of the view.
struct ownership {
  cluster::placement ranges;
  std::map<std::string, std::string> http_of;  // node name -> its flow listener
};

class member_node : public cluster_node {
 public:
  member_node(std::unique_ptr<cluster::membership> m, engine& eng, std::string self, std::string store,
              int retry_after_s)
      : membership_(std::move(m)), engine_(eng), self_(std::move(self)), store_(std::move(store)),
        retry_after_s_(retry_after_s) {
    update(membership_->view());
    membership_->on_change([this](const cluster::cluster_view& v) { update(v); });
    engine_.set_key_group_gate([this](uint32_t group) { return refuse(group); });
  }
  ~member_node() override {
    engine_.set_key_group_gate(nullptr);
    membership_->on_change(nullptr);
  }

 private:
  void update(const cluster::cluster_view& v) {
    auto o = std::make_shared<ownership>();
    o->ranges = v.ranges;
    for (auto& [name, n] : v.nodes) o->http_of[name] = n.http;
    std::atomic_store(&current_, std::shared_ptr<const ownership>(std::move(o)));
  }

  std::optional<http::response> refuse(uint32_t group) const {
    auto o = std::atomic_load(&current_);
    const auto* owner = o ? o->ranges.owner_of(group) : nullptr;
    if (!owner) {
      auto r = http::problem(503, "cluster not placed",
                             "the cluster has not placed key group " + std::to_string(group) +
                                 " on a node yet (its controller places key groups once the nodes have joined)");
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    if (owner->node == self_) {
      if (owner->store_id == store_) return std::nullopt;
      auto r = http::problem(503, "not this data directory",
                             "key group " + std::to_string(group) + " belongs to node " + self_ + " with data directory " +
                                 owner->store_id + "; this node runs on " + store_ +
                                 ", which does not hold its state");
      r.headers.emplace_back("Retry-After", "5");
      return r;
    }
    auto at = o->http_of.find(owner->node);
    if (at == o->http_of.end()) {
      // Down (its lease lapsed): nothing was accepted; its keys wait for it.
      auto r = http::problem(503, "owner unavailable",
                             "key group " + std::to_string(group) + " belongs to node " + owner->node +
                                 ", which is not in the cluster now; retry once it is back");
      r.headers.emplace_back("Retry-After", std::to_string(retry_after_s_));
      return r;
    }
    auto r = http::problem(421, "owned by another node",
                           "key group " + std::to_string(group) + " is served by node " + owner->node + " at " +
                               at->second + "; this version does not forward requests between nodes yet: send it there");
    r.headers.emplace_back("Flowstate-Owner", at->second);
    return r;
  }

  std::unique_ptr<cluster::membership> membership_;
  engine& engine_;
  std::string self_, store_;
  int retry_after_s_;
  std::shared_ptr<const ownership> current_;
};

}  // namespace

result<std::unique_ptr<cluster_node>> join_cluster(const cluster_flags& flags, engine& eng,
                                                   const std::string& http_address, const std::string& admin_address) {
  if (flags.node.empty()) return fail("--cluster needs --node NAME (the node's name in the cluster)");
  int64_t ttl_ms = parse_age_ms(flags.lease_ttl);
  if (ttl_ms < 1000 || ttl_ms > 3600 * 1000 || ttl_ms % 1000)
    return fail("expected --lease-ttl in whole seconds from 1s to 1h, like 5s, found \"" + flags.lease_ttl + "\"");
  cluster::membership_options o;
  o.etcd.endpoint = flags.etcd;
  o.etcd.user = flags.etcd_user;
  o.etcd.password = flags.etcd_password;
  o.cluster = flags.name;
  o.lease_ttl_s = static_cast<int>(ttl_ms / 1000);
  o.self.name = flags.node;
  o.self.store_id = eng.store_id();
  o.self.incarnation = eng.incarnation();
  o.self.peer = flags.peer_listen;
  o.self.http = http_address;
  o.self.admin = admin_address;
  auto m = cluster::membership::join(std::move(o));
  if (!m) return fail("joining cluster \"" + flags.name + "\" at " + flags.etcd + ": " + m.error());
  std::printf("flowstate: node %s joined cluster %s (etcd %s)\n", flags.node.c_str(), flags.name.c_str(),
              flags.etcd.c_str());
  return std::unique_ptr<cluster_node>(new member_node(std::move(*m), eng, flags.node, eng.store_id(), static_cast<int>(ttl_ms / 1000)));
}

}  // namespace flowstate::cli
