// Moving key groups between nodes (docs/cluster.md "Moving key groups",
// docs/design.md "Step 4"). The controller asks the source to move groups
// [first, end) to a target:
//
//  1. The source copies every record of the groups (state, queue, errors,
//     idempotency records, counters, outbox entries and marks) to the
//     target while they still serve; the store's write observer records
//     every key of the groups written meanwhile.
//  2. It holds new requests for the groups (they wait, not fail), keeps
//     messages for them in the queue unrun, waits until what already runs
//     for them has finished and is written, and sends the recorded keys as
//     they are now (or their deletion), with its sequence, above every
//     copied record's. The pause is this step: it grows with what changed
//     during the copy, not with what the groups hold.
//  3. The controller writes the new placement (epoch + 1) in etcd. If that
//     fails, the source serves on and the target drops its copy.
//  4. The source deletes its copy; once its gate sends the groups to the
//     target it lets the held requests go there. The target, once its gate
//     runs the groups, runs the queue entries it received.
#include <caf/send.hpp>

#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "engine_impl.hpp"
#include "flowstate/runtime/decimal.hpp"
#include "flowstate/runtime/fault.hpp"
#include "flowstate/runtime/keys.hpp"
#include "outbox.hpp"
#include "peers.hpp"
#include "records.hpp"
#include "replication.hpp"

namespace flowstate::engine_detail {
namespace {

constexpr std::size_t chunk_bytes = 1u << 20;
constexpr uint32_t step_timeout_ms = 120000;
constexpr int64_t hold_limit_ms = 10000;
// A source whose copy is done but that heard neither release nor abort (the
// controller went away) serves the groups again after this, if the
// placement still names it (the controller gives up on etcd after 20 s).
constexpr int64_t unanswered_move_ms = 30000;
constexpr std::string_view held_since_header = "flowstate-held-since";

}  // namespace

std::string groups_text(uint32_t first, uint32_t end) {
  return "key groups [" + std::to_string(first) + ", " + std::to_string(end) + ")";
}

std::vector<std::pair<std::string, std::string>> engine_impl::group_spans(uint32_t first, uint32_t end) const {
  std::vector<std::pair<std::string, std::string>> out;
  std::shared_lock lock(mutex_);
  for (auto& [id, e] : projects_) {
    const uint32_t tenant = e->active ? e->active->tenant : 0;
    out.emplace_back(key_builder().u32(tenant).u32(id).u32(first).take(),
                     key_builder().u32(tenant).u32(id).u32(end).take());
  }
  return out;
}

status engine_impl::erase_spans(uint32_t first, uint32_t end) {
  commit_batch batch;
  for (auto& [begin, stop] : group_spans(first, end))
    for (auto c : key_group_columns) {
      auto st = store_->scan_range(c, begin, stop, [&](std::string_view key, std::string_view) {
        batch.erase(c, std::string(key));
        return true;
      });
      if (!st) return st;
    }
  if (batch.empty()) return status::success();
  return store_->write_now(std::move(batch), true);
}

void engine_impl::forget_groups(uint32_t first, uint32_t end, bool outbox_entries_moved) {
  for (auto& shard : core_.shards) caf::anon_send(shard, forget_groups_atom::value, first, end);
  {
    // Marks of messages into the groups (the ones that moved): read again.
    auto in_range = [&](const auto& entry) {
      const uint32_t to = std::get<3>(entry.first);
      return to >= first && to < end;
    };
    std::lock_guard lock(inbox_mutex_);
    std::erase_if(inbox_marks_, in_range);
    std::lock_guard durable(inbox_durable_mutex_);
    std::erase_if(inbox_durable_marks_, in_range);
  }
  if (outbox_entries_moved) {
    caf::anon_send(core_.outbox, forget_groups_atom::value, first, end);
    caf::anon_send(core_.sinks, forget_groups_atom::value, first, end);
  } else {
    caf::anon_send(core_.outbox, reload_outbox_atom::value);
    caf::anon_send(core_.sinks, reload_outbox_atom::value);
  }
}

void engine_impl::requeue_groups(uint32_t first, uint32_t end, uint64_t below) {
  std::vector<work_ptr> items;
  std::vector<project_ptr> projects;
  {
    std::shared_lock lock(mutex_);
    for (auto& [_, e] : projects_)
      if (e->active) projects.push_back(e->active);
  }
  const uint64_t epoch = store_->epoch();
  for (auto& rt : projects) {
    auto [begin, stop] = queue_range(rt->tenant, rt->project_id, first, end);
    auto st = store_->scan_range(column::queue, begin, stop, [&](std::string_view key, std::string_view value) {
      key_reader kr(key);
      (void)kr.u32();
      (void)kr.u32();
      (void)kr.u32();
      auto seq = kr.u64();
      auto q = decode_queued(value);
      if (!seq || !q || *seq >= below) return true;
      int f = rt->find_flow(q->flow);
      int b = f < 0 ? -1 : rt->flows[static_cast<std::size_t>(f)].find_block(q->block);
      if (b < 0) {
        undeliverable(rt, *q, std::string(key));
        return true;
      }
      auto item = std::make_shared<work_item>();
      item->project = rt;
      item->flow = static_cast<uint32_t>(f);
      item->block = static_cast<uint32_t>(b);
      item->queue_seq = *seq;
      item->store_epoch = epoch;
      item->msg = std::move(q->msg);
      items.push_back(std::move(item));
      return true;
    });
    if (!st) std::fprintf(stderr, "flowstate: reading the queue of %s: %s\n", rt->name.c_str(), st.error().c_str());
  }
  for (auto& item : items) submit(std::move(item));
}

namespace {

// The records of groups [first, end) written while a move copies them (the
// store's write observer), to send again while the groups are held.
struct dirty_records {
  uint32_t first = 0, end = 0;
  std::mutex mu;
  std::set<std::pair<column, std::string>> keys;

  void observe(const commit_batch& batch) {
    for (auto& op : batch.ops()) {
      if (op.col == column::meta || op.col == column::trace) continue;
      auto g = key_group_of_record(op.key);
      if (!g || *g < first || *g >= end) continue;
      std::lock_guard lock(mu);
      keys.emplace(op.col, op.key);
    }
  }
};

}  // namespace

result<engine_impl::moved_out> engine_impl::move_out(uint32_t first, uint32_t end, const std::string& to,
                                                     bool transfer) {
  if (!peers_) return fail("this node has no --peer-listen: it cannot send records to node " + to);
  if (first >= end || end > key_group_count) return fail("no such " + groups_text(first, end));
  {
    std::lock_guard lock(moves_mutex_);
    for (auto& r : moving_out_)
      if (r.first < end && first < r.end) return fail(groups_text(r.first, r.end) + " are being moved already");
    moving_out_.push_back({first, end, 0, now_ms(), true});
  }
  auto ask = [&](peer_query q) -> status {
    auto r = peers_->ask(to, q, step_timeout_ms);
    if (!r) return fail(r.error());
    if (r->status >= 300) return fail("node " + to + " answered " + std::to_string(r->status) + ": " + r->body);
    return status::success();
  };
  // Sends records in frames of about chunk_bytes: (column, key, value), or
  // ("!" column, key, "") for a record to delete.
  peer_query chunk{"import", {}};
  std::size_t bytes = 0;
  uint64_t records = 0;
  auto add = [&](std::string column, std::string_view key, std::string_view value) -> status {
    chunk.args.emplace_back(std::move(column));
    chunk.args.emplace_back(key);
    chunk.args.emplace_back(value);
    bytes += key.size() + value.size() + 16;
    ++records;
    if (bytes < chunk_bytes) return status::success();
    auto st = ask(chunk);
    chunk.args.clear();
    bytes = 0;
    return st;
  };
  auto flush = [&]() -> status {
    if (chunk.args.empty()) return status::success();
    auto st = ask(chunk);
    chunk.args.clear();
    bytes = 0;
    return st;
  };
  // Every record of the groups, as it is now: `visit(column, key, value)`.
  auto each_record = [&](const std::function<status(column, std::string_view, std::string_view)>& visit) -> status {
    status inner = status::success();
    for (auto& [begin, stop] : group_spans(first, end))
      for (auto c : key_group_columns) {
        auto st = store_->scan_range(c, begin, stop, [&](std::string_view key, std::string_view value) {
          inner = visit(c, key, value);
          return static_cast<bool>(inner);
        });
        if (!st) return st;
        if (!inner) return inner;
      }
    return status::success();
  };
  auto give_up = [&](std::string why) -> result<moved_out> {
    {
      std::lock_guard lock(moves_mutex_);
      std::erase_if(moving_out_, [&](const moved_range& r) { return r.first == first && r.end == end; });
    }
    // (A transfer's target keeps its follower's copy.)
    if (!transfer)
      (void)peers_->ask(to, {"import-abort", {std::to_string(first), std::to_string(end)}}, step_timeout_ms);
    return fail(std::move(why));
  };

  replicator* rep = nullptr;
  {
    std::lock_guard lock(replication_mutex_);
    rep = replicator_.get();  // lives until the engine goes
  }
  if (transfer && (!rep || !rep->hold_point(first)))
    return give_up(groups_text(first, end) + " have no replication log here: nothing to hand over to " + to);

  // 1. A first copy while the groups still serve (the pause does not
  //    depend on how much they hold). A transfer copies nothing: its
  //    target has a follower's copy.
  if (auto st = transfer ? status::success() : ask({"import-begin", {std::to_string(first), std::to_string(end)}}); !st)
    return give_up(st.error());
  // What is written to the groups from now on is recorded, and sent again
  // while they are held.
  auto dirty = std::make_shared<dirty_records>();
  dirty->first = first;
  dirty->end = end;
  store_->set_write_observer([dirty](const commit_batch& b) { dirty->observe(b); });
  struct unobserve {
    store* db;
    ~unobserve() { db->set_write_observer(nullptr); }
  } stop_observing{store_.get()};
  // A group write the writer had already begun without the observer must
  // be in the copy: the copy starts once a commit after it is written.
  {
    commit_batch marker;
    marker.put(column::meta, meta_key("moving", first), "copying");
    if (auto st = commit_and_wait(std::move(marker), durability_mode::relaxed); !st) return give_up(st.error());
  }
  auto first_copy =
      transfer ? status::success() : each_record([&](column c, std::string_view key, std::string_view value) {
        return add(std::string(column_name(c)), key, value);
      });
  auto abort_asked = [&] {
    std::lock_guard lock(moves_mutex_);
    for (auto& r : moving_out_)
      if (r.first == first && r.end == end) return r.abort_requested;
    return true;
  };
  if (first_copy) first_copy = flush();
  if (!first_copy) return give_up(first_copy.error());
  if (abort_asked()) return give_up("the move was called off");
  const uint64_t copied = records;

  // 2. Hold the groups: new requests wait, queued messages stay unrun, and
  //    what runs finishes (functions have timeouts). Afterwards no queue
  //    entry of theirs is in a shard, and the sequence taken now is above
  //    all of them.
  const auto held_at = std::chrono::steady_clock::now();
  auto since_held = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - held_at).count();
  };
  for (uint32_t g = first; g < end; ++g) core_.frozen[g].store(true);
  { std::lock_guard lock(inbox_mutex_); }  // a delivery being committed is counted below
  for (;;) {
    uint64_t n = 0;
    for (uint32_t g = first; g < end; ++g) n += core_.group_in_flight[g].load();
    if (n == 0) break;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const uint64_t seq = store_->next_sequence();
  const double drained_ms = since_held();
  auto finish_copy = [&] {
    std::lock_guard lock(moves_mutex_);
    for (auto& r : moving_out_)
      if (r.first == first && r.end == end) {
        r.copying = false;
        r.seq = seq;
        r.since_ms = now_ms();
      }
  };
  auto undo = [&](std::string why) -> result<moved_out> {
    finish_copy();
    abort_move(first, end);
    if (!transfer)
      (void)peers_->ask(to, {"import-abort", {std::to_string(first), std::to_string(end)}}, step_timeout_ms);
    return fail(std::move(why));
  };
  // Every commit handed to the store before this one is written once it is.
  {
    commit_batch marker;
    marker.put(column::meta, meta_key("moving", first), std::to_string(seq));
    if (auto st = commit_and_wait(std::move(marker), durability_mode::sync); !st) return undo(st.error());
  }
  const double written_ms = since_held();

  if (transfer) {
    // 3'. The target has the groups once its copy has the log up to the
    //     hold (every commit to them is below it); the other followers get
    //     a moment too, to keep their copies under the target's log.
    store_->set_write_observer(nullptr);
    auto point = rep->hold_point(first);
    if (!point) return undo(groups_text(first, end) + " are no longer led here with followers");
    if (!rep->wait_follower(first, to, point->index, 10000))
      return undo("node " + to + " did not have the replication log of " + groups_text(first, end) +
                  " up to the hold within 10 s");
    rep->wait_acked(first, point->index, 2000);
    finish_copy();
    {
      std::lock_guard lock(moves_mutex_);
      for (auto& r : moving_out_)
        if (r.first == first && r.end == end) {
          r.transfer_log = point->log;
          r.transfer_index = point->index;
        }
    }
    std::fprintf(stderr,
                 "flowstate: %s handed over to %s (its follower's copy had them; held %.1f ms: drained at %.1f)\n",
                 groups_text(first, end).c_str(), to.c_str(), since_held(), drained_ms);
    return moved_out{seq,
                     0,
                     std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - held_at).count(),
                     {point->log, point->index}};
  }

  // 3. What was written to the groups since the first copy began (every
  //    such commit is written now: the marker came after them), as it is
  //    now: the record, or its deletion.
  store_->set_write_observer(nullptr);
  std::set<std::pair<column, std::string>> changed;
  {
    std::lock_guard lock(dirty->mu);
    changed.swap(dirty->keys);
  }
  status changes = status::success();
  for (auto& [c, key] : changed) {
    auto value = store_->read(c, key);
    if (!value) {
      changes = fail(value.error());
      break;
    }
    changes = *value ? add(std::string(column_name(c)), key, **value) : add("!" + std::string(column_name(c)), key, "");
    if (!changes) break;
  }
  const double compared_ms = since_held();
  if (changes) changes = flush();
  if (!changes) return undo(changes.error());
  if (abort_asked()) return undo("the move was called off");
  // Where the groups' replication log stands (every commit to them is in
  // it): the target's followers that have it all keep their copies. They
  // get a moment to catch up (requests are held meanwhile).
  engine::log_position position;
  if (rep)
    if (auto point = rep->hold_point(first)) {
      rep->wait_acked(first, point->index, 2000);
      position = {point->log, point->index};
    }
  if (auto st = ask({"import-end", {std::to_string(first), std::to_string(end), std::to_string(seq)}}); !st)
    return undo(st.error());
  finish_copy();
  std::fprintf(stderr,
               "flowstate: %s copied to %s: %llu records, then %llu while held (held %.1f ms: drained at %.1f, "
               "written at %.1f, compared at %.1f)\n",
               groups_text(first, end).c_str(), to.c_str(), static_cast<unsigned long long>(copied),
               static_cast<unsigned long long>(records - copied), since_held(), drained_ms, written_ms, compared_ms);
  return moved_out{seq, records,
                   std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - held_at).count(),
                   std::move(position)};
}

status engine_impl::release_groups(uint32_t first, uint32_t end) {
  // A transfer: this node stays a follower of the groups, its copy holding
  // its own log up to the hold, which the new leader's followers adopt.
  std::string kept_log;
  uint64_t kept_index = 0;
  bool moving = false;
  {
    std::lock_guard lock(moves_mutex_);
    for (auto& r : moving_out_)
      if (r.first == first && r.end == end && !r.releasing) {
        r.releasing = true;  // one release: a second caller finds nothing to do
        moving = true;
        kept_log = r.transfer_log;
        kept_index = r.transfer_index;
      }
  }
  // Released already (or being released): this node's view showed the new
  // owner before the controller's release came (placement_changed releases
  // then), or the controller asked twice. Nothing more to do; above all the copy is not
  // deleted again, since it may be a follower's by now (a transfer's
  // source keeps its copy; a copy's source may have been rebuilt as one).
  if (!moving) return status::success();
  if (!kept_log.empty()) {
    std::lock_guard lock(replication_mutex_);
    if (replicator_) replicator_->hold_copy(first, end, kept_log, kept_index);
  }
  forget_groups(first, end, true);
  {
    std::lock_guard lock(moves_mutex_);
    std::erase_if(moving_out_, [&](const moved_range& r) { return r.first == first && r.end == end; });
    released_.push_back({first, end, 0, now_ms(), false});
  }
  if (!kept_log.empty()) {
    placement_changed();
    return status::success();
  }
  // Held requests go on as soon as this node's view has moved on; the copy
  // is deleted afterwards (nothing here writes the groups again: the gate
  // sends them elsewhere).
  placement_changed();
  if (auto st = erase_spans(first, end); !st)
    std::fprintf(stderr, "flowstate: deleting the copy of %s: %s\n", groups_text(first, end).c_str(),
                 st.error().c_str());
  return status::success();
}

void engine_impl::run_job(std::function<void()> job) {
  std::lock_guard lock(jobs_mutex_);
  std::erase_if(jobs_,
                [](std::future<void>& f) { return f.wait_for(std::chrono::seconds(0)) == std::future_status::ready; });
  jobs_.push_back(std::async(std::launch::async, std::move(job)));
}

void engine_impl::abort_move(uint32_t first, uint32_t end) {
  std::optional<uint64_t> seq;
  {
    std::lock_guard lock(moves_mutex_);
    std::erase_if(moving_out_, [&](moved_range& r) {
      if (r.first != first || r.end != end) return false;
      if (r.copying) {
        r.abort_requested = true;  // the copy stops and undoes itself
        return false;
      }
      seq = r.seq;
      return true;
    });
  }
  if (!seq) return;
  for (uint32_t g = first; g < end; ++g) core_.frozen[g].store(false);
  // The entries kept unrun while held, all numbered below seq; new ones,
  // numbered above, are submitted when they are committed.
  requeue_groups(first, end, *seq);
  placement_changed();
}

void engine_impl::placement_changed() {
  std::vector<moved_range> serve, lost, first_run;
  {
    std::lock_guard lock(moves_mutex_);
    // Groups this node runs for the first time since it started: their
    // queue entries from before the start run now.
    if (start_seq_)
      for (uint32_t g = 0; g < key_group_count; ++g) {
        if (queue_run_[g] || !core_.runs_here(g)) continue;
        queue_run_[g] = true;
        if (!first_run.empty() && first_run.back().end == g)
          first_run.back().end = g + 1;
        else
          first_run.push_back({g, g + 1, start_seq_, 0, false});
      }
    // Copied, then the placement changed before this node heard from the
    // controller (it was paused or cut off meanwhile, or its view was
    // simply quicker): released here; the controller's release then finds
    // nothing to do.
    for (auto& r : moving_out_)
      if (!r.copying && !r.releasing && !core_.runs_here(r.first)) lost.push_back(r);
    // Released ranges go on to their new owner once the gate says so.
    std::erase_if(released_, [&](const moved_range& r) {
      if (core_.runs_here(r.first)) return false;
      for (uint32_t g = r.first; g < r.end; ++g) core_.frozen[g].store(false);
      return true;
    });
    std::erase_if(received_, [&](const moved_range& r) {
      if (!core_.runs_here(r.first)) return false;
      serve.push_back(r);
      return true;
    });
  }
  for (auto& r : lost) {
    std::fprintf(stderr, "flowstate: %s moved to another node before its controller said so; released here%s\n",
                 groups_text(r.first, r.end).c_str(),
                 r.transfer_log.empty() ? " (its copy is deleted)" : " (its copy is kept: a follower's now)");
    (void)release_groups(r.first, r.end);  // calls this again
  }
  for (auto& r : first_run) requeue_groups(r.first, r.end, r.seq);
  for (auto& r : serve) requeue_groups(r.first, r.end, r.seq);
  // Outbox entries of groups this node runs now may only be in the store.
  if (core_.outbox) caf::anon_send(core_.outbox, reload_outbox_atom::value);
  if (core_.sinks) caf::anon_send(core_.sinks, reload_outbox_atom::value);
  dispatch_held_again();
}

void engine_impl::dispatch_held_again() {
  std::vector<held_request> again;
  {
    std::lock_guard lock(held_mutex_);
    again.swap(held_);
  }
  for (auto& h : again) handle_flow_request(std::move(h.req), std::move(h.reply));
}

void engine_impl::hold(http::request&& req, http::responder_ptr reply) {
  // Held since its first hold (a request dispatched again and held again
  // keeps its time, so the limit holds whatever the placement does).
  int64_t since = now_ms();
  if (auto h = req.header(held_since_header); !h.empty())
    since = static_cast<int64_t>(parse_decimal<uint64_t>(h).value_or(static_cast<uint64_t>(since)));
  else
    req.headers.emplace_back(std::string(held_since_header), std::to_string(since));
  std::lock_guard lock(held_mutex_);
  held_.push_back({std::move(req), std::move(reply), since});
}

void engine_impl::answer_held_too_long() {
  std::vector<held_request> late;
  {
    std::lock_guard lock(held_mutex_);
    const int64_t now = now_ms();
    std::erase_if(held_, [&](held_request& h) {
      if (now - h.since_ms < hold_limit_ms) return false;
      late.push_back(std::move(h));
      return true;
    });
  }
  // The others try again (a view may have caught up without a change here).
  dispatch_held_again();
  for (auto& h : late) {
    auto r = http::problem(503, "placement changing",
                           "the key's group is moving to another node (or this node is still activating the "
                           "deploy the request was sent under) and that did not finish within " +
                               std::to_string(hold_limit_ms / 1000) + " s; nothing was accepted: retry");
    r.headers.emplace_back("Retry-After", "1");
    h.reply->send(std::move(r));
  }
  // A move whose controller went silent: the source serves on if the
  // placement still says so (a copy at the target is never served: the
  // placement does not name it).
  std::vector<moved_range> stale;
  {
    std::lock_guard lock(moves_mutex_);
    for (auto& r : moving_out_)
      if (!r.copying && now_ms() - r.since_ms > unanswered_move_ms && core_.runs_here(r.first)) stale.push_back(r);
  }
  for (auto& r : stale) {
    std::fprintf(stderr, "flowstate: the move of %s was not finished by the controller; serving them again\n",
                 groups_text(r.first, r.end).c_str());
    abort_move(r.first, r.end);
  }
}

void engine_impl::answer_peer_async(peer_query&& q, std::function<void(http::response)> done) {
  if (core_.draining.load()) {
    auto r = http::problem(503, "draining", "the node is shutting down");
    r.headers.emplace_back("Retry-After", "1");
    return done(std::move(r));
  }
  // Point reads (a state, an error, the graph) answer here; scans of the
  // trace or the errors, migration steps and git packs run on a thread of
  // their own, so the ingress actor (every forwarded request and delivery)
  // never waits for them.
  if (q.kind == "state" || q.kind == "graph" || q.kind == "error-show" || q.kind == "qos2-check")
    return done(answer_peer(q));
  run_job([this, q = std::move(q), done = std::move(done)] { done(answer_slow_peer(q)); });
}

http::response engine_impl::answer_slow_peer(const peer_query& q) {
  auto ok = [] {
    http::response r;
    r.status = 200;
    return r;
  };
  auto answer = [&](status st) { return st ? ok() : http::problem(500, "move step failed", st.error()); };
  auto group = [&](std::size_t i) { return i < q.args.size() ? parse_decimal<uint32_t>(q.args[i]) : std::nullopt; };
  auto number = [&](std::size_t i) { return i < q.args.size() ? parse_decimal<uint64_t>(q.args[i]) : std::nullopt; };
  if (q.kind == "import") return answer(import_records(q.args));
  if (q.kind == "replicate" || q.kind.rfind("replica-", 0) == 0) return answer_replication(q);
  if ((q.kind == "error-replay" || q.kind == "error-discard") && q.args.size() == 2) {
    // Asked by a node that does not keep the record: changed here only if
    // its group runs here (an owner's view can be behind: it says so).
    auto st = error_change(q.kind, q.args[0], q.args[1], false);
    return st ? ok() : http::problem(409, "cannot change the error", st.error());
  }
  auto first = group(0), end = group(1);
  const bool ranged = first && end && *first < *end && *end <= key_group_count;
  if (q.kind == "import-begin" && ranged) return answer(import_begin(*first, *end));
  if (q.kind == "import-end" && ranged && number(2)) return answer(import_end(*first, *end, *number(2)));
  if (q.kind == "import-abort" && ranged) return answer(import_abort(*first, *end));
  if (q.kind == "move-status" && ranged) {
    http::response out = ok();
    out.body = move_status(*first, *end);
    return out;
  }
  if (q.kind == "move-release" && ranged) return answer(release_groups(*first, *end));
  if (q.kind == "move-abort" && ranged) {
    abort_move(*first, *end);
    return ok();
  }
  if (q.kind == "move-out" && ranged && (q.args.size() == 3 || q.args.size() == 4)) {
    auto r = move_out(*first, *end, q.args[2], q.args.size() == 4 && q.args[3] == "transfer");
    if (!r) return http::problem(500, "move failed", r.error());
    http::response out;
    char held[32];
    std::snprintf(held, sizeof held, "%.3f", r->held_ms);
    // "seq records held_ms [log index]"
    out.body = std::to_string(r->seq) + " " + std::to_string(r->records) + " " + held;
    if (!r->position.log.empty()) out.body += " " + r->position.log + " " + std::to_string(r->position.index);
    return out;
  }
  return answer_peer(q);
}

result<engine::move_outcome> engine_impl::move_groups(
    uint32_t first, uint32_t end, const std::string& from, const std::string& to, bool transfer,
    const std::function<status(const log_position&)>& write_placement) {
  if (from == to) return fail(groups_text(first, end) + " are on node " + to + " already");
  if (!peers_) return fail("this node has no --peer-listen: it cannot move key groups");
  const auto started = std::chrono::steady_clock::now();
  const bool here = from == options_.node_name;
  // Step on the source: this node's own, or asked.
  auto at_source = [&](peer_query q) -> result<std::string> {
    auto r = peers_->ask(from, q, step_timeout_ms);
    if (!r) return fail(r.error());
    if (r->status >= 300) return fail("node " + from + ": " + r->body);
    return r->body;
  };
  uint64_t records = 0;
  double held_ms = 0;
  log_position position;
  if (here) {
    auto r = move_out(first, end, to, transfer);
    if (!r) return fail(r.error());
    records = r->records;
    held_ms = r->held_ms;
    position = r->position;
  } else {
    // On failure the source undoes its part itself (or, when its answer
    // was lost, once the controller has been silent for long).
    peer_query out_q{"move-out", {std::to_string(first), std::to_string(end), to}};
    if (transfer) out_q.args.emplace_back("transfer");
    auto r = at_source(out_q);
    if (!r) {
      // No answer (or a failure it already undid): called off at the source
      // if it is still at it (harmless otherwise); the target drops its copy.
      (void)at_source({"move-abort", {std::to_string(first), std::to_string(end)}});
      if (!transfer)  // (a transfer's target keeps its follower's copy)
        (void)peers_->ask(to, {"import-abort", {std::to_string(first), std::to_string(end)}}, step_timeout_ms);
      return fail(r.error());
    }
    // "seq records held_ms [log index]"
    std::vector<std::string> words;
    for (std::size_t at = 0; at < r->size();) {
      auto space = r->find(' ', at);
      if (space == std::string::npos) space = r->size();
      words.push_back(r->substr(at, space - at));
      at = space + 1;
    }
    if (words.size() >= 3) {
      records = parse_decimal<uint64_t>(words[1]).value_or(0);
      held_ms = std::strtod(words[2].c_str(), nullptr);
    }
    if (words.size() == 5) position = {words[3], parse_decimal<uint64_t>(words[4]).value_or(0)};
  }
  const auto copied_at = std::chrono::steady_clock::now();
  double written_ms = 0;
  fault_point("move-before-placement");  // the controller dies here: nobody ends the move
  if (auto st = write_placement(position); !st) {
    if (st.error().rfind(placement_outcome_unknown, 0) == 0) return fail(st.error());
    if (here)
      abort_move(first, end);
    else
      (void)at_source({"move-abort", {std::to_string(first), std::to_string(end)}});
    if (!transfer)
      (void)peers_->ask(to, {"import-abort", {std::to_string(first), std::to_string(end)}}, step_timeout_ms);
    return fail("writing the placement: " + st.error());
  }
  written_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - copied_at).count();
  // The placement names `to` now: whatever happens to `from`, it never
  // serves the groups again (its copy is deleted, or ignored if it died).
  fault_pause("move-slow-release");  // the source's view may show it first
  if (here) {
    if (auto st = release_groups(first, end); !st) std::fprintf(stderr, "flowstate: %s\n", st.error().c_str());
  } else if (auto r = at_source({"move-release", {std::to_string(first), std::to_string(end)}}); !r) {
    std::fprintf(stderr, "flowstate: releasing %s on %s: %s\n", groups_text(first, end).c_str(), from.c_str(),
                 r.error().c_str());
  }
  move_outcome out;
  // Held at the source until the placement was written (the source lets
  // the held requests go once its view shows it, milliseconds later; its
  // copy is deleted after that).
  out.pause_ms = held_ms + written_ms;
  out.duration_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  out.records = records;
  return out;
}

}  // namespace flowstate::engine_detail
