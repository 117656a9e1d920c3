#include "cluster_node.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "cli_target.hpp"
#include "cluster_deploys.hpp"
#include "flowstate/cluster/membership.hpp"
#include "flowstate/runtime/fault.hpp"
#include "flowstate/runtime/thread_name.hpp"
#include "node_files.hpp"

namespace flowstate::cli {

namespace {

// What the gate reads on every request: the placement as last seen and who
// this node is, swapped whole on each change of the view.
struct ownership {
  cluster::placement ranges;
  std::map<std::string, cluster::node_info> nodes;  // registered now, by name
  std::string controller;
  cluster::cluster_config config;  // in force
};

// The replication settings in force: counted over the nodes registered or
// named in the placement (a node that is down still holds its copies).
cluster::cluster_config config_in_force(const cluster::cluster_view& v) {
  // Followers are fed over the nodes' peer links: a cluster whose nodes do
  // not all have one (no --peer-listen) keeps one copy unless told more.
  if (v.config.replication == 0)
    for (auto& [_, n] : v.nodes)
      if (n.peer.empty()) return {1, 1};
  std::set<std::string> names;
  for (auto& [n, _] : v.nodes) names.insert(n);
  for (auto& r : v.ranges.ranges) {
    names.insert(r.node);
    for (auto& rep : r.replicas) names.insert(rep.node);
  }
  return cluster::effective_config(v.config, names.size());
}

// The gate's state: shared with the engine's gate function, so a request
// still running on an I/O thread keeps it alive after the node left.
class gate_state {
 public:
  gate_state(engine& eng, std::string self, std::string store, int retry_after_s)
      : engine_(eng), self_(std::move(self)), store_(std::move(store)), retry_after_s_(retry_after_s) {}

  void update(const cluster::cluster_view& v) {
    auto o = std::make_shared<ownership>();
    o->ranges = v.ranges;
    o->nodes = v.nodes;
    o->controller = v.controller;
    o->config = config_in_force(v);
    std::atomic_store(&current_, std::shared_ptr<const ownership>(std::move(o)));
  }
  std::shared_ptr<const ownership> current() const { return std::atomic_load(&current_); }

  engine::gate_decision decide(uint32_t group) const {
    engine::gate_decision d;
    d.refuse = refuse(group, d.forward_to);
    if (!d.refuse && d.forward_to.empty()) {
      d.refuse_new = too_few_in_sync(group);
      if (auto o = std::atomic_load(&current_))
        if (const auto* owner = o->ranges.owner_of(group)) d.epoch = owner->epoch;
    }
    return d;
  }

  // The ranges this node leads in view `v`, for the engine's replication.
  std::vector<engine::led_range> led(const cluster::cluster_view& v) const {
    std::vector<engine::led_range> out;
    const auto config = config_in_force(v);
    for (auto& r : v.ranges.ranges) {
      if (r.node != self_ || r.store_id != store_) continue;
      engine::led_range l;
      l.first = r.first;
      l.end = r.end;
      l.epoch = r.epoch;
      for (auto& rep : r.replicas) l.followers.push_back(rep.node);
      l.in_sync = r.in_sync;
      l.min_in_sync = config.min_in_sync;
      l.adopt_log = r.adopt_log;
      l.adopt_index = r.adopt_index;
      out.push_back(std::move(l));
    }
    return out;
  }

 private:
  // A refusal, or nullopt with `forward_to` set (another node runs it) or
  // empty (this node does).
  std::optional<http::response> refuse(uint32_t group, std::string& forward_to) const {
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
      auto r =
          http::problem(503, "not this data directory",
                        "key group " + std::to_string(group) + " belongs to node " + self_ + " with data directory " +
                            owner->store_id + "; this node runs on " + store_ + ", which does not hold its state");
      r.headers.emplace_back("Retry-After", "5");
      return r;
    }
    auto at = o->nodes.find(owner->node);
    if (at == o->nodes.end()) {
      // Down (its lease lapsed): nothing was accepted; its keys wait for it.
      auto r = http::problem(503, "owner unavailable",
                             "key group " + std::to_string(group) + " belongs to node " + owner->node +
                                 ", which is not in the cluster now; retry once it is back");
      r.headers.emplace_back("Retry-After", std::to_string(retry_after_s_));
      return r;
    }
    if (engine_.peer_connected(owner->node, at->second.incarnation)) {
      forward_to = owner->node;
      return std::nullopt;
    }
    if (!engine_.peer_address().empty()) {
      auto r = http::problem(503, "owner not connected",
                             "key group " + std::to_string(group) + " belongs to node " + owner->node +
                                 ", which this node is not connected to yet; nothing was accepted: retry shortly");
      r.headers.emplace_back("Retry-After", "1");
      return r;
    }
    // A node without --peer-listen cannot forward: the client may go there.
    auto r = http::problem(421, "owned by another node",
                           "key group " + std::to_string(group) + " is served by node " + owner->node + " at " +
                               at->second.http + "; this node has no --peer-listen to forward it: send it there");
    r.headers.emplace_back("Flowstate-Owner", at->second.http);
    return r;
  }

  // A range with replicas whose in-sync set is smaller than the cluster's
  // min_in_sync takes no new request (its sync commits could not be
  // acknowledged).
  std::optional<http::response> too_few_in_sync(uint32_t group) const {
    auto o = std::atomic_load(&current_);
    const auto* owner = o ? o->ranges.owner_of(group) : nullptr;
    if (!owner || owner->in_sync.empty() || owner->in_sync.size() >= o->config.min_in_sync) return std::nullopt;
    auto r = http::problem(503, "too few replicas in sync",
                           "key group " + std::to_string(group) + " has " + std::to_string(owner->in_sync.size()) +
                               " copies in sync, fewer than the cluster's min_in_sync " +
                               std::to_string(o->config.min_in_sync) +
                               "; nothing was accepted: retry once a replica has caught up");
    r.headers.emplace_back("Retry-After", "1");
    return r;
  }

  engine& engine_;
  std::string self_, store_;
  int retry_after_s_;
  std::shared_ptr<const ownership> current_;  // atomic_load/store
};

// GET /api/v1/cluster: the view the gate holds, and this node's peers.
std::string describe(const gate_state& g, const engine& eng, const std::string& self) {
  auto o = g.current();
  std::string out = "{\"self\":";
  http::append_json_string(out, self);
  out += ",\"controller\":";
  if (o && !o->controller.empty())
    http::append_json_string(out, o->controller);
  else
    out += "null";
  out += ",\"nodes\":[";
  bool first = true;
  if (o)
    for (auto& [name, n] : o->nodes) {
      auto node = cluster::encode_node(n);
      node.pop_back();
      const bool connected = name == self || eng.peer_connected(name, n.incarnation);
      out += std::string(first ? "" : ",") + node + ",\"connected\":" + (connected ? "true" : "false") + "}";
      first = false;
    }
  out += "],\"ranges\":[";
  first = true;
  if (o)
    for (auto& r : o->ranges.ranges) {
      out += std::string(first ? "" : ",") + cluster::encode_range(r);
      first = false;
    }
  return out + "],\"replication\":" + eng.replication_info() + "}";
}

class member_node : public cluster_node {
 public:
  member_node(std::unique_ptr<cluster::membership> m, engine& eng, std::shared_ptr<gate_state> gate, std::string self,
              int settle_ms, std::map<std::string, std::string> routes)
      : routes_(std::move(routes)),
        membership_(std::move(m)),
        engine_(eng),
        gate_(std::move(gate)),
        self_(std::move(self)),
        settle_(std::chrono::milliseconds(std::max(settle_ms, 1000))) {
    deployer_ = std::make_unique<cluster_deployer>(*membership_, engine_, self_);
    // Registered before the first read, so no change falls in between.
    membership_->on_change([this](const cluster::cluster_view& v) {
      // The engine learns which ranges it leads before the gate sends it
      // their requests: a range taken over from a follower's copy runs the
      // queue entries numbered below that moment, and what is accepted
      // afterwards is numbered above it (else it would run twice).
      engine_.set_led_ranges(gate_->led(v), in_sync_writer());
      gate_->update(v);
      engine_.placement_changed();
      engine_.set_leaving(v.draining.count(self_) > 0);
      {
        std::lock_guard lock(callback_mu_);
        if (!closing_) deployer_->changed();
      }
      {
        std::lock_guard lock(mu_);
        changed_ = true;
        moves_changed_ = true;
        replicas_changed_ = true;
      }
      cv_.notify_all();
    });
    gate_->update(membership_->view());
    // The revisions the cluster runs, before this node serves anything.
    deployer_->catch_up();
    deployer_->start();
    engine_.set_led_ranges(gate_->led(membership_->view()), in_sync_writer());
    engine_.set_key_group_gate([g = gate_](uint32_t group) { return g->decide(group); });
    engine_.placement_changed();  // the groups this node runs: their queues run now
    engine_.set_leaving(membership_->view().draining.count(self_) > 0);
    engine_.set_cluster_info([g = gate_, &eng = engine_, self = self_] { return describe(*g, eng, self); });
    if (!engine_.peer_address().empty()) {
      connector_ = std::thread([this] { connect_loop(); });
      mover_ = std::thread([this] { move_loop(); });
      replicas_ = std::thread([this] { replica_loop(); });
    }
  }
  ~member_node() override {
    engine_.set_cluster_info(nullptr);
    // Our threads first (they use the membership), then the view's
    // callback stops touching the deployer, then the deployer (it waits for
    // deploys in progress), then the membership (its threads joined).
    // Requests still in flight hold the gate state.
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (connector_.joinable()) connector_.join();
    if (mover_.joinable()) mover_.join();
    if (replicas_.joinable()) replicas_.join();
    {
      std::lock_guard lock(callback_mu_);
      closing_ = true;
    }
    deployer_.reset();
    membership_.reset();
  }

 private:
  // A range's leader writes its in-sync set: a transaction on the range's
  // record as this node's view has it.
  engine::in_sync_writer in_sync_writer() {
    return [this](uint32_t first, const std::vector<std::string>& in_sync) -> status {
      auto v = membership_->view();
      const auto* r = v.ranges.owner_of(first);
      if (!r || r->first != first || r->node != self_)
        return fail("this node does not lead a range starting at key group " + std::to_string(first));
      auto next = *r;
      next.in_sync = in_sync;
      return membership_->update_range(*r, next);
    };
  }

  // The controller: a range whose leader is gone goes to an in-sync
  // follower (epoch + 1); a range gets the followers the settings ask for.
  void plan_replicas(const cluster::cluster_view& v) {
    const auto config = config_in_force(v);
    std::map<std::string, uint32_t> copies;
    for (auto& r : v.ranges.ranges)
      for (auto& rep : r.replicas) ++copies[rep.node];
    for (auto& r : v.ranges.ranges) {
      if (auto next = cluster::failover(r, v.nodes)) {
        std::fprintf(stderr,
                     "flowstate cluster: controller %s: node %s is gone; key groups [%u, %u) fail over to %s "
                     "(epoch %llu)\n",
                     self_.c_str(), r.node.c_str(), r.first, r.end, next->node.c_str(),
                     static_cast<unsigned long long>(next->epoch));
        fault_pause("failover-late");  // the old leader may register again meanwhile
        // Only while the old leader's registration is the one this view
        // judged (none, or one with another, empty data directory): a node
        // restarted after kill -9 registers again as soon as its old lease
        // lapses, which may be before this view shows it, and then keeps
        // its ranges. The failover marks the old leader failed-over/NAME:
        // back owning nothing, it gets a joining node's share even when it
        // registered before the failover (else it would never run a key
        // group, and its shared MQTT subscriptions would hold their share
        // of messages unread).
        const auto registration = v.registered_at.find(r.node);
        const int64_t registered_at = registration == v.registered_at.end() ? 0 : registration->second;
        if (auto st = membership_->fail_over(r, *next, registered_at); !st)
          std::fprintf(stderr, "flowstate cluster: failover of [%u, %u): %s\n", r.first, r.end, st.error().c_str());
        else
          ++failovers_;
        continue;
      }
      // A range being moved keeps its followers until the move is done
      // (the move rewrites its record; a change now would fail it).
      bool moving = false;
      for (auto& [_, m] : v.moves) moving = moving || (m.state == "running" && m.first < r.end && r.first < m.end);
      if (moving) continue;
      if (auto next = cluster::with_replicas(r, v.nodes, config, v.draining, copies)) {
        for (auto& rep : next->replicas)
          if (!r.is_replica(rep.node)) ++copies[rep.node];
        if (auto st = membership_->replace_range(r, {*next}); !st)
          std::fprintf(stderr, "flowstate cluster: replicas of [%u, %u): %s\n", r.first, r.end, st.error().c_str());
      }
    }
  }

  // A node whose store cannot write (its disk is full) for a second steps
  // out of the cluster's nodes, so that its ranges fail over to in-sync
  // followers instead of refusing their keys until it has space; it
  // registers again (owning nothing, a follower to be rebuilt) once it can
  // write. A brief failure does not move anything.
  void step_down_while_unwritable() {
    const auto now = std::chrono::steady_clock::now();
    if (engine_.store_writable()) {
      unwritable_since_.reset();
      if (stepped_down_) {
        stepped_down_ = false;
        membership_->step_down(false);
        std::fprintf(stderr, "flowstate cluster: node %s can write again; registering again\n", self_.c_str());
      }
      return;
    }
    if (!unwritable_since_) unwritable_since_ = now;
    if (stepped_down_ || now - *unwritable_since_ < std::chrono::seconds(1)) return;
    stepped_down_ = true;
    membership_->step_down(true);
    std::fprintf(stderr,
                 "flowstate cluster: node %s cannot write to its store; stepping down so its ranges fail over\n",
                 self_.c_str());
  }

  // The controller's failovers and followers, on a thread of their own: a
  // move in progress (which may wait long for a node that is down) never
  // holds up a failover.
  void replica_loop() {
    name_this_thread("fs-replicas");
    std::unique_lock lock(mu_);
    while (!stopping_) {
      replicas_changed_ = false;
      lock.unlock();
      step_down_while_unwritable();
      if (membership_->is_controller()) plan_replicas(membership_->view());
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(500), [&] { return stopping_ || replicas_changed_; });
    }
  }

  // Connects to every other registered node (again after it restarted);
  // CAF's connect blocks, so it runs here, not on the watch thread.
  void connect_loop() {
    name_this_thread("fs-peers");
    std::unique_lock lock(mu_);
    while (!stopping_) {
      changed_ = false;
      lock.unlock();
      bool missing = false;
      if (auto o = gate_->current())
        for (auto& [name, n] : o->nodes) {
          if (name == self_ || n.peer.empty() || engine_.peer_connected(name, n.incarnation)) continue;
          auto route = routes_.find(name);
          const auto& address = route == routes_.end() ? n.peer : route->second;
          if (auto st = engine_.connect_peer(name, address, n.incarnation); !st) {
            missing = true;
            std::fprintf(stderr, "flowstate cluster: %s (retrying)\n", st.error().c_str());
          }
        }
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(missing ? 500 : 5000), [&] { return stopping_ || changed_; });
    }
  }

  // The controller carries out `cluster move` requests, one at a time.
  void move_loop() {
    name_this_thread("fs-mover");
    std::unique_lock lock(mu_);
    while (!stopping_) {
      moves_changed_ = false;
      lock.unlock();
      const bool controller = membership_->is_controller();
      const bool elected = controller && !was_controller_;
      was_controller_ = controller;
      if (controller) {
        auto v = membership_->view();
        bool pending = false;
        for (auto& [id, m] : v.moves) {
          if (finished_.count(id)) continue;  // done here; the view may lag behind
          if (m.state == "running") {
            if (!elected) {
              pending = true;
              break;
            }
            // Just elected: a move left "running" was a previous
            // controller's, which went away.
            auto failed = m;
            failed.state = "failed";
            failed.message = "the controller carrying it out went away; ask again (what moved stays moved)";
            (void)membership_->write_move(id, failed);
            if (id.rfind("auto-", 0) == 0) (void)membership_->remove("moves/" + id);
            continue;
          }
          if (m.state != "requested") continue;
          pending = true;
          carry_out(id, m);
          finished_.insert(id);
          if (id.rfind("auto-", 0) == 0) (void)membership_->remove("moves/" + id);
          break;
        }
        if (!pending) plan_balance(v);
      }
      lock.lock();
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || moves_changed_; });
    }
  }

  // The controller's own moves (written as moves/auto-N, like a `cluster
  // move`): every group off a draining node; an even share for a node that
  // joined owning nothing (once the node set was stable for a while); an
  // even spread when `cluster rebalance` asked.
  void plan_balance(const cluster::cluster_view& v) {
    if (v.ranges.ranges.empty()) return;
    const auto now = std::chrono::steady_clock::now();
    if (now < quiet_until_) return;
    for (auto& name : v.draining)
      if (!v.nodes.count(name)) (void)membership_->remove("draining/" + name);  // it left
    std::vector<std::string> eligible;
    for (auto& [name, _] : v.nodes)
      if (!v.draining.count(name)) eligible.push_back(name);
    if (eligible.empty()) return;
    for (auto& r : v.ranges.ranges)
      if (!v.nodes.count(r.node)) return;  // an owner is down: nothing moves until it is back
    auto per_node = v.ranges.groups_per_node();
    auto owns = [&](const std::string& n) {
      for (auto& [owner, count] : per_node)
        if (owner == n && count > 0) return true;
      return false;
    };
    for (auto& name : v.failed_over)
      if (owns(name)) (void)membership_->remove("failed-over/" + name);  // it has its share again
    bool drain = false, joined = false;
    for (auto& n : v.draining) drain = drain || owns(n);
    for (auto& n : eligible) {
      auto at = v.registered_at.find(n);
      joined = joined || (!owns(n) && at != v.registered_at.end() &&
                          (at->second > v.placement_changed_at || v.failed_over.count(n)));
    }
    std::string why = drain ? "draining" : v.rebalance ? "rebalance" : joined ? "a node joined" : "";
    if (why.empty()) return;
    if (joined && !drain && !v.rebalance) {
      // A node that just joined: wait until the node set settles.
      if (v.nodes != last_nodes_) {
        last_nodes_ = v.nodes;
        nodes_since_ = now;
        return;
      }
      if (now - nodes_since_ < settle_) return;
    }
    auto moves = cluster::plan_even(v.ranges, eligible, 4096);
    if (v.rebalance) (void)membership_->remove("rebalance");
    if (moves.empty()) return;
    std::fprintf(stderr, "flowstate cluster: controller %s plans %zu move(s) (%s)\n", self_.c_str(), moves.size(),
                 why.c_str());
    for (auto& m : moves) {
      char id[32];
      std::snprintf(id, sizeof id, "auto-%lld-%04llu",
                    static_cast<long long>(std::chrono::system_clock::now().time_since_epoch().count() / 1000000),
                    static_cast<unsigned long long>(++auto_moves_));
      if (auto st = membership_->write_move(id, m); !st) {
        std::fprintf(stderr, "flowstate cluster: %s\n", st.error().c_str());
        break;
      }
    }
  }

  void carry_out(const std::string& id, cluster::move_request m) {
    m.state = "running";
    (void)membership_->write_move(id, m);
    auto finish = [&](std::string state, std::string message) {
      m.state = std::move(state);
      m.message = std::move(message);
      if (auto st = membership_->write_move(id, m); !st)
        std::fprintf(stderr, "flowstate cluster: recording the outcome of move %s: %s\n", id.c_str(),
                     st.error().c_str());
    };
    uint32_t moved = 0, ranges = 0;
    for (;;) {
      auto v = membership_->view();
      auto to = v.nodes.find(m.to);
      if (to == v.nodes.end()) return finish("failed", "node " + m.to + " is not in the cluster");
      const cluster::range_owner* next = nullptr;
      for (auto& r : v.ranges.ranges)
        if (r.first < m.end && m.first < r.end && r.node != m.to) {
          next = &r;
          break;
        }
      if (!next) break;
      const auto r = *next;
      const uint32_t first = std::max(m.first, r.first), end = std::min(m.end, r.end);
      auto groups = "key groups [" + std::to_string(first) + ", " + std::to_string(end) + ")";
      if (!v.nodes.count(r.node))
        return finish("failed", groups + " belong to node " + r.node +
                                    ", which is not in the cluster now: a range whose leader is unreachable is "
                                    "never moved (with replicas it fails over to a follower instead)");
      // An in-sync follower (with the data directory it follows into) takes
      // the groups over from its own copy: nothing is copied, and the
      // range keeps every in-sync copy it has.
      bool transfer = false;
      for (auto& rep : r.replicas)
        transfer = transfer || (rep.node == m.to && rep.store_id == to->second.store_id && r.is_in_sync(m.to));
      if (!transfer && r.is_replica(m.to)) {
        // The target gives up its follower's copy when the copy of the move
        // begins: first it stops being one (it then counts for no commit).
        auto next = cluster::without_follower(r, m.to);
        if (auto st = membership_->replace_range(r, {next}); !st)
          return finish("failed", "taking " + m.to + " out of the followers of " + groups + ": " + st.error());
        membership_->wait_for(
            [&](const cluster::cluster_view& now) {
              auto* o = now.ranges.owner_of(r.first);
              return !o || !o->is_replica(m.to);
            },
            10000);
        continue;  // again, from the view that shows it
      }
      const auto to_store = to->second.store_id;
      auto out =
          engine_.move_groups(first, end, r.node, m.to, transfer, [&](const engine::log_position& held) -> status {
            // The range's leader may have changed its followers or in-sync set
            // during the copy (a follower caught up or fell behind): written
            // from the record as it is now, while it is the same range under
            // the same leader and epoch.
            auto now = r;
            status st = status::success();
            for (int attempt = 0; attempt < 5; ++attempt) {
              // A transfer needs the target still in sync (a follower leaves the
              // set before its copy is rebuilt).
              if (transfer && !now.is_in_sync(m.to))
                return fail("node " + m.to + " left the in-sync set of " + groups + " during the hand-over");
              st = membership_->replace_range(
                  now, cluster::split_for_move(now, first, end, m.to, to_store, transfer, held.log, held.index));
              if (st || st.error().rfind(engine::placement_outcome_unknown, 0) == 0) return st;
              auto v2 = membership_->view();
              auto* o = v2.ranges.owner_of(r.first);
              if (!o || o->first != r.first || o->end != r.end || o->node != r.node || o->epoch != r.epoch) return st;
              if (*o == now) std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the view lags etcd
              now = *o;
            }
            return st;
          });
      if (!out) {
        quiet_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(10);  // no automatic plan meanwhile
        return finish("failed", "moving " + groups + " from " + r.node + " to " + m.to + ": " + out.error());
      }
      m.longest_pause_ms = std::max(m.longest_pause_ms, out->pause_ms);
      moved += end - first;
      ++ranges;
      // The next range is chosen from a view that shows this one moved.
      membership_->wait_for(
          [&](const cluster::cluster_view& now) {
            auto* o = now.ranges.owner_of(first);
            return o && o->node == m.to;
          },
          10000);
    }
    finish("done",
           "moved " + std::to_string(moved) + " key group(s) in " + std::to_string(ranges) + " range(s) to " + m.to);
  }

  std::map<std::string, std::string> routes_;  // --peer-route
  std::unique_ptr<cluster::membership> membership_;
  std::unique_ptr<cluster_deployer> deployer_;
  engine& engine_;
  std::shared_ptr<gate_state> gate_;
  std::string self_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool changed_ = false, moves_changed_ = false, stopping_ = false;
  std::mutex callback_mu_;
  bool closing_ = false;            // the view's callback no longer touches the deployer
  bool was_controller_ = false;     // mover thread
  std::set<std::string> finished_;  // mover thread: moves carried out here
  // The controller's planning (mover thread).
  std::chrono::milliseconds settle_;
  std::chrono::steady_clock::time_point quiet_until_{}, nodes_since_{};
  std::map<std::string, cluster::node_info> last_nodes_;
  uint64_t auto_moves_ = 0;
  uint64_t failovers_ = 0;  // replicas thread
  // Replicas thread: since when the store cannot write; whether stepped down.
  std::optional<std::chrono::steady_clock::time_point> unwritable_since_;
  bool stepped_down_ = false;
  std::thread connector_, mover_, replicas_;
  bool replicas_changed_ = false;  // under mu_
};

}  // namespace

result<std::string> cluster_secret(const cluster_flags& flags) {
  std::string secret;
  if (!flags.secret_file.empty()) {
    auto text = read_file(flags.secret_file);
    if (!text) return fail("--cluster-secret-file " + flags.secret_file + ": cannot read it");
    secret = *text;
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  } else if (const char* env = std::getenv("FLOWSTATE_CLUSTER_SECRET")) {
    secret = env;
  }
  if (secret.size() < 16)
    return fail(
        "--peer-listen needs the cluster's shared secret, at least 16 characters: --cluster-secret-file FILE "
        "or FLOWSTATE_CLUSTER_SECRET (every node of the cluster uses the same one)");
  return secret;
}

std::function<result<uint32_t>(const std::string&)> project_ids_in(const cluster_flags& flags) {
  auto etcd = cluster::etcd_options::at(flags.etcd);
  etcd.user = flags.etcd_user;
  etcd.password = flags.etcd_password;
  return [etcd, name = flags.name](const std::string& project) {
    return cluster::cluster_project_id(etcd, name, project);
  };
}

result<std::unique_ptr<cluster_node>> join_cluster(const cluster_flags& flags, engine& eng,
                                                   const std::string& http_address, const std::string& admin_address) {
  if (flags.node.empty()) return fail("--cluster needs --node NAME (the node's name in the cluster)");
  // It is part of etcd keys, trace cursors ("NODE:CURSOR,...") and metrics labels.
  if (flags.node.size() > 63 || !std::all_of(flags.node.begin(), flags.node.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      }))
    return fail("--node \"" + flags.node + "\": a node name is 1 to 63 letters, digits, '-', '_' or '.'");
  int64_t ttl_ms = parse_age_ms(flags.lease_ttl);
  if (ttl_ms < 1000 || ttl_ms > 3600 * 1000 || ttl_ms % 1000)
    return fail("expected --lease-ttl in whole seconds from 1s to 1h, like 5s, found \"" + flags.lease_ttl + "\"");
  int64_t settle_ms = parse_age_ms(flags.settle);
  if (settle_ms < 0 || settle_ms > 3600 * 1000)
    return fail("expected --cluster-settle like 2s or 1m (at most 1h), found \"" + flags.settle + "\"");
  cluster::membership_options o;
  o.settle_ms = static_cast<int>(settle_ms);
  o.etcd.endpoint = flags.etcd;
  o.etcd.user = flags.etcd_user;
  o.etcd.password = flags.etcd_password;
  o.cluster = flags.name;
  o.lease_ttl_s = static_cast<int>(ttl_ms / 1000);
  o.self.name = flags.node;
  o.self.store_id = eng.store_id();
  o.self.incarnation = eng.incarnation();
  o.self.peer = !flags.peer_advertise.empty() ? flags.peer_advertise
                : eng.peer_address().empty()  ? flags.peer_listen
                                              : eng.peer_address();
  std::map<std::string, std::string> routes;
  for (std::size_t at = 0; at < flags.peer_routes.size();) {
    auto comma = flags.peer_routes.find(',', at);
    if (comma == std::string::npos) comma = flags.peer_routes.size();
    const auto r = flags.peer_routes.substr(at, comma - at);
    at = comma + 1;
    auto eq = r.find('=');
    if (eq == std::string::npos || eq == 0 || r.find(':', eq) == std::string::npos)
      return fail("--peer-route \"" + r + "\": expected NODE=HOST:PORT");
    routes[r.substr(0, eq)] = r.substr(eq + 1);
  }
  o.self.http = http_address;
  o.self.admin = admin_address;
  auto m = cluster::membership::join(std::move(o));
  if (!m) return fail("joining cluster \"" + flags.name + "\" at " + flags.etcd + ": " + m.error());
  std::printf("flowstate: node %s joined cluster %s (etcd %s)\n", flags.node.c_str(), flags.name.c_str(),
              flags.etcd.c_str());
  auto gate = std::make_shared<gate_state>(eng, flags.node, eng.store_id(), static_cast<int>(ttl_ms / 1000));
  return std::unique_ptr<cluster_node>(
      new member_node(std::move(*m), eng, std::move(gate), flags.node, static_cast<int>(settle_ms), std::move(routes)));
}

}  // namespace flowstate::cli
