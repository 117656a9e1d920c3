#include "outbox.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <set>
#include <tuple>

#include "core.hpp"
#include "flowstate/runtime/keys.hpp"
#include "records.hpp"

namespace flowstate::engine_detail {

// What a delivery to one node (or to this node) came back with.
struct delivery_result {
  std::string target;                                                     // "" = this node
  std::vector<std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>> pairs;  // per entry sent, its pair
  std::vector<uint64_t> seqs;                                             // and its sequence
  std::optional<std::vector<delivery_status>> statuses;
};
using delivery_result_ptr = std::shared_ptr<delivery_result>;

}  // namespace flowstate::engine_detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::delivery_result_ptr)

namespace flowstate::engine_detail {
namespace {

using retry_atom = caf::atom_constant<caf::atom("fs_oretry")>;

// (tenant, project, source group, destination group)
using pair_id = std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>;
// (tenant, project, source group)
using source_id = std::tuple<uint32_t, uint32_t, uint32_t>;

// Held in memory at most; past it, new entries stay in the store only and
// are read back once the backlog has halved.
constexpr std::size_t memory_cap = 100000;
constexpr std::size_t batch_entries = 512;
constexpr std::size_t batch_bytes = 4u << 20;
constexpr uint32_t delivery_timeout_ms = 10000;

struct pair_queue {
  std::deque<delivery_entry> entries;
  bool in_flight = false;
};

struct outbox_state {
  engine_core* core = nullptr;
  outbox_links links;
  std::map<pair_id, pair_queue> pairs;
  std::set<pair_id> ready;     // not in flight, not empty
  std::set<pair_id> waiting;   // not empty, waiting for the retry after a failed delivery
  std::set<std::string> busy;  // targets with a delivery in flight ("" = here)
  std::set<std::tuple<uint32_t, uint32_t, uint32_t, uint64_t>>
      held_ids;          // (tenant, project, source group, seq) in memory
  std::size_t held = 0;  // entries in memory
  bool overflow = true;  // some entries are only in the store (true at start)
  // Per source group: its stored entries were read back since it began to
  // run here. Until then a new entry of the group waits in the store too:
  // sent first, it would set its receiver's mark above the older entries a
  // failover or a move brought here, and they would be taken for repeats.
  std::vector<bool> loaded;
  bool retry_scheduled = false;
  uint32_t backoff_ms = 100;
};

uint32_t destination_group(const delivery_entry& e) {
  auto q = decode_queued(e.queued);
  return q ? key_group_of(q->msg.key) : 0;
}

class outbox_logic {
 public:
  explicit outbox_logic(caf::stateful_actor<outbox_state>* self) : self_(self), st_(self->state) {}

  void on_entries(outgoing_entries& entries) {
    for (auto& e : *entries) {
      if (st_.held_ids.count({e.tenant, e.project, e.source_group, e.seq})) continue;  // read back already
      if (st_.overflow || st_.held >= memory_cap || !is_loaded(e.source_group)) {
        st_.overflow = true;  // stays in the store; read back later, in order
        continue;
      }
      add(std::move(e));
    }
    pump();
  }

  void on_result(delivery_result_ptr& r) {
    st_.busy.erase(r->target);
    commit_batch erase;
    std::set<pair_id> stopped;
    std::size_t i = 0;
    bool failed = !r->statuses;
    for (auto& pid : r->pairs) {
      const auto status = r->statuses ? (*r->statuses)[i] : delivery_status::later;
      ++i;
      auto found = st_.pairs.find(pid);
      // Forgotten meanwhile (its groups moved away), perhaps read back since.
      if (found == st_.pairs.end() || found->second.entries.empty() ||
          found->second.entries.front().seq != r->seqs[i - 1])
        continue;
      auto& q = found->second;
      q.in_flight = false;
      if (stopped.count(pid)) continue;
      if (status != delivery_status::accepted) {
        // The rest of the pair waits behind this one, until the retry.
        stopped.insert(pid);
        failed = true;
        continue;
      }
      auto& e = q.entries.front();
      erase.erase(column::outbox, outbox_key(e.tenant, e.project, e.source_group, e.seq));
      st_.held_ids.erase({e.tenant, e.project, e.source_group, e.seq});
      q.entries.pop_front();
      --st_.held;
      st_.core->outbox_delivered.fetch_add(1, std::memory_order_relaxed);
    }
    for (auto& pid : r->pairs) {
      auto it = st_.pairs.find(pid);
      if (it == st_.pairs.end()) continue;
      if (it->second.entries.empty()) {
        st_.pairs.erase(it);
        st_.ready.erase(pid);
      } else if (stopped.count(pid) || !r->statuses) {
        st_.waiting.insert(pid);  // no answer, or not accepted: again at the retry
      } else {
        st_.ready.insert(pid);
      }
    }
    if (!r->target.empty() && !erase.empty()) {
      std::lock_guard lock(st_.core->sent_mu);
      st_.core->sent_to[r->target] += erase.size();
    }
    // A lost delete sends the entry again, which its receiver recognises.
    if (!erase.empty()) st_.core->db->commit(std::move(erase), durability_mode::relaxed, [] {});
    if (failed) {
      st_.backoff_ms = std::min<uint32_t>(st_.backoff_ms * 2, 2000);
      schedule_retry();
    } else {
      st_.backoff_ms = 100;
    }
    publish();
    pump();
  }

  // Entries arrived with key groups moved here: read the store again.
  void on_reload() {
    st_.overflow = true;
    st_.loaded.assign(st_.loaded.size(), false);
    pump();
  }

  // The records of source groups [first, end) moved to another node, which
  // sends their entries now: drop them here (a delivery in flight is
  // answered into nothing; the receiver's marks make both harmless).
  void on_forget(uint32_t first, uint32_t end) {
    for (uint32_t g = first; g < end && g < st_.loaded.size(); ++g) st_.loaded[g] = false;
    for (auto it = st_.pairs.begin(); it != st_.pairs.end();) {
      const uint32_t g = std::get<2>(it->first) & ~source_lane;
      if (g < first || g >= end) {
        ++it;
        continue;
      }
      st_.held -= it->second.entries.size();
      for (auto& e : it->second.entries) st_.held_ids.erase({e.tenant, e.project, e.source_group, e.seq});
      st_.ready.erase(it->first);
      st_.waiting.erase(it->first);
      it = st_.pairs.erase(it);
    }
    publish();
  }

  void on_retry() {
    st_.retry_scheduled = false;
    st_.ready.insert(st_.waiting.begin(), st_.waiting.end());
    st_.waiting.clear();
    pump();
  }

  void pump() {
    if (st_.overflow && st_.held <= memory_cap / 2) read_back();
    // Per target, the ready pairs' entries, in sequence order within a pair.
    std::map<std::string, std::vector<pair_id>> by_target;
    bool parked = false;
    for (auto& pid : st_.ready) {
      auto target = target_of(std::get<3>(pid));
      if (!target) {
        parked = true;  // placed nowhere reachable now: wait
        continue;
      }
      if (st_.busy.count(*target)) continue;
      by_target[*target].push_back(pid);
    }
    for (auto& [target, pids] : by_target) send(target, pids);
    if (parked) schedule_retry();
    publish();
  }

 private:
  bool is_loaded(uint32_t source_group) const {
    const uint32_t g = source_group & ~source_lane;
    return g < st_.loaded.size() && st_.loaded[g];
  }

  void add(delivery_entry&& e) {
    pair_id pid{e.tenant, e.project, e.source_group, destination_group(e)};
    auto& q = st_.pairs[pid];
    st_.held_ids.insert({e.tenant, e.project, e.source_group, e.seq});
    // In sequence order (entries read back from the store may come after
    // newer ones), but never ahead of a delivery in flight.
    auto at = q.entries.end();
    if (!q.in_flight)
      while (at != q.entries.begin() && std::prev(at)->seq > e.seq) --at;
    q.entries.insert(at, std::move(e));
    ++st_.held;
    if (!q.in_flight && !st_.waiting.count(pid)) st_.ready.insert(pid);
  }

  // The node that runs `group` now ("" = this one), or nullopt when no
  // node can take it now (not placed, owner down or not connected).
  std::optional<std::string> target_of(uint32_t group) const {
    auto gate = st_.core->current_gate();
    if (!gate) return std::string();
    auto d = (*gate)(group);
    if (d.refuse) return std::nullopt;
    return d.forward_to;
  }

  void send(const std::string& target, const std::vector<pair_id>& pids) {
    auto r = std::make_shared<delivery_result>();
    r->target = target;
    std::vector<delivery_entry> entries;
    std::size_t bytes = 0;
    for (auto& pid : pids) {
      auto& q = st_.pairs[pid];
      for (auto& e : q.entries) {
        if (entries.size() >= batch_entries || bytes >= batch_bytes) break;
        entries.push_back(e);
        bytes += e.queued.size();
        r->pairs.push_back(pid);
        r->seqs.push_back(e.seq);
      }
      q.in_flight = true;
      st_.ready.erase(pid);
      if (entries.size() >= batch_entries || bytes >= batch_bytes) break;
    }
    if (entries.empty()) return;
    st_.busy.insert(target);
    caf::actor me = caf::actor_cast<caf::actor>(self_);
    auto done = [me, r](std::optional<std::vector<delivery_status>> statuses) {
      r->statuses = std::move(statuses);
      caf::anon_send(me, r);
    };
    if (target.empty())
      st_.links.accept_here(std::move(entries), std::move(done));
    else
      st_.links.send(target, entries, std::move(done));
  }

  // Reads entries the memory did not hold back from the store, in key
  // order (per source group, in sequence order), up to the cap.
  void read_back() {
    std::size_t loaded = 0;
    bool full = false;
    // The groups running here before the scan: their stored entries are all
    // read by it (a group that begins to run here during it waits for the
    // next one).
    std::vector<bool> running(st_.core->db->key_groups());
    for (uint32_t g = 0; g < running.size(); ++g) running[g] = st_.core->runs_here(g);
    auto st = st_.core->db->scan_prefix(column::outbox, "", [&](std::string_view key, std::string_view value) {
      key_reader kr(key);
      auto tenant = kr.u32(), project = kr.u32(), group = kr.u32();
      if (!tenant || !project || !group) return true;
      uint32_t lane = 0;  // source_lane: a source's message accepted here (keys.hpp)
      if (kr.peek() == key_tag::string) {
        auto tag = kr.str();
        if (!tag || *tag != "src") return true;  // a sink's entry
        lane = source_lane;
      } else if (kr.peek() != key_tag::u64) {
        return true;  // a mark
      }
      auto seq = kr.u64();
      if (!seq) return true;
      if (st_.held_ids.count({*tenant, *project, *group | lane, *seq})) return true;
      // A copy of a group this node does not run (moved away, or a move
      // that did not finish) is never sent from here: its owner sends it.
      if (!st_.core->runs_here(*group)) return true;
      if (st_.held >= memory_cap) {
        full = true;
        return false;
      }
      add(delivery_entry{*tenant, *project, *group | lane, *seq, std::string(value)});
      ++loaded;
      return true;
    });
    if (!st) {
      std::fprintf(stderr, "flowstate outbox: reading it back: %s (retrying)\n", st.error().c_str());
      schedule_retry();
      return;
    }
    st_.overflow = full;
    if (!full) st_.loaded = std::move(running);
    if (loaded) std::fprintf(stderr, "flowstate outbox: %zu message(s) for other nodes to send\n", loaded);
  }

  void schedule_retry() {
    if (st_.retry_scheduled) return;
    st_.retry_scheduled = true;
    self_->delayed_send(self_, std::chrono::milliseconds(st_.backoff_ms), retry_atom::value);
  }

  void publish() { st_.core->outbox_pending.store(st_.held, std::memory_order_relaxed); }

  caf::stateful_actor<outbox_state>* self_;
  outbox_state& st_;
};

caf::behavior outbox_actor(caf::stateful_actor<outbox_state>* self, engine_core* core, outbox_links links) {
  self->state.core = core;
  self->state.links = std::move(links);
  auto logic = std::make_shared<outbox_logic>(self);
  // Read the store first: entries of commits before this start.
  self->send(self, retry_atom::value);
  self->state.retry_scheduled = true;
  return {
      [logic](outgoing_entries& entries) { logic->on_entries(entries); },
      [logic](delivery_result_ptr& r) { logic->on_result(r); },
      [logic](retry_atom) { logic->on_retry(); },
      [logic](reload_outbox_atom) { logic->on_reload(); },
      [logic](forget_groups_atom, uint32_t first, uint32_t end) { logic->on_forget(first, end); },
  };
}

}  // namespace

caf::actor spawn_outbox(caf::actor_system& sys, engine_core& core, outbox_links links) {
  return sys.spawn(outbox_actor, &core, std::move(links));
}

}  // namespace flowstate::engine_detail
