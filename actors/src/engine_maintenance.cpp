// Background upkeep off the data path, every second: error queue bounds,
// trace retention and trace byte counts.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "engine_impl.hpp"
#include "errors.hpp"
#include "flowstate/runtime/keys.hpp"
#include "flowstate/runtime/thread_name.hpp"
#include "trace.hpp"

namespace flowstate::engine_detail {

void engine_impl::start_maintenance() {
  maintenance_ = std::thread([this] {
    name_this_thread("fs-maintenance");
    std::unique_lock lock(maintenance_mutex_);
    while (!stopping_) {
      maintenance_cv_.wait_for(lock, std::chrono::seconds(1));
      if (stopping_) break;
      lock.unlock();
      watch_store();
      answer_held_too_long();
      settle_stale_imports();
      thin_errors();
      trim_traces();
      graveyard_->empty();
      lock.lock();
    }
  });
}

void engine_impl::stop_maintenance() {
  {
    std::lock_guard lock(maintenance_mutex_);
    stopping_ = true;
  }
  maintenance_cv_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
}

void engine_impl::watch_store() {
  auto health = store_->health();
  if (health.ok() && !core_.writes_paused.load()) return;
  if (!core_.writes_paused.exchange(true))
    std::fprintf(stderr,
                 "flowstate: the store cannot write (%s); new input gets 503 until it can, nothing unwritten is "
                 "acknowledged\n",
                 health.error().c_str());
  const int64_t now = now_ms();
  if (now - last_resume_attempt_ms_ < 5000) return;  // RocksDB's resume flushes: not every second
  last_resume_attempt_ms_ = now;
  if (auto st = store_->resume(); !st) {
    std::fprintf(stderr, "flowstate: %s; trying again in 5 s\n", st.error().c_str());
    return;
  }
  // A new epoch: every item in memory is stale and dropped when it comes
  // up; the queue on disk is what was written.
  if (auto st = requeue(); !st) {
    std::fprintf(stderr, "flowstate: after resuming: %s; trying again in 5 s\n", st.error().c_str());
    return;
  }
  core_.writes_paused.store(false);
  std::fprintf(stderr, "flowstate: the store writes again; accepting input\n");
}

void engine_impl::trim_traces() {
  commit_batch counts;
  core_.trace_accounting.flush_into(counts);
  // A failed write loses these per-second byte counts: retention by quota
  // then sees fewer bytes than there are, until the next records count.
  if (!counts.empty())
    if (auto st = store_->write_now(std::move(counts), false); !st)
      std::fprintf(stderr, "flowstate: trace byte counts: %s\n", st.error().c_str());
  std::vector<project_ptr> targets;
  {
    std::shared_lock lock(mutex_);
    for (auto& [_, e] : projects_)
      if (e->active) targets.push_back(e->active);
  }
  const int64_t now = now_ms();
  for (auto& rt : targets) {
    int64_t& last = last_age_trim_[rt->project_id];
    const bool by_age = now - last >= trace_age_interval_ms(rt->trace.full_ms, rt->trace.keep_ms);
    if (by_age) last = now;
    if (auto st = enforce_trace_retention(*store_, rt->tenant, rt->project_id, rt->trace.full_ms, rt->trace.keep_ms,
                                          rt->trace.quota_bytes, now, by_age);
        !st) {
      if (by_age) last = 0;  // retried at the next round
      std::fprintf(stderr, "flowstate: %s: trimming the trace failed (retried in a second): %s\n", rt->name.c_str(),
                   st.error().c_str());
    }
  }
}

void engine_impl::thin_errors() {
  std::vector<project_ptr> targets;
  {
    std::shared_lock lock(mutex_);
    for (auto& [_, e] : projects_)
      if (e->active) targets.push_back(e->active);
  }
  for (auto& rt : targets) {
    auto n = count_errors(*store_, rt->tenant, rt->project_id);
    if (!n) continue;  // read again next second
    if (*n <= options_.max_errors_per_project) continue;
    const uint64_t excess = *n - options_.max_errors_per_project;
    // The oldest go: records are ordered by key group, then sequence, so
    // the whole project is read and the lowest sequences picked.
    std::vector<std::pair<uint64_t, std::string>> keys;
    auto scanned = store_->scan_prefix(column::errors, project_prefix(rt->tenant, rt->project_id),
                                       [&](std::string_view key, std::string_view) {
                                         keys.emplace_back(error_seq_of(key), std::string(key));
                                         return true;
                                       });
    if (!scanned || keys.empty()) continue;
    const auto removed = std::min<std::size_t>(keys.size(), excess);
    std::partial_sort(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(removed), keys.end());
    commit_batch b;
    std::map<uint32_t, uint64_t> per_group;
    for (std::size_t i = 0; i < removed; ++i) {
      key_reader r(keys[i].second);
      (void)r.u32(), (void)r.u32();
      if (auto group = r.u32()) ++per_group[*group];
      b.erase(column::errors, std::move(keys[i].second));
    }
    for (auto [group, count] : per_group) b.add_count(error_count_key(rt->tenant, rt->project_id, group), minus(count));
    store_->commit(std::move(b), durability_mode::relaxed, [] {});
  }
}

}  // namespace flowstate::engine_detail
