#pragma once
// Placement: which node owns each key-group range, under which epoch. Kept
// in etcd, one key per range (docs/cluster.md "What etcd holds"); written
// only by the controller, read (and watched) by every node. Pure data and
// rules here: no I/O.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate::cluster {

// A node as it registers: its name, the identity of its data directory and
// of this start (runtime store_id()/incarnation()), and where peers and
// clients reach it.
struct node_info {
  std::string name;
  std::string store_id;
  std::string incarnation;
  std::string peer;   // HOST:PORT of its peer listener (node-to-node messages)
  std::string http;   // HOST:PORT of its flows' HTTP listener
  std::string admin;  // HOST:PORT of its admin API
  bool operator==(const node_info&) const = default;
};

std::string encode_node(const node_info& n);
result<node_info> decode_node(std::string_view json);

// Key groups [first, end) owned by `node` (whose data directory is
// `store_id`) since epoch `epoch`. The epoch grows by one each time the
// range changes owner; a commit to the range names the epoch it was made
// under, and a node serves a range only while it holds the current epoch.
//
// Replication (docs/cluster.md "Replicas and failover"): `replicas` are the
// followers (other nodes holding a copy the leader keeps current), and
// `in_sync` the members of the in-sync set (the leader and the followers
// that have every commit acknowledged so far); a `sync` commit is
// acknowledged only once every member of it has the commit durable.
struct replica {
  std::string node;
  std::string store_id;
  bool operator==(const replica&) const = default;
};
struct range_owner {
  uint32_t first = 0, end = 0;
  std::string node;
  std::string store_id;
  uint64_t epoch = 0;
  std::vector<replica> replicas;
  std::vector<std::string> in_sync;  // node names; the leader included
  // Written by a move: where the source's replication log stood when it
  // held the groups. A follower whose copy has that log up to there holds
  // what the move brought, and continues from the new leader's log
  // ("replica-adopt"). Empty otherwise (a failover clears it).
  std::string adopt_log;
  uint64_t adopt_index = 0;
  bool operator==(const range_owner&) const = default;

  bool is_replica(const std::string& name) const;
  bool is_in_sync(const std::string& name) const;
};

std::string encode_range(const range_owner& r);
result<range_owner> decode_range(std::string_view json);

struct placement {
  std::vector<range_owner> ranges;  // by `first`, covering [0, groups) without gaps
  int64_t revision = 0;             // etcd revision it was read at

  // The range holding `group`, if placed.
  const range_owner* owner_of(uint32_t group) const;
  // A problem with the ranges (a gap, an overlap, a range out of bounds),
  // naming the ranges; nullopt when they cover [0, groups) exactly.
  std::optional<std::string> problem(uint32_t groups) const;
  // Key groups per node name.
  std::vector<std::pair<std::string, uint32_t>> groups_per_node() const;
};

// Replication settings, cluster-wide (`flowstate cluster config`, etcd key
// `config`): copies of each range (the leader included) and how many of
// them must be in sync for a `sync` commit to be accepted.
struct cluster_config {
  uint32_t replication = 0;  // 0: not set (the default for the node count)
  uint32_t min_in_sync = 0;
  bool operator==(const cluster_config&) const = default;
};
std::string encode_config(const cluster_config& c);
result<cluster_config> decode_config(std::string_view json);
// The settings in force with `nodes` nodes (registered or holding a copy):
// what was set, never more copies than nodes (min_in_sync is kept, so sync
// writes wait for nodes to come); unset, 3 and 2 from three nodes, 2 and 2
// with two, 1 and 1 with one.
cluster_config effective_config(const cluster_config& set, std::size_t nodes);

// Failover: when the leader of `r` is not registered with the range's data
// directory (its lease lapsed, or it came back under its name with another,
// empty one), the range as it becomes: led by a member of its in-sync set
// that is registered with the data directory it replicates to (the first
// by name), at epoch + 1, the old leader out of its replicas and in-sync
// set. nullopt while the leader is registered with it, or when no such
// member is.
std::optional<range_owner> failover(const range_owner& r, const std::map<std::string, node_info>& nodes);

// The range with the replicas the settings ask for, when that differs from
// what it has: followers on registered nodes (not `avoid`: draining) that
// hold the fewest copies (`copies`: per node, over all ranges), added out
// of the in-sync set (the leader puts them in once they caught up); a
// follower whose node came back with another data directory replaced; one
// whose node is gone replaced when another node is free; extra followers
// dropped (out-of-sync ones first). The leader is always in the in-sync
// set. nullopt when nothing changes (or the leader itself is not registered).
std::optional<range_owner> with_replicas(const range_owner& r, const std::map<std::string, node_info>& nodes,
                                         const cluster_config& config, const std::set<std::string>& avoid,
                                         const std::map<std::string, uint32_t>& copies);

// `r` without `node` among its followers and its in-sync set. A move's
// target gives up a follower's copy it holds of the range when the move
// begins, so the controller takes it out first.
range_owner without_follower(const range_owner& r, const std::string& node);

// The ranges that replace `r` when key groups [first, end) of it move to
// node `to` (whose data directory is `to_store`): the moved part at
// r.epoch + 1, keeping r's other followers (the new leader rebuilds their
// copies from its own log) and the in-sync ones among them (each has every
// commit acknowledged so far; the new leader acknowledges nothing while a
// member waits to be rebuilt); the parts before and after it kept as they
// were. `to` is a follower of none of them. [first, end) must lie within r.
// `transfer`: `to` is an in-sync follower that leads from its own copy; it
// stays a follower of the parts before and after, and r's leader becomes an
// in-sync follower of the moved part (its copy is complete).
std::vector<range_owner> split_for_move(const range_owner& r, uint32_t first, uint32_t end, const std::string& to,
                                        const std::string& to_store, bool transfer = false,
                                        const std::string& adopt_log = {}, uint64_t adopt_index = 0);

// A request to move key groups (`flowstate cluster move`), kept in etcd
// under moves/ID until its requester has read the outcome. The controller
// carries it out one range at a time and writes its state back.
struct move_request {
  uint32_t first = 0, end = 0;
  std::string to;
  std::string state = "requested";  // requested, running, done, failed
  std::string message;              // what was moved, or why it failed
  double longest_pause_ms = 0;      // the longest time a moved range held its requests
  bool operator==(const move_request&) const = default;
};
std::string encode_move(const move_request& m);
result<move_request> decode_move(std::string_view json);

// A project's active revision in the cluster (deploys/NAME): every node
// activates it; `epoch` counts the project's deploys, `from` is the node
// it was deployed through (it has the revision's git objects).
struct deploy_record {
  std::string revision;
  uint64_t epoch = 0;
  std::string from;
  bool operator==(const deploy_record&) const = default;
};
std::string encode_deploy(const deploy_record& d);
result<deploy_record> decode_deploy(std::string_view json);
// A node's answer to a deploy (deployed/NAME/NODE): the epoch it acted
// on, what it runs now, and why it could not activate it ("" when it did).
struct deploy_report {
  uint64_t epoch = 0;
  std::string revision;
  std::string error;
  bool operator==(const deploy_report&) const = default;
};
std::string encode_report(const deploy_report& r);
result<deploy_report> decode_report(std::string_view json);

// The moves that leave the key groups evenly spread over `nodes` (names;
// every group owned by a node not among them moves to one that is), each
// a contiguous piece of one range, taken from the end of the ranges of the
// nodes with the most groups and given to those with the fewest. Empty
// when the placement is even already (no node more than one group off).
std::vector<move_request> plan_even(const placement& p, const std::vector<std::string>& nodes, uint32_t groups);

// The first placement of a cluster: [0, groups) in contiguous ranges, as
// even as can be, one per node in name order, each at epoch 1.
placement initial_placement(std::vector<node_info> nodes, uint32_t groups);

}  // namespace flowstate::cluster
