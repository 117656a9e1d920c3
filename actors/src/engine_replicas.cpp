// The engine's side of replicas (docs/cluster.md "Replicas and failover"):
// which ranges this node leads, a follower promoted to leader running the
// range's queue, a replaced leader forgetting the range, and the peer
// questions of the replication protocol (replication.hpp).
#include <cstdio>
#include <set>

#include "engine_impl.hpp"
#include "records.hpp"
#include "replication.hpp"

namespace flowstate::engine_detail {
namespace {

// The lag after which a follower leaves the in-sync set.
constexpr uint32_t replica_lag_limit_ms = 2000;

}  // namespace

void engine_impl::set_led_ranges(std::vector<led_range> ranges, in_sync_writer write) {
  if (!peers_) return;
  std::lock_guard lock(replication_mutex_);
  in_sync_writer_ = std::move(write);
  if (!replicator_) {
    replicator::hooks h;
    h.spans = [this](uint32_t first, uint32_t end) { return group_spans(first, end); };
    h.write_in_sync = [this](uint32_t first, const std::vector<std::string>& in_sync) -> status {
      in_sync_writer w;
      {
        std::lock_guard inner(replication_mutex_);
        w = in_sync_writer_;
      }
      if (!w) return fail("no cluster membership to write the in-sync set with");
      return w(first, in_sync);
    };
    h.owns = [this](uint32_t first, uint32_t end) -> std::string {
      for (uint32_t g = first; g < end && g < key_group_count; ++g) {
        if (leading_[g].load(std::memory_order_acquire)) return "leads key group " + std::to_string(g);
        if (core_.runs_here(g)) return "runs key group " + std::to_string(g);
      }
      std::lock_guard moves(moves_mutex_);
      for (auto* list : {&importing_, &received_})
        for (auto& r : *list)
          if (r.first < end && first < r.end)
            return std::string(list == &importing_ ? "is receiving " : "has received ") + groups_text(r.first, r.end) +
                   " by a move";
      // A transfer's source between the hand-over and its release: it keeps
      // its copy as a follower's once released; the new leader asks again.
      for (auto& r : moving_out_)
        if (!r.transfer_log.empty() && r.first < end && first < r.end)
          return "is handing over " + groups_text(r.first, r.end);
      return "";
    };
    replicator_ =
        std::make_unique<replicator>(*store_, *peers_, options_.node_name, std::move(h), replica_lag_limit_ms);
  }
  std::vector<bool> now(key_group_count, false);
  for (auto& r : ranges)
    for (uint32_t g = r.first; g < r.end && g < key_group_count; ++g) now[g] = true;
  for (uint32_t g = 0; g < key_group_count; ++g) leading_[g].store(now[g], std::memory_order_release);
  {
    std::vector<uint32_t> range(key_group_count, engine_core::not_led);
    for (auto& r : ranges)
      for (uint32_t g = r.first; g < r.end && g < key_group_count; ++g) range[g] = r.first;
    for (uint32_t g = 0; g < key_group_count; ++g) core_.led_range[g].store(range[g], std::memory_order_release);
    core_.tracks_ranges.store(true, std::memory_order_release);
  }
  std::vector<led_range_view> views;
  std::set<uint32_t> handed_over;  // received by a move or a transfer, not taken over by a failover
  for (auto& r : ranges) {
    for (uint32_t g = r.first; g < r.end && g < key_group_count; ++g) now[g] = true;
    // Received by a move (the placement record says where the source's
    // log stood): its followers may keep their copies.
    views.push_back({r.first, r.end, r.epoch, r.followers, r.in_sync, r.min_in_sync, r.adopt_log, r.adopt_index});
    if (!r.adopt_log.empty()) handed_over.insert(r.first);
  }
  // Promoted: a range this node held a follower's copy of and leads now.
  // Its queue entries and outbox came with the copy; they run here now.
  // The copy may be wider than what it leads (the range was split by a
  // move since): only the led part is promoted; the rest of the copy is no
  // longer followed (its leader rebuilds it if it still wants it here).
  std::vector<std::pair<uint32_t, uint32_t>> promoted;
  for (auto& [first, copy] : replicator_->followed()) {
    const uint32_t end = std::min(copy.first, key_group_count);
    bool leads = false;
    for (uint32_t g = first; g < end; ++g) leads = leads || now[g];
    if (!leads) continue;
    for (uint32_t g = first; g < end;) {
      if (!now[g]) {
        ++g;
        continue;
      }
      uint32_t stop = g;
      while (stop < end && now[stop]) ++stop;
      replicator_->promote(g, stop);
      promoted.emplace_back(g, stop);
      g = stop;
    }
  }
  for (auto& [first, _] : promoted) failovers_ += handed_over.count(first) ? 0 : 1;
  for (auto& [first, end] : promoted) {
    std::fprintf(stderr, "flowstate: now leading key groups [%u, %u) (this node held a replica)\n", first, end);
    forget_groups(first, end, false);
    std::lock_guard moves(moves_mutex_);
    received_.push_back({first, end, store_->next_sequence(), now_ms(), false});
    for (uint32_t g = first; g < end; ++g) queue_run_[g] = true;
  }
  // Replaced: groups led here before and not now, other than by a move
  // (which forgot them already): what this node cached of them is stale.
  for (uint32_t g = 0; g < key_group_count;) {
    if (!led_[g] || now[g]) {
      ++g;
      continue;
    }
    uint32_t end = g;
    while (end < key_group_count && led_[end] && !now[end]) ++end;
    forget_groups(g, end, true);
    g = end;
  }
  led_ = std::move(now);
  replicator_->lead(std::move(views));
}

std::string engine_impl::replication_info() const {
  std::string out = "[";
  std::lock_guard lock(replication_mutex_);
  if (!replicator_) return "[]";
  for (auto& p : replicator_->progress()) {
    if (out.size() > 1) out += ",";
    out += "{\"first\":" + std::to_string(p.first) + ",\"end\":" + std::to_string(p.end) + ",\"follower\":";
    http::append_json_string(out, p.follower);
    out += ",\"state\":\"" + p.state + "\",\"acked\":" + std::to_string(p.acked) +
           ",\"last\":" + std::to_string(p.last) + ",\"inSync\":" + (p.in_sync ? "true" : "false") + "}";
  }
  return out + "]";
}

http::response engine_impl::answer_replication(const peer_query& q) {
  std::unique_lock lock(replication_mutex_);
  if (!replicator_)
    return http::problem(409, "replica refused", "rebuild: this node has not joined the cluster's placement yet");
  auto* r = replicator_.get();
  lock.unlock();  // the replicator lives until the engine goes
  return r->answer(q);
}

}  // namespace flowstate::engine_detail
