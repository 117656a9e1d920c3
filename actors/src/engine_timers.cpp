// timer.Interval sources (docs/drivers.md "timer.Interval"): one actor wakes
// at the next tick of any timer block (at least every second) and emits the
// ticks due. A key's ticks and its last tick are committed together (the
// last tick is the timer block's state for the key, under the key's group),
// so a tick is emitted once across restarts and moves with the group; in a
// cluster only the node running the key's group emits it.
#include <simdjson.h>
#include <caf/all.hpp>

#include <algorithm>
#include <cstdio>

#include "engine_impl.hpp"
#include "flowstate/drivers/timer.hpp"
#include "flowstate/runtime/decimal.hpp"
#include "flowstate/runtime/keys.hpp"
#include "records.hpp"

namespace flowstate::engine_detail {

using timer_tick_atom = caf::atom_constant<caf::atom("fs_tick")>;

namespace {

// {"lastTickMs":N,"schedule":"..."}: a timer block's state for a key.
struct last_tick {
  int64_t ms = 0;        // 0 when none
  std::string schedule;  // what it was emitted under ("" when not said)
};

last_tick last_tick_of(std::string_view state) {
  last_tick out;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(state.data(), state.size()).get(doc)) return out;
  int64_t ms = 0;
  if (!doc["lastTickMs"].get_int64().get(ms)) out.ms = ms;
  std::string_view schedule;
  if (!doc["schedule"].get_string().get(schedule)) out.schedule = std::string(schedule);
  return out;
}

}  // namespace

caf::actor engine_impl::spawn_timers() {
  return system_->spawn([this](caf::event_based_actor* self) -> caf::behavior {
    self->send(self, timer_tick_atom::value);
    return {[this, self](timer_tick_atom) {
      sync_mqtt_sources();
      sync_custom_sources();
      const int64_t now = now_ms();
      const int64_t next = run_timers(now);
      self->delayed_send(self, std::chrono::milliseconds(std::clamp<int64_t>(next - now, 1, 1000)),
                         timer_tick_atom::value);
    }};
  });
}

int64_t engine_impl::run_timers(int64_t now) {
  int64_t next = now + 1000;
  if (!ready_.load() || core_.draining.load() || core_.writes_paused.load()) return next;
  auto snap = std::atomic_load(&snapshot_);
  for (auto& [_, rt] : snap->projects)
    for (uint32_t f = 0; f < rt->flows.size(); ++f) {
      const auto& flow = rt->flows[f];
      if (flow.blocks.size() < 2 || flow.blocks[0].kind != block_kind::timer || !flow.blocks[0].timer) continue;
      const auto& c = *flow.blocks[0].timer;
      next = std::min(next, drivers::timer::next_tick(c, now));
      for (const auto& key : c.keys) emit_ticks(rt, f, key, now);
    }
  return next;
}

void engine_impl::emit_ticks(const project_ptr& rt, uint32_t f, const std::string& key, int64_t now) {
  const auto& flow = rt->flows[f];
  const auto& timer_block = flow.blocks[0];
  const uint32_t group = key_group_of(key);
  // A group another node runs, or one being moved, is not ticked here.
  group_admission admitted(core_, group);
  if (!admitted.here()) return;
  // Its sinks are backed up: the ticks wait (catchUp says how many come later).
  if (core_.sink_backed_up(rt->project_id)) return;
  // Past its team's executions (hosted mode): likewise.
  if (quota_refusal_of(*rt)) return;
  auto skey = state_key(rt->tenant, rt->project_id, group, flow.name, timer_block.id, key);
  // Taken before the last tick is read: a commit built on a pending last
  // tick whose write then fails is refused (its ticks come again).
  const uint64_t epoch = store_->epoch();
  const std::string schedule = drivers::timer::schedule_text(*timer_block.timer);
  int64_t last = 0;
  bool changed = false;
  {
    std::lock_guard lock(timers_mutex_);
    if (auto p = timers_pending_.find(skey); p != timers_pending_.end()) last = p->second;
  }
  if (!last) {
    auto stored = store_->read(column::state, skey);
    if (!stored) return;  // cannot tell what was emitted: not now
    if (*stored) {
      auto t = last_tick_of(**stored);
      last = t.ms;
      changed = !t.schedule.empty() && t.schedule != schedule;  // a deploy changed it: nothing to catch up
    }
  }
  auto d = drivers::timer::due(*timer_block.timer, last, now, changed);
  if (d.ticks.empty() && d.mark <= last) return;
  if (d.skipped)
    std::fprintf(stderr,
                 "flowstate: timer %s of flow %s, key %s: %llu tick(s) missed while down passed over (catchUp)\n",
                 timer_block.id.c_str(), flow.name.c_str(), key.c_str(), static_cast<unsigned long long>(d.skipped));
  commit_batch b;
  std::vector<work_ptr> items;
  for (int64_t tick : d.ticks) {
    auto item = std::make_shared<work_item>();
    item->project = rt;
    item->flow = f;
    item->block = 1;
    item->msg.id = derive_message_id(flow.name + '\0' + key + '\0' + std::to_string(tick), timer_block.id, 0);
    item->msg.key = key;
    item->msg.trace_id = item->msg.id;
    item->msg.time_ms = tick;
    item->msg.payload = drivers::timer::tick_payload(key, tick);
    item->store_epoch = epoch;
    item->queue_seq = store_->next_sequence();
    b.put(column::queue, queue_key(rt->tenant, rt->project_id, group, item->queue_seq),
          encode_queued({flow.name, flow.blocks[1].id, item->msg}));
    items.push_back(std::move(item));
  }
  const int64_t emitted = d.mark;
  std::string state = "{\"lastTickMs\":" + std::to_string(emitted) + ",\"schedule\":";
  http::append_json_string(state, schedule);
  b.put(column::state, skey, state + "}");
  {
    std::lock_guard lock(timers_mutex_);
    timers_pending_[skey] = emitted;
  }
  // Until the commit is written the store may not show the new last tick:
  // the pending one stands for it (a failed write forgets it, so the ticks
  // are emitted again; their items, of an older store epoch, are dropped).
  auto forget = [this, skey, emitted] {
    std::lock_guard lock(timers_mutex_);
    if (auto p = timers_pending_.find(skey); p != timers_pending_.end() && p->second == emitted)
      timers_pending_.erase(p);
  };
  store_->commit(
      std::move(b), rt->durability, forget, [forget](const std::string&) { forget(); }, epoch);
  // After the commit was handed to the store (its single writer keeps the
  // queue entries' puts before the removals the functions' commits make).
  for (auto& item : items) submit(std::move(item));
}

}  // namespace flowstate::engine_detail
