#include "sinks.hpp"

#include <caf/all.hpp>

#include <cstdio>
#include <deque>
#include <map>
#include <random>
#include <set>

#include "core.hpp"
#include "errors.hpp"
#include "flowstate/drivers/http_types.hpp"
#include "flowstate/drivers/sink.hpp"
#include "flowstate/runtime/keys.hpp"
#include "records.hpp"

namespace flowstate::engine_detail {

// A driver's answer for one delivery, back to the sinks actor.
struct sink_done {
  std::string stream;
  uint64_t seq = 0;
  drivers::sinks::outcome outcome;
};
using sink_done_ptr = std::shared_ptr<sink_done>;

}  // namespace flowstate::engine_detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::sink_done_ptr)

namespace flowstate::engine_detail {
namespace {

using sink_wake_atom = caf::atom_constant<caf::atom("fs_swake")>;
namespace sk = drivers::sinks;

// (project, flow, block): a sink block, across revisions.
using block_ref = std::tuple<uint32_t, std::string, std::string>;

struct pending {
  sink_entry where;  // its store key's parts (queued: empty)
  queued_input q;
};

// The deliveries of one (project, flow, block, key), in sequence order.
struct stream {
  uint32_t tenant = 0, project = 0, group = 0;
  block_ref block;
  std::deque<pending> entries;
  bool in_flight = false;
  uint32_t failures = 0;   // failed tries of the front entry
  int64_t not_before = 0;  // steady ms: waiting for a retry until then
};

struct sinks_state {
  engine_core* core = nullptr;
  sinks_links links;
  std::map<std::string, stream> streams;
  std::map<block_ref, std::set<std::string>> ready;  // per block: streams that may start now
  std::set<std::string> waiting;                     // a retry later, or parked (group or project not here now)
  std::map<block_ref, uint32_t> running;
  std::set<std::tuple<uint32_t, uint32_t, uint32_t, uint64_t>> held;  // (tenant, project, group, seq) in memory
  std::map<block_ref, engine_core::sink_counts> counts;
  std::map<uint32_t, uint64_t> pending_per_project;
  int64_t wake_at = 0;  // the earliest wake scheduled (steady ms), 0: none
  std::mt19937_64 rng{std::random_device{}()};
};

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class sinks_logic {
 public:
  explicit sinks_logic(caf::stateful_actor<sinks_state>* self) : self_(self), st_(self->state) {}

  void on_entries(sink_entries& entries) {
    for (auto& e : *entries) add(std::move(e));
    pump();
  }

  void on_done(sink_done_ptr& d) {
    auto it = st_.streams.find(d->stream);
    if (it == st_.streams.end() || it->second.entries.empty() || it->second.entries.front().where.seq != d->seq) {
      pump();  // forgotten meanwhile (its group moved away)
      return;
    }
    auto& s = it->second;
    s.in_flight = false;
    if (auto r = st_.running.find(s.block); r != st_.running.end() && r->second > 0) --r->second;
    auto& counts = st_.counts[s.block];
    const auto& o = d->outcome;
    if (o.v == sk::verdict::delivered) {
      commit_batch erase;
      const auto& w = s.entries.front().where;
      erase.erase(column::outbox, sink_entry_key(w.tenant, w.project, w.group, w.seq));
      // A lost delete delivers it again, with the same id for the target.
      st_.core->db->commit(std::move(erase), durability_mode::relaxed, [] {});
      ++counts.delivered;
      pop(s);
    } else {
      ++s.failures;
      const auto rt = st_.links.active(s.project);
      const auto* block = rt ? block_of(*rt, s.entries.front().q) : nullptr;
      const auto policy = block ? block->sink->retry() : sk::retry_policy{};
      if (o.v == sk::verdict::retry && s.failures < policy.attempts) {
        ++counts.retries;
        const double unit = std::uniform_real_distribution<double>(0.0, 1.0)(st_.rng);
        s.not_before =
            steady_ms() + static_cast<int64_t>(sk::retry_delay_ms(policy, s.failures, unit, o.retry_after_ms));
        st_.waiting.insert(d->stream);
        std::fprintf(stderr, "flowstate sink %s of flow %s: try %u of %u failed (%s); again in %lld ms\n",
                     std::get<2>(s.block).c_str(), std::get<1>(s.block).c_str(), s.failures, policy.attempts,
                     o.answer.c_str(), static_cast<long long>(s.not_before - steady_ms()));
      } else {
        ++counts.failed;
        std::string why = o.v == sk::verdict::permanent
                              ? "the target refused the delivery: " + o.answer
                              : "gave up after " + std::to_string(s.failures) + " tries; the last: " + o.answer;
        fail_front(s, "SinkFailed", std::move(why), o.answer);
      }
    }
    settle(d->stream);
    pump();
  }

  // Reads the sink entries of the groups that run here back from the store.
  void on_reload() {
    std::size_t loaded = 0;
    auto st = st_.core->db->scan_prefix(column::outbox, "", [&](std::string_view key, std::string_view value) {
      auto id = parse_sink_entry_key(key);
      if (!id || st_.held.count({id->tenant, id->project, id->key_group, id->seq})) return true;
      if (!st_.core->runs_here(id->key_group)) return true;  // its owner delivers it
      add(sink_entry{id->tenant, id->project, id->key_group, id->seq, std::string(value)});
      ++loaded;
      return true;
    });
    if (!st) std::fprintf(stderr, "flowstate sinks: reading the deliveries back: %s\n", st.error().c_str());
    if (loaded) std::fprintf(stderr, "flowstate sinks: %zu delivery(ies) to make\n", loaded);
    pump();
  }

  // Key groups [first, end) moved to another node, which delivers their
  // entries now (a delivery in flight may reach the target twice, with the
  // same id).
  void on_forget(uint32_t first, uint32_t end) {
    for (auto it = st_.streams.begin(); it != st_.streams.end();) {
      auto& s = it->second;
      if (s.group < first || s.group >= end) {
        ++it;
        continue;
      }
      while (!s.entries.empty()) pop(s);
      if (s.in_flight)
        if (auto r = st_.running.find(s.block); r != st_.running.end() && r->second > 0) --r->second;
      st_.ready[s.block].erase(it->first);
      st_.waiting.erase(it->first);
      it = st_.streams.erase(it);
    }
    pump();
  }

  void on_wake() {
    const int64_t now = steady_ms();
    if (now >= st_.wake_at) st_.wake_at = 0;
    for (auto it = st_.waiting.begin(); it != st_.waiting.end();) {
      auto s = st_.streams.find(*it);
      if (s == st_.streams.end() || s->second.entries.empty()) {
        it = st_.waiting.erase(it);
      } else if (s->second.not_before <= now) {
        st_.ready[s->second.block].insert(*it);
        it = st_.waiting.erase(it);
      } else {
        ++it;
      }
    }
    pump();
  }

 private:
  static const block_rt* block_of(const project_rt& rt, const queued_input& q) {
    int f = rt.find_flow(q.flow);
    if (f < 0) return nullptr;
    int b = rt.flows[static_cast<std::size_t>(f)].find_block(q.block);
    if (b < 0) return nullptr;
    const auto& block = rt.flows[static_cast<std::size_t>(f)].blocks[static_cast<std::size_t>(b)];
    return block.kind == block_kind::sink && block.sink ? &block : nullptr;
  }

  void add(sink_entry&& e) {
    if (!st_.held.insert({e.tenant, e.project, e.group, e.seq}).second) return;
    auto q = decode_queued(e.queued);
    if (!q) {
      std::fprintf(stderr, "flowstate sinks: a delivery that cannot be read (%s) is skipped\n", q.error().c_str());
      st_.held.erase({e.tenant, e.project, e.group, e.seq});
      return;
    }
    auto id = key_builder().u32(e.tenant).u32(e.project).str(q->flow).str(q->block).str(q->msg.key).take();
    auto& s = st_.streams[id];
    if (s.entries.empty() && !s.in_flight) {
      s.tenant = e.tenant;
      s.project = e.project;
      s.group = e.group;
      s.block = block_ref{e.project, q->flow, q->block};
    }
    e.queued.clear();
    // In sequence order (entries read back may come after newer ones), but
    // never ahead of a delivery in flight.
    auto at = s.entries.end();
    const auto floor = s.in_flight ? std::next(s.entries.begin()) : s.entries.begin();
    while (at != floor && std::prev(at)->where.seq > e.seq) --at;
    s.entries.insert(at, pending{std::move(e), std::move(*q)});
    ++st_.counts[s.block].pending;
    ++st_.pending_per_project[s.project];
    if (!s.in_flight && !st_.waiting.count(id)) st_.ready[s.block].insert(id);
  }

  void pop(stream& s) {
    const auto& w = s.entries.front().where;
    st_.held.erase({w.tenant, w.project, w.group, w.seq});
    s.entries.pop_front();
    s.failures = 0;
    s.not_before = 0;
    auto& c = st_.counts[s.block];
    if (c.pending) --c.pending;
    if (auto& n = st_.pending_per_project[s.project]; n) --n;
  }

  // After a delivery ended: the stream goes on, waits, or is done.
  void settle(const std::string& id) {
    auto it = st_.streams.find(id);
    if (it == st_.streams.end()) return;
    if (it->second.entries.empty()) {
      st_.ready[it->second.block].erase(id);
      st_.waiting.erase(id);
      st_.streams.erase(it);
    } else if (!st_.waiting.count(id)) {
      st_.ready[it->second.block].insert(id);
    }
  }

  // The front entry failed for good: an error record, in the commit that
  // deletes the entry.
  void fail_front(stream& s, std::string type, std::string message, const std::string& answer) {
    auto& p = s.entries.front();
    const auto rt = st_.links.active(s.project);
    commit_batch batch;
    batch.erase(column::outbox, sink_entry_key(p.where.tenant, p.where.project, p.where.group, p.where.seq));
    work_ptr routed;
    if (rt && rt->find_flow(p.q.flow) >= 0) {
      const auto f = static_cast<uint32_t>(rt->find_flow(p.q.flow));
      std::string details = "{\"answer\":";
      http::append_json_string(details, answer);
      details += ",\"tries\":" + std::to_string(s.failures) + "}";
      auto e = make_error(*st_.core->db, *rt, f, p.q.block, p.q.msg, std::move(type), std::move(message),
                          std::move(details));
      routed = record_error(batch, *st_.core->db, rt, f, e);
      std::fprintf(stderr, "flowstate sink %s of flow %s: error %s: %s\n", p.q.block.c_str(), p.q.flow.c_str(),
                   e.id.c_str(), e.message.c_str());
    } else {
      std::fprintf(stderr, "flowstate sinks: a delivery of flow %s, whose project is gone, is dropped\n",
                   p.q.flow.c_str());
    }
    const uint64_t epoch = st_.core->db->epoch();
    // Not written (the store failed): the entry is still stored; read back.
    caf::actor me = caf::actor_cast<caf::actor>(self_);
    st_.core->db->commit(
        std::move(batch), rt ? rt->durability : durability_mode::sync, [] {},
        [me](const std::string&) { caf::anon_send(me, reload_outbox_atom::value); }, epoch);
    if (routed) {
      routed->store_epoch = epoch;
      st_.links.submit(std::move(routed));
    }
    pop(s);
  }

  void pump() {
    const int64_t now = steady_ms();
    bool parked = false;
    for (auto& [block, ids] : st_.ready) {
      if (ids.empty()) continue;
      const auto rt = st_.links.active(std::get<0>(block));
      if (!rt) {
        // Not active here (yet): wait.
        st_.waiting.insert(ids.begin(), ids.end());
        ids.clear();
        parked = true;
        continue;
      }
      auto& running = st_.running[block];
      for (auto it = ids.begin(); it != ids.end();) {
        auto s_it = st_.streams.find(*it);
        if (s_it == st_.streams.end() || s_it->second.entries.empty()) {
          it = ids.erase(it);
          continue;
        }
        auto& s = s_it->second;
        auto& front = s.entries.front();
        const block_rt* b = block_of(*rt, front.q);
        if (!b) {
          const auto id = *it;
          it = ids.erase(it);
          fail_front(s, "Undeliverable",
                     "sink " + front.q.block + " of flow " + front.q.flow + " was removed by a deploy", "");
          ++st_.counts[s.block].failed;
          settle(id);
          continue;
        }
        if (running >= b->sink->concurrency()) break;
        if (!st_.core->runs_here(s.group) || st_.core->is_frozen(s.group)) {
          st_.waiting.insert(*it);  // moving, or not placed here now
          it = ids.erase(it);
          parked = true;
          continue;
        }
        sk::delivery d;
        d.id = front.q.msg.id;
        d.key = front.q.msg.key;
        d.payload = front.q.msg.payload;
        d.time_ms = front.q.msg.time_ms;
        d.attempt = s.failures + 1;
        s.in_flight = true;
        ++running;
        caf::actor me = caf::actor_cast<caf::actor>(self_);
        auto done = std::make_shared<sink_done>();
        done->stream = *it;
        done->seq = front.where.seq;
        it = ids.erase(it);
        b->sink->deliver(d, [me, done](sk::outcome o) {
          done->outcome = std::move(o);
          caf::anon_send(me, done);
        });
      }
    }
    int64_t next = parked ? now + 1000 : 0;
    for (auto& id : st_.waiting) {
      auto s = st_.streams.find(id);
      if (s != st_.streams.end() && s->second.not_before > now && (!next || s->second.not_before < next))
        next = s->second.not_before;
      else if (s != st_.streams.end() && s->second.not_before <= now && !next)
        next = now + 1000;
    }
    if (next && (!st_.wake_at || next < st_.wake_at)) {
      st_.wake_at = next;
      self_->delayed_send(self_, std::chrono::milliseconds(std::max<int64_t>(next - now, 1)), sink_wake_atom::value);
    }
    publish();
  }

  void publish() {
    auto& core = *st_.core;
    std::lock_guard lock(core.sinks_mu);
    core.sink_stats = st_.counts;
    core.sinks_backed_up.clear();
    for (auto& [project, n] : st_.pending_per_project)
      if (n >= core.sink_backlog) core.sinks_backed_up.insert(project);
    core.any_sink_backed_up.store(!core.sinks_backed_up.empty(), std::memory_order_relaxed);
  }

  caf::stateful_actor<sinks_state>* self_;
  sinks_state& st_;
};

caf::behavior sinks_actor(caf::stateful_actor<sinks_state>* self, engine_core* core, sinks_links links) {
  self->state.core = core;
  self->state.links = std::move(links);
  auto logic = std::make_shared<sinks_logic>(self);
  self->send(self, reload_outbox_atom::value);  // entries of commits before this start
  return {
      [logic](sink_entries& entries) { logic->on_entries(entries); },
      [logic](sink_done_ptr& d) { logic->on_done(d); },
      [logic](sink_wake_atom) { logic->on_wake(); },
      [logic](reload_outbox_atom) { logic->on_reload(); },
      [logic](forget_groups_atom, uint32_t first, uint32_t end) { logic->on_forget(first, end); },
  };
}

}  // namespace

caf::actor spawn_sinks(caf::actor_system& sys, engine_core& core, sinks_links links) {
  return sys.spawn(sinks_actor, &core, std::move(links));
}

}  // namespace flowstate::engine_detail
