// A shard: owns a range of key groups. Messages of one (flow, block, key)
// run one at a time, in order; different keys run in parallel. Each result
// becomes one atomic commit: new state, outputs for the next block, removal
// of the input, metering. Replies wait for the commit to be durable.
#include <caf/all.hpp>

#include <deque>
#include <unordered_map>

#include "block_stats.hpp"
#include "core.hpp"
#include "errors.hpp"
#include "flowstate/actors/quota.hpp"
#include "flowstate/runtime/fault.hpp"
#include "flowstate/runtime/iso_time.hpp"
#include "flowstate/runtime/keys.hpp"
#include "flowstate/sandbox/worker_client.hpp"
#include "outbox.hpp"
#include "records.hpp"
#include "replication.hpp"
#include "sinks.hpp"
#include "state_cache.hpp"
#include "trace.hpp"
#include "types.hpp"

namespace flowstate::engine_detail {

// A worker's answer for one work item, delivered back to its shard.
struct call_done {
  work_ptr item;
  sandbox::call_result result;
};
using call_done_ptr = std::shared_ptr<call_done>;

}  // namespace flowstate::engine_detail

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::work_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::call_done_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::project_ptr)

namespace flowstate::engine_detail {
namespace {

struct key_slot {
  bool busy = false;
  std::deque<work_ptr> waiting;
};

struct shard_state {
  engine_core* core = nullptr;
  std::size_t index = 0;
  std::unordered_map<uint32_t, project_ptr> current;  // project id -> active revision
  std::unordered_map<std::string, key_slot> slots;    // by state key
  // Latest state per state key (nullopt: known to have none). Updated when a
  // result is committed, before the write is durable: a key's next message
  // must see it, and the single writer keeps commits in order. Bounded in
  // bytes (engine_options::state_cache_bytes, shared by the shards).
  state_cache cache{0};
  uint64_t cache_epoch = 0;  // the store epoch the cache was filled in
  // The UTC month executions are metered in (hosted mode), recomputed each second.
  std::string month;
  int64_t month_second = -1;
};

class shard_logic {
 public:
  shard_logic(caf::stateful_actor<shard_state>* self) : self_(self), st_(self->state) {}

  void on_work(work_ptr item) {
    auto& rt = st_.current[item->project->project_id];
    if (!rt || rt->epoch < item->project->epoch) rt = item->project;
    auto skey = slot_key(*item);
    auto& slot = st_.slots[skey];
    if (slot.busy) {
      slot.waiting.push_back(std::move(item));
      return;
    }
    slot.busy = true;
    start(std::move(item), skey);
  }

  void on_activate(project_ptr rt) {
    auto& cur = st_.current[rt->project_id];
    if (!cur || cur->epoch < rt->epoch) cur = std::move(rt);
  }

  void forget(uint32_t first, uint32_t end) {
    st_.cache.erase_if([&](const std::string& skey) {
      const uint32_t g = group_of_state_key(skey);
      return g >= first && g < end;
    });
    st_.core->state_cache_bytes_used[st_.index].store(st_.cache.bytes(), std::memory_order_relaxed);
  }

  void on_call_done(call_done_ptr done) {
    auto& item = done->item;
    auto skey = slot_key(*item);
    auto cur = st_.current[item->project->project_id];
    if (cur && cur->epoch != item->project->epoch) {
      // The fence: a result of an older revision is discarded and its
      // input runs again on the active one.
      if (rebind(*item, cur)) {
        start(item, skey);
        return;
      }
      commit_error(*item, "Undeliverable", "block " + block_id(*item) + " was removed by a deploy", "{}");
      finish(skey);
      return;
    }
    apply(*item, std::move(done->result));
    finish(skey);
  }

 private:
  static const block_rt& block_of(const work_item& w) { return w.project->flows[w.flow].blocks[w.block]; }
  static std::string block_id(const work_item& w) { return block_of(w).id; }

  // True when the outputs of block `from` reach an http.Response (one comes
  // before the next function).
  static bool reaches_http_response(const flow_rt& flow, uint32_t from) {
    for (std::size_t pos = from + 1; pos < flow.blocks.size(); ++pos) {
      if (flow.blocks[pos].kind == block_kind::http_response) return true;
      if (flow.blocks[pos].kind == block_kind::function || flow.blocks[pos].kind == block_kind::query) return false;
    }
    return false;
  }

  // The key group inside a state key (tenant, project, group, ...).
  static uint32_t group_of_state_key(const std::string& skey) {
    key_reader r(skey);
    (void)r.u32();
    (void)r.u32();
    auto g = r.u32();
    return g ? *g % key_group_count : 0;
  }

  static std::string slot_key(const work_item& w) {
    const auto& flow = w.project->flows[w.flow];
    return state_key(w.project->tenant, w.project->project_id, key_group_of(w.msg.key), flow.name,
                     flow.blocks[w.block].id, w.msg.key);
  }

  // Moves an item onto another revision of its project, by flow name and
  // block id; false when that block no longer exists.
  static bool rebind(work_item& w, const project_ptr& to) {
    const auto& old_flow = w.project->flows[w.flow];
    int f = to->find_flow(old_flow.name);
    if (f < 0) return false;
    int b = to->flows[static_cast<std::size_t>(f)].find_block(old_flow.blocks[w.block].id);
    if (b < 0) return false;
    w.project = to;
    w.flow = static_cast<uint32_t>(f);
    w.block = static_cast<uint32_t>(b);
    return true;
  }

  void start(work_ptr item, const std::string& skey) {
    if (!in_current_epoch(*item, skey)) return;
    auto cur = st_.current[item->project->project_id];
    if (cur && cur->epoch != item->project->epoch && !rebind(*item, cur)) {
      commit_error(*item, "Undeliverable", "its block was removed by a deploy", "{}");
      finish(skey);
      return;
    }
    const auto& block = block_of(*item);
    if (block.input.validator) {
      std::string message, details;
      if (!check_json(block.input, item->msg.payload, message, details)) {
        commit_error(*item, "PreconditionFailed", "input " + message, std::move(details));
        finish(skey);
        return;
      }
    }
    sandbox::call_request req;
    req.function_id = block.function_id;
    req.input_json = item->msg.payload;
    auto state = load_state(skey);
    if (!state) {
      commit_error(*item, "StorageError", "cannot read the state of key \"" + item->msg.key + "\": " + state.error(),
                   "{}");
      finish(skey);
      return;
    }
    req.state_json = std::move(*state);
    req.ctx.key = item->msg.key;
    req.ctx.flow = item->project->flows[item->flow].name;
    req.ctx.block = block.id;
    req.ctx.revision = item->project->revision;
    req.ctx.message_id = item->msg.id;
    req.ctx.time_ms = item->msg.time_ms;
    req.timeout_ms = item->project->timeout_ms;
    caf::actor me = caf::actor_cast<caf::actor>(self_);
    item->started_ns = steady_ns();
    block.worker->call(std::move(req), [me, item](sandbox::call_result&& r) {
      caf::anon_send(me, std::make_shared<call_done>(call_done{item, std::move(r)}));
    });
  }

  // The key's state: cached, or read from the store. A read error is
  // retried, then returned: it never reads as "no state", which the next
  // commit would store over the real one.
  result<std::optional<std::string>> load_state(const std::string& skey) {
    if (auto* cached = st_.cache.find(skey)) return *cached;
    constexpr int attempts = 3;
    auto value = st_.core->db->read(column::state, skey);
    for (int i = 1; i < attempts && !value; ++i) value = st_.core->db->read(column::state, skey);
    if (!value) return fail(value.error() + " (" + std::to_string(attempts) + " attempts)");
    st_.cache.put(skey, *value);
    st_.cache.trim(st_.core->db->written_through());
    return value;
  }

  // False when the store failed a write since the item was accepted: it is
  // answered 503 and dropped (its input may come from a commit that was
  // never written; what was written is re-read from the queue on resume).
  // The cache is emptied on the first item of a new epoch.
  bool in_current_epoch(work_item& w, const std::string& skey) {
    const uint64_t now = st_.core->db->epoch();
    if (st_.cache_epoch != now) {
      st_.cache.clear();
      st_.cache_epoch = now;
      st_.core->state_cache_bytes_used[st_.index].store(0, std::memory_order_relaxed);
    }
    if (w.store_epoch == 0) w.store_epoch = now;
    if (w.store_epoch == now) return true;
    answer_unwritten(st_.core, std::move(w.reply), std::move(w.idempotency_key), w.queue_seq != 0);
    if (auto accepted = std::move(w.accepted)) accepted(false);
    finish(skey);
    return false;
  }

  // The key's slot is free again: run its next message, if any.
  void finish(const std::string& skey) {
    st_.core->in_flight[st_.index].fetch_sub(1);
    st_.core->group_in_flight[group_of_state_key(skey)].fetch_sub(1);
    auto it = st_.slots.find(skey);
    if (it == st_.slots.end()) return;
    auto& slot = it->second;
    if (slot.waiting.empty()) {
      st_.slots.erase(it);
      return;
    }
    auto next = std::move(slot.waiting.front());
    slot.waiting.pop_front();
    start(std::move(next), skey);
  }

  static int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

  // The trace event of w's execution, in the batch that commits its result.
  void trace(commit_batch& batch, const work_item& w, trace_event& e) {
    const auto& flow = w.project->flows[w.flow];
    e.tenant = w.project->tenant;
    e.project = w.project->project_id;
    e.time_ms = now_ms();
    e.revision = w.project->revision;
    e.flow = flow.name;
    e.block = flow.blocks[w.block].id;
    e.key = w.msg.key;
    e.message_id = w.msg.id;
    e.trace_id = w.msg.trace_id;
    e.input_json = w.msg.payload;
    e.with_payload = w.project->trace.full_ms > 0;
    const int64_t took_ns = w.started_ns ? steady_ns() - w.started_ns : -1;
    if (took_ns >= 0) e.duration_ms = double(took_ns) / 1e6;
    record_trace(batch, *st_.core->db, st_.core->trace_accounting, e);
    if (const auto& stats = flow.blocks[w.block].stats) stats->record(e.status, took_ns);
  }

  void commit_error(work_item& w, std::string type, std::string message, std::string details,
                    const std::vector<std::string>* logs = nullptr) {
    commit_batch batch;
    auto e = make_error(*st_.core->db, *w.project, w.flow, block_id(w), w.msg, std::move(type), std::move(message),
                        std::move(details));
    trace_event te;
    te.status = e.type;
    te.error_message = e.message;
    te.error_id = e.id;
    te.details_json = e.details_json;
    te.logs = logs;
    trace(batch, w, te);
    auto routed = record_error(batch, *st_.core->db, w.project, w.flow, e);
    if (w.queue_seq)
      batch.erase(column::queue,
                  queue_key(w.project->tenant, w.project->project_id, key_group_of(w.msg.key), w.queue_seq));
    // A call that ran (it has logs) is an execution, whatever it returned.
    const bool ran = logs != nullptr;
    if (ran) meter(batch, w);
    commit_and_reply(std::move(batch), w, error_response(e), nullptr, nullptr, ran);
    if (routed) {
      routed->store_epoch = w.store_epoch;
      forward(std::move(routed));
    }
  }

  // Commits; once durable, answers the waiting client (and the requests
  // that repeated its Idempotency-Key), the response recorded with the batch.
  // Returns the store's ticket of the commit.
  // Hosted mode: the execution counted for its month in its own commit
  // (docs/hosted.md "Metering and quotas").
  void meter(commit_batch& batch, const work_item& w) {
    if (!w.project->quota) return;
    const int64_t now = now_ms();
    if (now / 1000 != st_.month_second) {
      st_.month = utc_month(now);
      st_.month_second = now / 1000;
    }
    batch.add_count(metered_key(w.project->tenant, w.project->project_id, key_group_of(w.msg.key), st_.month), 1);
  }

  // `execution`: the batch holds one metered execution, which the team's
  // lease counts once it is written.
  uint64_t commit_and_reply(commit_batch&& batch, work_item& w, std::optional<http::response> response,
                            outgoing_entries outgoing = nullptr, sink_entries to_sinks = nullptr,
                            bool execution = false) {
    auto reply = std::move(w.reply);
    if (response && !w.served_by.empty()) response->headers.emplace_back("Flowstate-Served-By", w.served_by);
    std::string idem;
    if (response && !w.idempotency_key.empty()) {
      idem = std::move(w.idempotency_key);
      batch.put(column::idempotency, idem, encode_response(*response, now_ms()));
    }
    auto* core = st_.core;
    const bool queued = w.queue_seq != 0;
    std::shared_ptr<quota_account> quota = execution ? w.project->quota : nullptr;
    // A source's message accepted by this commit: its own records with it.
    if (w.acceptance) batch.append(std::move(*w.acceptance));
    auto accepted = std::move(w.accepted);
    return st_.core->db->commit(
        std::move(batch), w.project->durability,
        [core, reply, idem, response = std::move(response), outgoing = std::move(outgoing),
         to_sinks = std::move(to_sinks), quota = std::move(quota), accepted]() mutable {
          core->trace_watch.notify();  // every batch here holds a trace event
          if (quota) quota->add_consumed(1);
          if (outgoing) caf::anon_send(core->outbox, std::move(outgoing));
          if (to_sinks) caf::anon_send(core->sinks, std::move(to_sinks));
          if (accepted) accepted(true);
          if (!response) return;
          if (!idem.empty()) core->idempotency.complete(idem, *response);
          if (reply) reply->send(std::move(*response));
        },
        [core, reply, idem, queued, accepted](const std::string& reason) mutable {
          answer_unwritten(core, std::move(reply), std::move(idem), queued, reason);
          if (accepted) accepted(false);
        },
        w.store_epoch);
  }

  // Hands a message to the shard owning its key (after its queue entry was
  // committed, so the writer's order keeps the put before the removal).
  void forward(work_ptr item) {
    const uint32_t group = key_group_of(item->msg.key);
    // Being moved away: the committed queue entry goes with the group
    // (unless it carries a client's reply: it runs, and the move waits).
    if (item->queue_seq && !item->reply && st_.core->is_frozen(group)) return;
    auto target = st_.core->shard_of(item->msg.key);
    item->shard = target;
    st_.core->in_flight[target].fetch_add(1);
    st_.core->group_in_flight[group].fetch_add(1);
    caf::anon_send(st_.core->shards[target], std::move(item));
  }

  void apply(work_item& w, sandbox::call_result&& r) {
    using sandbox::call_status;
    if (r.status != call_status::ok) {
      static const char* types[] = {"", "Exception", "Timeout", "ResourceExhausted", "Exception", "Exception"};
      std::string message = r.error_message;
      if (r.status == call_status::worker_crashed) message = "the call crashed its worker twice";
      std::string details = r.error_details_json.empty() ? "{}" : r.error_details_json;
      commit_error(w, types[static_cast<int>(r.status)], std::move(message), std::move(details), &r.logs);
      return;
    }
    const auto& flow = w.project->flows[w.flow];
    const auto& block = block_of(w);
    {
      std::string message, details;
      for (std::size_t i = 0; i < r.outputs.size(); ++i) {
        if (!check_json(block.output, r.outputs[i], message, details)) {
          auto which = r.outputs.size() == 1 ? std::string("output ") : "output " + std::to_string(i) + " ";
          commit_error(w, "PostconditionFailed", which + message, std::move(details), &r.logs);
          return;
        }
      }
      if (r.state == sandbox::state_change::set && !check_json(block.state, r.state_json, message, details)) {
        commit_error(w, "PostconditionFailed", "new state " + message, std::move(details), &r.logs);
        return;
      }
    }
    // Outputs that reach an http.Response are rendered before anything goes
    // into the batch: one that cannot be (a bad `status`) is an Exception
    // like any other wrong shape, whether or not a client still waits, so
    // that a re-run after a crash has the same effects.
    std::vector<std::optional<http::response>> rendered(r.outputs.size());
    if (reaches_http_response(flow, w.block)) {
      for (std::size_t i = 0; i < r.outputs.size(); ++i) {
        auto one = render_http_response(r.outputs[i]);
        if (!one) {
          auto which = r.outputs.size() == 1 ? std::string("output: ") : "output " + std::to_string(i) + ": ";
          commit_error(w, "Exception", which + one.error(), "{}", &r.logs);
          return;
        }
        rendered[i] = std::move(*one);
      }
    }
    commit_batch batch;
    {
      trace_event te;
      te.outputs = &r.outputs;
      te.logs = &r.logs;
      te.state_change = r.state == sandbox::state_change::set     ? "set"
                        : r.state == sandbox::state_change::erase ? "deleted"
                                                                  : "unchanged";
      te.state_json = r.state_json;
      trace(batch, w, te);
    }
    auto skey = slot_key(w);
    const bool state_changed = r.state != sandbox::state_change::unchanged;
    if (r.state == sandbox::state_change::set) {
      batch.put(column::state, skey, r.state_json);
      st_.cache.put(skey, std::move(r.state_json));
    } else if (r.state == sandbox::state_change::erase) {
      batch.erase(column::state, skey);
      st_.cache.put(skey, std::nullopt);
    }
    const uint32_t group = key_group_of(w.msg.key);
    if (w.queue_seq)
      batch.erase(column::queue, queue_key(w.project->tenant, w.project->project_id, group, w.queue_seq));
    batch.add_count(executions_key(w.project->tenant, w.project->project_id, group), 1);
    meter(batch, w);

    std::optional<http::response> response;
    bool carried = false;
    std::vector<work_ptr> downstream;
    outgoing_entries outgoing;
    sink_entries to_sinks;
    std::vector<uint32_t> admitted;
    // Routes one output to block `to_block` of flow `to_flow`: a queue entry
    // here, or an outbox entry for the node running its key's group. Only a
    // message of this flow may carry the client's reply.
    auto route = [&](work_ptr item, uint32_t to_flow, uint32_t to_block, bool may_carry) {
      const auto& target_flow = w.project->flows[to_flow];
      const auto& next = target_flow.blocks[to_block];
      item->project = w.project;
      item->flow = to_flow;
      item->block = to_block;
      item->msg.trace_id = w.msg.trace_id;
      item->msg.time_ms = w.msg.time_ms;
      item->store_epoch = w.store_epoch;
      const bool may_reply = may_carry && w.reply && !response && !carried;
      if (next.key_pointer) {
        auto key = key_at_pointer(item->msg.payload, *next.key_pointer);
        if (!key) {
          auto e = make_error(*st_.core->db, *w.project, to_flow, next.id, item->msg, "PreconditionFailed", key.error(),
                              "{}");
          if (auto routed = record_error(batch, *st_.core->db, w.project, to_flow, e)) {
            routed->store_epoch = w.store_epoch;
            downstream.push_back(std::move(routed));
          }
          if (may_reply) response = error_response(e);
          return;
        }
        item->msg.key = std::move(*key);
      }
      const uint32_t to_group = key_group_of(item->msg.key);
      bool here = st_.core->runs_here(to_group);
      if (here && st_.core->has_gate.load(std::memory_order_relaxed)) {
        // Counted until its commit is handed to the store, so that a move
        // of its group waits for it; a group being moved gets it through
        // the outbox, from wherever the group ends up. Except a message
        // that carries the client's reply: it runs here (the move waits
        // for it), since the reply cannot travel.
        st_.core->group_in_flight[to_group].fetch_add(1);
        admitted.push_back(to_group);
        here = (may_reply || !st_.core->is_frozen(to_group)) && st_.core->runs_here(to_group);
        // Another range led here: through the outbox too (core.hpp,
        // one_commit_may_write), unless it carries the reply.
        here = here && (may_reply || st_.core->one_commit_may_write(group, to_group));
      }
      if (!here) {
        // Another node's key group: an outbox entry, sent once durable.
        const uint64_t seq = st_.core->db->next_sequence();
        auto queued = encode_queued(
            {target_flow.name, next.id, item->msg, w.project->cluster_deploy.load(std::memory_order_relaxed)});
        batch.put(column::outbox, outbox_key(w.project->tenant, w.project->project_id, group, seq), queued);
        if (!outgoing) outgoing = std::make_shared<std::vector<delivery_entry>>();
        outgoing->push_back({w.project->tenant, w.project->project_id, group, seq, std::move(queued)});
        return;
      }
      item->queue_seq = st_.core->db->next_sequence();
      batch.put(column::queue, queue_key(w.project->tenant, w.project->project_id, to_group, item->queue_seq),
                encode_queued({target_flow.name, next.id, item->msg}));
      if (may_reply) {
        item->reply = w.reply;
        item->served_by = w.served_by;
        item->idempotency_key = w.idempotency_key;
        carried = true;
      }
      downstream.push_back(std::move(item));
    };
    for (std::size_t i = 0; i < r.outputs.size(); ++i) {
      for (std::size_t pos = w.block + 1; pos < flow.blocks.size(); ++pos) {
        const auto& next = flow.blocks[pos];
        if (next.kind == block_kind::http_response) {
          if (w.reply && !response && !carried) response = std::move(rendered[i]);
          continue;
        }
        if (next.kind == block_kind::flow_publish) {
          // To every flow subscribed to the topic, in this commit; the
          // output also goes on to the next block of this flow.
          for (uint32_t sub : next.subscribers) {
            auto item = std::make_shared<work_item>();
            item->msg.id =
                derive_message_id(w.msg.id + '\0' + next.id + '\0' + w.project->flows[sub].name, block_id(w), i);
            item->msg.key = w.msg.key;
            item->msg.payload = r.outputs[i];
            route(std::move(item), sub, 1, false);
          }
          continue;
        }
        if (next.kind == block_kind::sink || next.kind == block_kind::query) {
          // A delivery after this commit, kept under the key's group until
          // the target takes it. A sink's output also goes on to the next
          // block; a query's answer is what goes on (the sinks actor
          // commits it as the next block's input), with the client's reply.
          const bool query = next.kind == block_kind::query;
          message m;
          m.id = derive_message_id(w.msg.id + '\0' + next.id, block_id(w), i);
          m.key = w.msg.key;
          m.trace_id = w.msg.trace_id;
          m.time_ms = w.msg.time_ms;
          m.payload = query ? std::move(r.outputs[i]) : r.outputs[i];
          const uint64_t seq = st_.core->db->next_sequence();
          auto queued = encode_queued({flow.name, next.id, std::move(m)});
          batch.put(column::outbox, sink_entry_key(w.project->tenant, w.project->project_id, group, seq), queued);
          if (!to_sinks) to_sinks = std::make_shared<std::vector<sink_entry>>();
          to_sinks->push_back({w.project->tenant, w.project->project_id, group, seq, std::move(queued)});
          if (!query) continue;
          if (w.reply && !response && !carried) {
            to_sinks->back().reply = w.reply;
            to_sinks->back().idempotency_key = w.idempotency_key;
            carried = true;
          }
          break;
        }
        if (next.kind != block_kind::function) continue;
        auto item = std::make_shared<work_item>();
        item->msg.id = derive_message_id(w.msg.id, block_id(w), i);
        item->msg.key = w.msg.key;
        item->msg.payload = std::move(r.outputs[i]);
        route(std::move(item), w.flow, static_cast<uint32_t>(pos), true);
        break;
      }
    }
    if (w.reply && !response && !carried) {
      response = http::response{};
      response->status = r.outputs.empty() ? 204 : 202;
      response->content_type.clear();
    }
    fault_point("shard.before_commit");
    if (carried) w.reply.reset();
    const uint64_t ticket =
        commit_and_reply(std::move(batch), w, std::move(response), std::move(outgoing), std::move(to_sinks), true);
    if (state_changed) st_.cache.written_by(skey, ticket);
    st_.cache.trim(st_.core->db->written_through());
    st_.core->state_cache_bytes_used[st_.index].store(st_.cache.bytes(), std::memory_order_relaxed);
    for (auto& item : downstream) forward(std::move(item));
    for (uint32_t g : admitted) st_.core->group_in_flight[g].fetch_sub(1);
  }

  caf::stateful_actor<shard_state>* self_;
  shard_state& st_;
};

caf::behavior shard_actor(caf::stateful_actor<shard_state>* self, engine_core* core, std::size_t index) {
  self->state.core = core;
  self->state.index = index;
  self->state.cache = state_cache(core->state_cache_bytes / std::max<std::size_t>(1, core->shards_planned));
  auto logic = std::make_shared<shard_logic>(self);
  return {
      [logic](work_ptr& item) { logic->on_work(std::move(item)); },
      [logic](call_done_ptr& done) { logic->on_call_done(std::move(done)); },
      [logic](project_ptr& rt) { logic->on_activate(std::move(rt)); },
      [logic](forget_groups_atom, uint32_t first, uint32_t end) { logic->forget(first, end); },
  };
}

}  // namespace

void answer_unwritten(engine_core* core, http::responder_ptr reply, std::string idem, bool queued,
                      const std::string& reason) {
  if (!reply && idem.empty()) return;
  const bool fenced = reason.rfind(replicator::outcome_unknown, 0) == 0;
  // In a cluster a commit goes to the range's replicas as it is handed to
  // the store, before it is written here: one this store failed to write
  // may still be on a follower that leads next. Not "nothing committed".
  if (fenced || core->has_gate.load(std::memory_order_acquire)) {
    auto r = http::problem(
        503, "outcome unknown",
        (fenced ? "this node stopped leading the key's group before its replicas acknowledged the request (" +
                      reason.substr(replicator::outcome_unknown.size()) + ")"
                : std::string("this node could not write the request's commit, which its key group's replicas "
                              "may have received")) +
            ": it may or may not have run. Retry with the same Idempotency-Key to get its outcome without running "
            "it twice.",
        "urn:flowstate:error:OutcomeUnknown");
    r.headers.emplace_back("Retry-After", "1");
    if (!idem.empty()) core->idempotency.complete(idem, r);
    if (reply) reply->send(std::move(r));
    return;
  }
  auto r = http::problem(503, "unavailable",
                         queued ? "the node cannot write to its store; the request was not completed (the steps "
                                  "of it that were committed run again when writing resumes)"
                                : "the node cannot write to its store; nothing of this request was committed, "
                                  "retry later");
  r.headers.emplace_back("Retry-After", "5");
  if (!idem.empty()) core->idempotency.complete(idem, r);
  if (reply) reply->send(std::move(r));
}

caf::actor spawn_shard(caf::actor_system& sys, engine_core& core, std::size_t index) {
  return sys.spawn(shard_actor, &core, index);
}

}  // namespace flowstate::engine_detail
