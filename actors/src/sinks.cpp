#include "sinks.hpp"

#include <caf/all.hpp>

#include <cstdio>
#include <deque>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <utility>

#include "core.hpp"
#include "errors.hpp"
#include "flowstate/drivers/http_types.hpp"
#include "flowstate/drivers/sink.hpp"
#include "flowstate/runtime/keys.hpp"
#include "flowstate/runtime/secrets.hpp"
#include "idempotency.hpp"
#include "records.hpp"

namespace flowstate::engine_detail {

// A driver's answer for one delivery, back to the sinks actor.
struct sink_done {
  std::string stream;
  uint64_t token = 0;  // the try's own number: a stale answer is told apart
  drivers::sinks::outcome outcome;
};
using sink_done_ptr = std::shared_ptr<sink_done>;

// Entries whose removal from the store was written (ok), or failed.
struct sink_erased {
  std::vector<std::tuple<uint32_t, uint32_t, uint32_t, uint64_t>> ids;
  bool ok = true;
};
using sink_erased_ptr = std::shared_ptr<sink_erased>;

}  // namespace flowstate::engine_detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::sink_done_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::sink_erased_ptr)

namespace flowstate::engine_detail {
namespace {

using sink_wake_atom = caf::atom_constant<caf::atom("fs_swake")>;
using sink_flush_atom = caf::atom_constant<caf::atom("fs_sflush")>;
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
  uint64_t token = 0;      // of the try in flight
  uint32_t failures = 0;   // failed tries of the front entry
  int64_t not_before = 0;  // steady ms: waiting for a retry until then
};

// Streams in the order they became ready (first in, first out), each once.
class ready_queue {
 public:
  void push(const std::string& id) {
    if (members_.insert(id).second) order_.push_back(id);
  }
  void erase(const std::string& id) { members_.erase(id); }  // its place in order_ is skipped later
  bool empty() const { return members_.empty(); }
  std::optional<std::string> pop() {
    while (!order_.empty()) {
      auto id = std::move(order_.front());
      order_.pop_front();
      if (members_.erase(id)) return id;
    }
    return std::nullopt;
  }
  // Back at the front (it could not start yet).
  void unpop(const std::string& id) {
    if (members_.insert(id).second) order_.push_front(id);
  }
  std::vector<std::string> take_all() {
    std::vector<std::string> out;
    while (auto id = pop()) out.push_back(std::move(*id));
    return out;
  }

 private:
  std::deque<std::string> order_;
  std::set<std::string> members_;
};

struct sinks_state {
  engine_core* core = nullptr;
  sinks_links links;
  std::map<std::string, stream> streams;
  std::map<block_ref, ready_queue> ready;  // per block: streams that may start now, oldest first
  std::set<std::string> waiting;           // a retry later, or parked (group or project not here now)
  std::map<block_ref, uint32_t> running;
  std::set<std::tuple<uint32_t, uint32_t, uint32_t, uint64_t>> held;  // (tenant, project, group, seq) in memory
  // Done with, their removal not written yet: a reload must not take them.
  std::set<std::tuple<uint32_t, uint32_t, uint32_t, uint64_t>> erasing;
  // Removals of delivered entries not handed to the store yet: the
  // deliveries answered in one pass over the mailbox are removed by one
  // commit (fs_sflush, sent to self, comes after them).
  commit_batch removals;
  sink_erased_ptr removing;
  uint64_t next_token = 1;
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
    if (it == st_.streams.end() || !it->second.in_flight || it->second.token != d->token) {
      pump();  // forgotten meanwhile (its group moved away), perhaps read back since
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
      const auto rt = st_.links.active(s.project);
      const block_rt* b = rt ? block_of(*rt, s.entries.front().q) : nullptr;
      auto next = rt ? answer_item(rt, s.entries.front(), erase, d->outcome.result_json) : nullptr;
      if (b && b->kind == block_kind::query && !next) {
        // The function after the query went with a deploy: its answer has
        // nowhere to go.
        ++counts.failed;
        fail_front(s, "Undeliverable",
                   "the block after query " + s.entries.front().q.block + " of flow " + s.entries.front().q.flow +
                       " was removed by a deploy",
                   "");
        settle(d->stream);
        pump();
        return;
      }
      const uint64_t epoch = st_.core->db->epoch();
      if (!next)
        queue_removal(std::move(erase), w);
      else
        commit_removal(std::move(erase), w, rt->durability, epoch);
      if (next) {
        // After the commit was handed to the store (its queue entry's put
        // comes before the removal that the next block's commit makes).
        next->store_epoch = epoch;
        st_.links.submit(std::move(next));
      }
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
                     rt ? secrets::redact(o.answer, rt->secrets).c_str() : "",
                     static_cast<long long>(s.not_before - steady_ms()));
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
      if (!id) return true;
      const std::tuple<uint32_t, uint32_t, uint32_t, uint64_t> at{id->tenant, id->project, id->key_group, id->seq};
      if (st_.held.count(at) || st_.erasing.count(at)) return true;
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

  void on_erased(sink_erased_ptr& e) {
    if (e->ok) {
      for (auto& id : e->ids) st_.erasing.erase(id);
      return;
    }
    // Not written (the store failed): in a while, take them back from the
    // store (a delivered one is sent again, with the same id).
    e->ok = true;
    self_->delayed_send(self_, std::chrono::seconds(5), e);
    self_->delayed_send(self_, std::chrono::milliseconds(5100), reload_outbox_atom::value);
  }

  // Commits the removals queued since the last flush (relaxed: a removal
  // lost in a crash only delivers the entry again, with the same id).
  void on_flush() {
    if (!st_.removing) return;
    commit_erasure(std::exchange(st_.removals, commit_batch()), std::move(st_.removing), durability_mode::relaxed);
  }

  void on_wake() {
    const int64_t now = steady_ms();
    if (now >= st_.wake_at) st_.wake_at = 0;
    for (auto it = st_.waiting.begin(); it != st_.waiting.end();) {
      auto s = st_.streams.find(*it);
      if (s == st_.streams.end() || s->second.entries.empty()) {
        it = st_.waiting.erase(it);
      } else if (s->second.not_before <= now) {
        st_.ready[s->second.block].push(*it);
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
    return (block.kind == block_kind::sink || block.kind == block_kind::query) && block.sink ? &block : nullptr;
  }

  void add(sink_entry&& e) {
    // A group that moved away meanwhile: its new owner delivers it.
    if (!st_.core->runs_here(e.group)) return;
    if (st_.erasing.count({e.tenant, e.project, e.group, e.seq})) return;
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
    if (!s.in_flight && !st_.waiting.count(id)) st_.ready[s.block].push(id);
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
      st_.ready[it->second.block].push(id);
    }
  }

  // The front entry failed for good: an error record, in the commit that
  // deletes the entry.
  // A query's answer: the input of the block after the query, in the
  // commit that removes the entry; it carries the client's reply. Null for
  // a sink (or when the block after it is gone).
  work_ptr answer_item(const project_ptr& rt, pending& p, commit_batch& batch, std::string& result) {
    int f = rt->find_flow(p.q.flow);
    if (f < 0) return nullptr;
    const auto& flow = rt->flows[static_cast<std::size_t>(f)];
    int b = flow.find_block(p.q.block);
    if (b < 0 || flow.blocks[static_cast<std::size_t>(b)].kind != block_kind::query ||
        static_cast<std::size_t>(b) + 1 >= flow.blocks.size() ||
        flow.blocks[static_cast<std::size_t>(b) + 1].kind != block_kind::function)
      return nullptr;
    auto item = std::make_shared<work_item>();
    item->project = rt;
    item->flow = static_cast<uint32_t>(f);
    item->block = static_cast<uint32_t>(b) + 1;
    item->msg.id = derive_message_id(p.q.msg.id, p.q.block, 0);
    item->msg.key = p.q.msg.key;
    item->msg.trace_id = p.q.msg.trace_id;
    item->msg.time_ms = p.q.msg.time_ms;
    item->msg.payload = std::move(result);
    item->queue_seq = st_.core->db->next_sequence();
    batch.put(column::queue, queue_key(rt->tenant, rt->project_id, key_group_of(item->msg.key), item->queue_seq),
              encode_queued({flow.name, flow.blocks[item->block].id, item->msg}));
    item->reply = std::move(p.where.reply);
    item->idempotency_key = std::move(p.where.idempotency_key);
    return item;
  }

  void fail_front(stream& s, std::string type, std::string message, const std::string& target_answer) {
    auto& p = s.entries.front();
    const auto rt = st_.links.active(s.project);
    std::function<void()> answer;
    std::string answer_text = target_answer;
    commit_batch batch;
    batch.erase(column::outbox, sink_entry_key(p.where.tenant, p.where.project, p.where.group, p.where.seq));
    work_ptr routed;
    if (rt) {
      // A target may echo a URL or a header that holds a secret.
      message = secrets::redact(std::move(message), rt->secrets);
      answer_text = secrets::redact(target_answer, rt->secrets);
    }
    if (rt && rt->find_flow(p.q.flow) >= 0) {
      const auto f = static_cast<uint32_t>(rt->find_flow(p.q.flow));
      std::string details = "{\"answer\":";
      http::append_json_string(details, answer_text);
      details += ",\"tries\":" + std::to_string(s.failures) + "}";
      auto e = make_error(*st_.core->db, *rt, f, p.q.block, p.q.msg, std::move(type), std::move(message),
                          std::move(details));
      routed = record_error(batch, *st_.core->db, rt, f, e);
      if (p.where.reply || !p.where.idempotency_key.empty()) {
        // A query's client: the error is the answer, once it is committed.
        auto response = error_response(e);
        if (!p.where.idempotency_key.empty())
          batch.put(column::idempotency, p.where.idempotency_key, encode_response(response, now_ms()));
        answer = [core = st_.core, reply = std::move(p.where.reply), idem = std::move(p.where.idempotency_key),
                  response]() mutable {
          if (!idem.empty()) core->idempotency.complete(idem, response);
          if (reply) reply->send(std::move(response));
        };
      }
      std::fprintf(stderr, "flowstate sink %s of flow %s: error %s: %s\n", p.q.block.c_str(), p.q.flow.c_str(),
                   e.id.c_str(), e.message.c_str());
    } else {
      std::fprintf(stderr, "flowstate sinks: a delivery of flow %s, whose project is gone, is dropped\n",
                   p.q.flow.c_str());
    }
    const uint64_t epoch = st_.core->db->epoch();
    commit_removal(std::move(batch), p.where, rt ? rt->durability : durability_mode::sync, epoch, std::move(answer));
    if (routed) {
      routed->store_epoch = epoch;
      st_.links.submit(std::move(routed));
    }
    pop(s);
  }

  // Queues the removal of delivered entry `w` for the next flush; until it
  // is written a reload does not take the entry back.
  void queue_removal(commit_batch&& erase, const sink_entry& w) {
    if (!st_.removing) {
      st_.removing = std::make_shared<sink_erased>();
      self_->send(self_, sink_flush_atom::value);
    }
    st_.removing->ids.emplace_back(w.tenant, w.project, w.group, w.seq);
    st_.erasing.insert(st_.removing->ids.back());
    st_.removals.append(std::move(erase));
  }

  // Commits a batch that removes entry `w`; until it is written a reload
  // does not take the entry back.
  void commit_removal(commit_batch&& batch, const sink_entry& w, durability_mode mode, uint64_t epoch = 0,
                      std::function<void()> then = {}) {
    auto e = std::make_shared<sink_erased>();
    e->ids.emplace_back(w.tenant, w.project, w.group, w.seq);
    st_.erasing.insert(e->ids.back());
    commit_erasure(std::move(batch), std::move(e), mode, epoch, std::move(then));
  }

  // Commits `batch`, which removes the entries `e` names (in `erasing`);
  // this actor hears whether it was written (on_erased).
  void commit_erasure(commit_batch&& batch, sink_erased_ptr e, durability_mode mode, uint64_t epoch = 0,
                      std::function<void()> then = {}) {
    caf::actor me = caf::actor_cast<caf::actor>(self_);
    st_.core->db->commit(
        std::move(batch), mode,
        [me, e, then = std::move(then)] {
          caf::anon_send(me, e);
          if (then) then();
        },
        [me, e](const std::string&) {
          auto failed = std::make_shared<sink_erased>(*e);
          failed->ok = false;
          caf::anon_send(me, failed);
        },
        epoch);
  }

  void pump() {
    const int64_t now = steady_ms();
    bool parked = false;
    bool again = false;
    for (auto& [block, ids] : st_.ready) {
      if (ids.empty()) continue;
      const auto rt = st_.links.active(std::get<0>(block));
      if (!rt) {
        // Not active here (yet): wait.
        for (auto& id : ids.take_all()) st_.waiting.insert(id);
        parked = true;
        continue;
      }
      auto& running = st_.running[block];
      while (auto id = ids.pop()) {
        auto s_it = st_.streams.find(*id);
        if (s_it == st_.streams.end() || s_it->second.entries.empty() || s_it->second.in_flight ||
            st_.waiting.count(*id))
          continue;
        auto& s = s_it->second;
        auto& front = s.entries.front();
        const block_rt* b = block_of(*rt, front.q);
        if (!b) {
          fail_front(s, "Undeliverable",
                     "sink " + front.q.block + " of flow " + front.q.flow + " was removed by a deploy", "");
          ++st_.counts[s.block].failed;
          settle(*id);
          again = true;  // its next entries: on the next pass
          continue;
        }
        if (running >= b->sink->concurrency()) {
          ids.unpop(*id);
          break;
        }
        if (!st_.core->runs_here(s.group) || st_.core->is_frozen(s.group)) {
          st_.waiting.insert(*id);  // moving, or not placed here now
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
        s.token = st_.next_token++;
        ++running;
        caf::actor me = caf::actor_cast<caf::actor>(self_);
        auto done = std::make_shared<sink_done>();
        done->stream = *id;
        done->token = s.token;
        b->sink->deliver(d, [me, done](sk::outcome o) {
          done->outcome = std::move(o);
          caf::anon_send(me, done);
        });
      }
    }
    if (again) self_->send(self_, sink_wake_atom::value);
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
  // A stop can come before fs_sflush: the removals queued go to the store.
  self->set_exit_handler([self, logic](caf::exit_msg& m) {
    logic->on_flush();
    self->quit(m.reason);
  });
  self->send(self, reload_outbox_atom::value);  // entries of commits before this start
  return {
      [logic](sink_entries& entries) { logic->on_entries(entries); },
      [logic](sink_done_ptr& d) { logic->on_done(d); },
      [logic](sink_wake_atom) { logic->on_wake(); },
      [logic](sink_flush_atom) { logic->on_flush(); },
      [logic](sink_erased_ptr& e) { logic->on_erased(e); },
      [logic](reload_outbox_atom) { logic->on_reload(); },
      [logic](forget_groups_atom, uint32_t first, uint32_t end) { logic->on_forget(first, end); },
  };
}

}  // namespace

caf::actor spawn_sinks(caf::actor_system& sys, engine_core& core, sinks_links links) {
  return sys.spawn(sinks_actor, &core, std::move(links));
}

}  // namespace flowstate::engine_detail
