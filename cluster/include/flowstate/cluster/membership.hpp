#pragma once
// A node's membership in a cluster (docs/cluster.md): it registers under an
// etcd lease, keeps the lease alive, takes part in the controller election,
// and follows the cluster's view (nodes, controller, placement) through a
// watch. The node that is controller writes the first placement; each of
// its writes is an etcd transaction that compares its election key, so a
// deposed controller cannot write.
//
// etcd keys, under /flowstate/CLUSTER/:
//   nodes/NAME         node_info (JSON), attached to the node's lease
//   controller         the controller's name, attached to its lease
//   placement/GGGGGGGG range_owner (JSON) of the range starting at group G
//                      (8 hex digits, so keys sort by group)
//   projects/NAME      the project's id (decimal), the same on every node
//   next-project-id    the next id to give
//   moves/ID           move_request (JSON): `cluster move`, carried out by
//                      the controller, its outcome written back
//   draining/NAME      `cluster drain NAME`: the controller moves every
//                      group off the node; gone once the node left
//   failed-over/NAME   written with a failover of a range NAME led: NAME,
//                      back owning nothing, gets a joining node's share
//                      (also when it registered before the failover); gone
//                      once it owns groups again
//   rebalance          `cluster rebalance`: the controller evens out the
//                      groups over the nodes, then deletes it
//   deploys/NAME       deploy_record: project NAME's active revision
//   deployed/NAME/NODE deploy_report: what node NODE made of it
//   config             cluster_config: replication settings
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "flowstate/cluster/etcd.hpp"
#include "flowstate/cluster/placement.hpp"

namespace flowstate::cluster {

struct membership_options {
  etcd_options etcd;
  std::string cluster = "default";  // the etcd key prefix's name
  node_info self;
  int lease_ttl_s = 5;   // a node whose lease lapses is out of the cluster
  int settle_ms = 2000;  // the first placement waits until the node set was stable this long
  uint32_t key_groups = 4096;
};

// What a node knows of the cluster, as of an etcd revision.
struct cluster_view {
  std::map<std::string, node_info> nodes;  // registered (live) nodes by name
  std::string controller;                  // its name; empty while none
  placement ranges;
  std::map<std::string, move_request> moves;  // by id
  std::set<std::string> draining;             // node names
  std::set<std::string> failed_over;          // node names (failed-over/NAME)
  bool rebalance = false;                     // requested
  // etcd revisions: when each node registered, and the placement's last
  // change (a node registered after it, owning nothing, has just joined).
  std::map<std::string, int64_t> registered_at;
  int64_t placement_changed_at = 0;
  std::map<std::string, deploy_record> deploys;                          // by project name
  std::map<std::string, std::map<std::string, deploy_report>> deployed;  // by project, then node
  cluster_config config;                                                 // as set (0s: not set)
  int64_t revision = 0;
};

std::string cluster_prefix(const std::string& cluster);
std::string placement_key(const std::string& cluster, uint32_t first_group);
std::string move_key(const std::string& cluster, const std::string& id);

// A project's id in the cluster, by its name: the one recorded under
// projects/NAME, or the next free one, recorded by a transaction (so two
// nodes asking at once get the same id). Ids start at 1.
result<uint32_t> cluster_project_id(const etcd_options& etcd, const std::string& cluster, const std::string& name);

// Writes the cluster's replication settings (`flowstate cluster config`).
status write_cluster_config(const etcd_options& etcd, const std::string& cluster, const cluster_config& c);

// The view read once (for `flowstate cluster status`).
result<cluster_view> read_cluster_view(const etcd_options& etcd, const std::string& cluster);

class membership {
 public:
  // Registers the node and starts its threads. Waits up to one lease TTL
  // plus 5 s (etcd's minimum TTL and its expiry checks) for a registration
  // of the same name left by a process that died; fails when a live node
  // holds the name.
  static result<std::unique_ptr<membership>> join(membership_options options);
  ~membership();  // leaves: revokes the lease (its keys go at once)

  cluster_view view() const;
  bool is_controller() const;
  // Calls `changed` (on the watch thread) after each change of the view.
  void on_change(std::function<void(const cluster_view&)> changed);
  // Waits until `pred(view)` holds or `timeout_ms` passes; whether it holds.
  bool wait_for(const std::function<bool(const cluster_view&)>& pred, int timeout_ms) const;
  // Controller only: replaces range `old` (as it is in etcd now) by
  // `replacement`, in one transaction that also checks this node still
  // holds the election. Fails when either changed.
  status replace_range(const range_owner& old, const std::vector<range_owner>& replacement);
  // Controller only: a failover of range `old` to `next`, as replace_range,
  // written only while its old leader's registration is the one the caller
  // judged (none when `registered_at` is 0, else the one created at that
  // revision, with another data directory): not once it registered again.
  // Marks the old leader failed-over/NAME in the same transaction.
  status fail_over(const range_owner& old, const range_owner& next, int64_t registered_at);
  // A range's leader: replaces range `old` (as it is in etcd now: same
  // epoch, replicas and in-sync set) by `now` (its in-sync set changed),
  // in one transaction on the range's record alone. Fails when it changed.
  status update_range(const range_owner& old, const range_owner& now);
  // Writes a move request's state (moves/ID).
  status write_move(const std::string& id, const move_request& m);
  // Records `revision` as project `name`'s active revision (deploys/NAME,
  // its epoch one more), deployed through this node; fails when the
  // cluster's active revision is not `expected` (a concurrent deploy);
  // `expected` no_revision: fails when the project has any record (its
  // creation by a push).
  result<deploy_record> publish_deploy(const std::string& name, const std::string& revision,
                                       const std::string& expected);
  // This node's report on a project's deploy (deployed/NAME/NODE).
  status report_deploy(const std::string& name, const deploy_report& r);
  // Deletes a key under the cluster's prefix ("moves/ID", "rebalance").
  status remove(const std::string& key);
  // How many times the node lost its lease and registered again.
  uint64_t lease_losses() const;
  // Out of the cluster's nodes while `out` (its store cannot write): the
  // lease is revoked, so its registration goes at once and the controller
  // fails its ranges over to in-sync followers; registered again once
  // `out` is false. Applied by the loop thread within one round.
  void step_down(bool out);

  struct impl;

 private:
  explicit membership(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

}  // namespace flowstate::cluster
