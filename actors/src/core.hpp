#pragma once
// What every shard shares: the store, the shard handles, the in-flight
// counters, and the helpers that turn results into commits and replies.
#include <caf/actor.hpp>
#include <caf/atom.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "flowstate/actors/engine.hpp"
#include "flowstate/runtime/store.hpp"
#include "idempotency.hpp"
#include "model.hpp"
#include "trace.hpp"
#include "trace_watch.hpp"

namespace flowstate::engine_detail {

// To a shard: forget cached states of key groups [first, end) (they moved).
// To the outbox: forget its entries of source groups [first, end) (their
// records moved), or read the store again (records arrived).
using forget_groups_atom = caf::atom_constant<caf::atom("fs_forget")>;
using reload_outbox_atom = caf::atom_constant<caf::atom("fs_reload")>;

struct engine_core {
  store* db = nullptr;
  std::vector<caf::actor> shards;
  std::unique_ptr<std::atomic<std::size_t>[]> in_flight;  // per shard
  std::size_t max_in_flight = 2048;
  std::size_t state_cache_bytes = 256u << 20;  // shared by the shards
  std::size_t shards_planned = 1;
  std::atomic<bool> draining{false};
  // A write failed (disk full): new input gets 503 until the store resumes
  // and the queue was read again (engine maintenance).
  std::atomic<bool> writes_paused{false};
  idempotency_registry idempotency;
  trace_bytes trace_accounting;
  trace_watchers trace_watch;  // told when commits with trace events are durable

  // In a cluster: which node runs each key group (engine::set_key_group_gate).
  std::shared_ptr<const engine::key_group_gate> gate;  // atomic_load/store
  std::atomic<bool> has_gate{false};                   // the embedded node skips the gate's lock
  std::atomic<bool> gate_pending{false};               // a cluster node before set_key_group_gate: runs nothing
  // The gate, or null on an embedded node (every group runs here).
  std::shared_ptr<const engine::key_group_gate> current_gate() const {
    if (!has_gate.load(std::memory_order_acquire)) return nullptr;
    auto g = std::atomic_load(&gate);
    return g && *g ? g : nullptr;
  }
  // True when this node runs key group `group` now.
  bool runs_here(uint32_t group) const {
    if (gate_pending.load(std::memory_order_acquire)) return false;
    auto g = current_gate();
    if (!g) return true;
    auto d = (*g)(group);
    return !d.refuse && d.forward_to.empty();
  }
  // The outbox actor (outbox.hpp): messages for key groups of other nodes,
  // handed to it once the commit that wrote them is durable.
  caf::actor outbox;
  std::atomic<uint64_t> outbox_pending{0}, outbox_delivered{0}, inbox_accepted{0}, inbox_repeats{0};
  // Messages the outbox delivered, by the node that accepted them (the
  // cluster's actor graph).
  mutable std::mutex sent_mu;
  std::map<std::string, uint64_t> sent_to;

  // The sinks actor (sinks.hpp): outputs for sink blocks, handed to it once
  // the commit that wrote them is durable; and what it reports.
  caf::actor sinks;
  struct sink_counts {
    uint64_t pending = 0, delivered = 0, retries = 0, failed = 0;
  };
  mutable std::mutex sinks_mu;
  std::map<std::tuple<uint32_t, std::string, std::string>, sink_counts> sink_stats;  // (project, flow, block)
  // Projects with sink_backlog deliveries pending or more: their sources
  // take no new input until it shrinks.
  std::set<uint32_t> sinks_backed_up;
  std::atomic<bool> any_sink_backed_up{false};
  std::size_t sink_backlog = 10000;
  bool sink_backed_up(uint32_t project) const {
    if (!any_sink_backed_up.load(std::memory_order_relaxed)) return false;
    std::lock_guard lock(sinks_mu);
    return sinks_backed_up.count(project) > 0;
  }

  // Key groups being moved away (docs/cluster.md "Moving key groups"): new
  // requests for them wait, messages for them stay in the queue unrun, and
  // what runs already finishes (counted per group).
  std::unique_ptr<std::atomic<bool>[]> frozen = std::make_unique<std::atomic<bool>[]>(key_group_count);
  std::unique_ptr<std::atomic<uint32_t>[]> group_in_flight = std::make_unique<std::atomic<uint32_t>[]>(key_group_count);
  bool is_frozen(uint32_t group) const { return frozen[group].load(std::memory_order_acquire); }

  // Per key group, the first group of the range this node leads that holds
  // it (not_led: none), on a cluster node with peers (set_led_ranges). A
  // commit is atomic only within one range: each range has its own
  // replication log and may fail over to another node. So a message for a
  // group of another range is not put in that group's queue by the commit
  // that produced it, even here; it goes through the outbox, whose marks
  // keep it exactly once whichever nodes end up leading both ranges.
  static constexpr uint32_t not_led = 0xffffffffu;
  std::atomic<bool> tracks_ranges{false};
  std::unique_ptr<std::atomic<uint32_t>[]> led_range = std::make_unique<std::atomic<uint32_t>[]>(key_group_count);
  bool one_commit_may_write(uint32_t group, uint32_t other) const {
    if (!tracks_ranges.load(std::memory_order_acquire)) return true;
    const uint32_t r = led_range[group].load(std::memory_order_acquire);
    return r != not_led && r == led_range[other].load(std::memory_order_acquire);
  }

  std::size_t shard_of(std::string_view key) const {
    return static_cast<std::size_t>(key_group_of(key)) * shards.size() / key_group_count;
  }
  // Bytes of each shard's state cache, as it last reported them.
  std::unique_ptr<std::atomic<std::size_t>[]> state_cache_bytes_used;
  std::size_t state_cache_used() const {
    std::size_t n = 0;
    if (state_cache_bytes_used)
      for (std::size_t i = 0; i < shards.size(); ++i) n += state_cache_bytes_used[i].load(std::memory_order_relaxed);
    return n;
  }
  std::size_t total_in_flight() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < shards.size(); ++i) n += in_flight[i].load();
    return n;
  }
};

// A change of key group `group` made off the shards (a timer's tick, an
// error's replay), counted while it is accepted, so that a move of the
// group waits for it. here() is false while the group is being moved or
// another node runs it: then nothing is changed.
class group_admission {
 public:
  group_admission(const engine_core& core, uint32_t group) : core_(core), group_(group) {
    core_.group_in_flight[group_].fetch_add(1);
  }
  ~group_admission() { core_.group_in_flight[group_].fetch_sub(1); }
  group_admission(const group_admission&) = delete;
  group_admission& operator=(const group_admission&) = delete;
  bool here() const { return !core_.is_frozen(group_) && core_.runs_here(group_); }

 private:
  const engine_core& core_;
  uint32_t group_;
};

// The answer when a commit was never written (on_failed): 503 "outcome
// unknown" in a cluster (the key group's replicas may have it, or the node
// stopped leading the group before they acknowledged it), else 503
// "unavailable"; the requests waiting on the same Idempotency-Key get it
// too. `queued`: an earlier step of the request is committed already.
void answer_unwritten(engine_core* core, http::responder_ptr reply, std::string idem, bool queued,
                      const std::string& reason = {});

// Spawns one shard actor.
caf::actor spawn_shard(caf::actor_system& sys, engine_core& core, std::size_t index);

}  // namespace flowstate::engine_detail
