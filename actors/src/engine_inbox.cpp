// The receiving end of the outbox (outbox.hpp): messages another node
// produced for key groups this node runs. Each is committed into the queue
// of its key group together with the de-duplication mark of its (source
// group, destination group) pair, in one synced commit; the sender deletes
// its entry only after that. A repeat (the sender did not hear the answer,
// or restarted) has a sequence at or below the mark and is acknowledged
// without being queued again.
#include <algorithm>
#include <cstdio>
#include <set>

#include "engine_impl.hpp"
#include "errors.hpp"
#include "flowstate/runtime/decimal.hpp"
#include "flowstate/runtime/keys.hpp"
#include "idempotency.hpp"
#include "peer_frames.hpp"
#include "records.hpp"

namespace flowstate::engine_detail {

void engine_impl::accept_delivery(std::vector<delivery_entry>&& entries,
                                  std::function<void(std::vector<delivery_status>)> done) {
  std::vector<delivery_status> statuses(entries.size(), delivery_status::later);
  if (core_.draining.load() || core_.writes_paused.load() || !store_->health().ok() || !ready_.load())
    return done(std::move(statuses));
  auto snap = std::atomic_load(&snapshot_);
  commit_batch batch;
  std::vector<work_ptr> items;
  std::lock_guard lock(inbox_mutex_);
  const uint64_t epoch = store_->epoch();
  if (inbox_epoch_ != epoch) {
    // A write failed since the marks were read: they may be ahead of what
    // was written. Read them again.
    inbox_marks_.clear();
    inbox_epoch_ = epoch;
    std::lock_guard durable(inbox_durable_mutex_);
    inbox_durable_marks_.clear();
  }
  std::set<std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>> stopped;  // pairs that wait behind a refusal
  std::vector<std::pair<std::tuple<uint32_t, uint32_t, uint32_t, uint32_t>, uint64_t>> marked;  // by this commit
  std::vector<std::string> identities;  // idempotency records written by this commit
  for (std::size_t i = 0; i < entries.size(); ++i) {
    auto& e = entries[i];
    auto q = decode_queued(e.queued);
    if (!q) {
      // Not something this node's outbox writes: it could never be run, and
      // refusing it would hold up every later message of its pair.
      std::fprintf(stderr, "flowstate inbox: dropping an unreadable message from source group %u: %s\n", e.source_group,
                   q.error().c_str());
      statuses[i] = delivery_status::accepted;
      continue;
    }
    const uint32_t to_group = key_group_of(q->msg.key);
    const std::tuple pair{e.tenant, e.project, e.source_group, to_group};
    if (stopped.count(pair)) continue;
    if (!core_.runs_here(to_group)) {
      statuses[i] = delivery_status::elsewhere;
      stopped.insert(pair);
      continue;
    }
    if (core_.is_frozen(to_group)) {
      stopped.insert(pair);  // being moved: later, to its new owner
      continue;
    }
    auto pit = snap->projects.find(e.project);
    if (pit == snap->projects.end() || pit->second->tenant != e.tenant) {
      stopped.insert(pair);  // not active here (yet): the sender tries again
      continue;
    }
    const auto& rt = pit->second;
    if (q->deploy > rt->cluster_deploy.load()) {
      stopped.insert(pair);  // produced by a deploy not active here yet: later
      continue;
    }
    auto mark = inbox_marks_.find(pair);
    if (mark == inbox_marks_.end()) {
      auto stored = store_->read(column::outbox, inbox_mark_key(e.tenant, e.project, to_group, e.source_group));
      std::optional<uint64_t> seq = uint64_t{0};
      if (stored && *stored) seq = parse_decimal<uint64_t>(**stored);
      if (!stored || !seq) {
        std::fprintf(stderr, "flowstate inbox: reading a de-duplication mark: %s\n",
                     stored ? "not a number" : stored.error().c_str());
        stopped.insert(pair);
        continue;
      }
      mark = inbox_marks_.emplace(pair, *seq).first;
      std::lock_guard durable(inbox_durable_mutex_);
      auto& d = inbox_durable_marks_[pair];
      d = std::max(d, *seq);  // read from the store: durable
    }
    if (e.seq <= mark->second) {
      uint64_t durable_mark = 0;
      {
        std::lock_guard durable(inbox_durable_mutex_);
        durable_mark = inbox_durable_marks_[pair];
      }
      if (e.seq > durable_mark) {
        stopped.insert(pair);  // its first copy's commit is not durable yet: later
        continue;
      }
      statuses[i] = delivery_status::accepted;
      core_.inbox_repeats.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    // A source's message with an identity (its `id:`), accepted by another
    // node: queued once per identity, whichever node accepted each copy.
    bool repeat = false;
    if (!q->identity.empty()) {
      auto idem = idempotency_key(e.tenant, e.project, to_group, q->identity);
      {
        std::lock_guard pending(inbox_identities_mutex_);
        if (inbox_identities_.count(idem)) {
          stopped.insert(pair);  // a copy's commit is not durable yet: later
          continue;
        }
      }
      auto seen = store_->read(column::idempotency, idem);
      if (!seen) {
        stopped.insert(pair);
        continue;
      }
      repeat = *seen && !idempotency_expired(**seen, options_.idempotency_ttl_ms, now_ms());
      if (!repeat) {
        http::response r;
        r.status = 202;
        batch.put(column::idempotency, idem, encode_response(r, now_ms()));
        std::lock_guard pending(inbox_identities_mutex_);
        inbox_identities_.insert(idem);
        identities.push_back(std::move(idem));
      }
    }
    statuses[i] = delivery_status::accepted;
    marked.emplace_back(pair, e.seq);
    mark->second = e.seq;
    batch.put(column::outbox, inbox_mark_key(e.tenant, e.project, to_group, e.source_group), std::to_string(e.seq));
    if (repeat) {
      core_.inbox_repeats.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    core_.inbox_accepted.fetch_add(1, std::memory_order_relaxed);
    int f = rt->find_flow(q->flow);
    int b = f < 0 ? -1 : rt->flows[static_cast<std::size_t>(f)].find_block(q->block);
    if (!q->precondition_failed.empty()) {
      // A source's message that cannot run (no key, no identity): its error
      // record lives in its (fallback) key's group, here.
      auto err = make_error(*store_, *rt, 0, q->block, q->msg, "PreconditionFailed", q->precondition_failed, "{}");
      err.flow = q->flow;
      put_error(batch, *rt, err);
      continue;
    }
    if (b < 0) {
      auto err = make_error(*store_, *rt, 0, q->block, q->msg, "Undeliverable",
                            "block " + q->block + " of flow " + q->flow + " is not in the active revision here", "{}");
      err.flow = q->flow;
      put_error(batch, *rt, err);
      continue;
    }
    auto item = std::make_shared<work_item>();
    item->project = rt;
    item->flow = static_cast<uint32_t>(f);
    item->block = static_cast<uint32_t>(b);
    item->queue_seq = store_->next_sequence();
    item->store_epoch = epoch;
    batch.put(column::queue, queue_key(e.tenant, e.project, to_group, item->queue_seq), e.queued);
    item->msg = std::move(q->msg);
    items.push_back(std::move(item));
  }
  if (batch.empty()) return done(std::move(statuses));
  // Synced whatever the project's durability: the sender deletes its copy
  // on this answer.
  auto failed = std::vector<delivery_status>(statuses.size(), delivery_status::later);
  auto settled = [this, identities] {
    std::lock_guard pending(inbox_identities_mutex_);
    for (auto& idem : identities) inbox_identities_.erase(idem);
  };
  store_->commit(
      std::move(batch), durability_mode::sync,
      [this, done, statuses, settled, marked = std::move(marked)]() mutable {
        {
          std::lock_guard durable(inbox_durable_mutex_);
          for (auto& [pair, seq] : marked) {
            auto& d = inbox_durable_marks_[pair];
            d = std::max(d, seq);
          }
        }
        settled();
        done(std::move(statuses));
      },
      [done, failed, settled](const std::string&) mutable {
        settled();
        done(std::move(failed));
      },
      epoch);
  // After the commit was handed to the store: its single writer keeps the
  // queue entry's put before the removal the function's commit makes.
  for (auto& item : items) submit(std::move(item));
}

}  // namespace flowstate::engine_detail
