// The target's side of a move (engine_migrate.cpp has the source's): the
// records arrive between import-begin and import-end, and the groups are
// this node's once the placement names it. Meanwhile a leader's replication
// frames for them are refused (what is here is the move's, not a replica).
//
// The move's end or abort can fail to arrive (the controller or the source
// died, or the link was cut at that moment). A target does not wait for it
// forever: once an import has been quiet for a while it asks the node its
// placement names for the groups whether that node is still moving them;
// "idle" means the move is over without this node, so its copy is dropped
// and a leader may rebuild it as a replica again.
#include <cstdio>
#include <mutex>

#include "engine_impl.hpp"
#include "peers.hpp"
#include "records.hpp"
#include "replication.hpp"

namespace flowstate::engine_detail {
namespace {

// An import older than this, whose groups the placement gives to another
// node, is checked with that node (then again after as long).
constexpr int64_t import_check_ms = 10000;
constexpr uint32_t status_timeout_ms = 5000;

}  // namespace

status engine_impl::import_begin(uint32_t first, uint32_t end) {
  std::lock_guard steps(import_steps_mutex_);
  {
    // From now on a leader's replication frames for these groups are
    // refused (the replicator asks owns()): what is here is the move's.
    std::lock_guard lock(moves_mutex_);
    std::erase_if(received_, [&](const moved_range& r) { return r.first < end && first < r.end; });
    std::erase_if(importing_, [&](const moved_range& r) { return r.first < end && first < r.end; });
    importing_.push_back({first, end, 0, now_ms(), false});
    importing_.back().serial = ++import_serial_;
  }
  // A follower's copy overlapping the groups is given up whole (the
  // controller took this node out of that range's followers before the
  // move): what the move brings replaces it.
  replicator* rep = nullptr;
  {
    std::lock_guard lock(replication_mutex_);
    rep = replicator_.get();  // lives until the engine goes
  }
  if (rep)
    if (auto st = rep->drop_copies(first, end); !st) return st;
  return erase_spans(first, end);
}

status engine_impl::import_records(const std::vector<std::string>& args) {
  if (args.size() % 3) return fail("import: expected (column, key, value) triples");
  commit_batch batch;
  for (std::size_t i = 0; i < args.size(); i += 3) {
    const bool erase = !args[i].empty() && args[i][0] == '!';
    auto c = key_group_column(std::string_view(args[i]).substr(erase ? 1 : 0));
    if (!c) return fail("import: no column \"" + args[i] + "\" moves with key groups");
    if (erase)
      batch.erase(*c, args[i + 1]);
    else
      batch.put(*c, args[i + 1], args[i + 2]);
  }
  std::lock_guard steps(import_steps_mutex_);
  return store_->write_now(std::move(batch), false);
}

status engine_impl::import_end(uint32_t first, uint32_t end, uint64_t seq) {
  std::lock_guard steps(import_steps_mutex_);
  store_->raise_sequence(seq);
  commit_batch marker;
  marker.put(column::meta, meta_key("received", first), std::to_string(seq));
  if (auto st = store_->write_now(std::move(marker), true); !st) return st;
  forget_groups(first, end, false);
  std::lock_guard lock(moves_mutex_);
  std::erase_if(importing_, [&](const moved_range& r) { return r.first == first && r.end == end; });
  received_.push_back({first, end, seq, now_ms(), false});
  received_.back().serial = ++import_serial_;
  // Their queue runs when the placement gives them here (received_), not as
  // a first run since the start.
  for (uint32_t g = first; g < end; ++g) queue_run_[g] = true;
  return status::success();
}

status engine_impl::import_abort(uint32_t first, uint32_t end) {
  std::lock_guard steps(import_steps_mutex_);
  {
    std::lock_guard lock(moves_mutex_);
    std::erase_if(received_, [&](const moved_range& r) { return r.first == first && r.end == end; });
    std::erase_if(importing_, [&](const moved_range& r) { return r.first == first && r.end == end; });
  }
  return erase_spans(first, end);
}

std::string engine_impl::move_status(uint32_t first, uint32_t end) {
  std::lock_guard lock(moves_mutex_);
  for (auto* list : {&moving_out_, &released_})
    for (auto& r : *list)
      if (r.first < end && first < r.end) return "moving";
  for (uint32_t g = first; g < end; ++g)
    if (!core_.runs_here(g)) return "elsewhere";
  return "idle";
}

void engine_impl::settle_stale_imports() {
  if (!peers_) return;
  auto gate = core_.current_gate();
  if (!gate) return;
  struct check {
    uint32_t first, end;
    uint64_t serial;
    std::string owner;
  };
  std::vector<check> checks;
  {
    std::lock_guard lock(moves_mutex_);
    const int64_t now = now_ms();
    for (auto* list : {&importing_, &received_})
      for (auto& r : *list) {
        if (now - std::max(r.since_ms, r.checked_ms) < import_check_ms) continue;
        auto d = (*gate)(r.first);
        if (d.refuse || d.forward_to.empty()) continue;  // no owner known, or here (received_ is served)
        r.checked_ms = now;
        checks.push_back({r.first, r.end, r.serial, d.forward_to});
      }
  }
  if (checks.empty()) return;
  run_job([this, checks = std::move(checks)] {
    for (auto& c : checks) {
      auto a =
          peers_->ask(c.owner, {"move-status", {std::to_string(c.first), std::to_string(c.end)}}, status_timeout_ms);
      if (!a || a->status != 200 || a->body != "idle") continue;
      // The owner runs the groups and moves them nowhere: this import's
      // end or abort was lost. Dropped unless a new import began meanwhile.
      std::lock_guard steps(import_steps_mutex_);
      bool dropped = false;
      {
        std::lock_guard lock(moves_mutex_);
        for (auto* list : {&importing_, &received_})
          dropped |= std::erase_if(*list, [&](const moved_range& r) { return r.serial == c.serial; }) > 0;
      }
      if (!dropped) continue;
      std::fprintf(stderr,
                   "flowstate: the move of %s to this node ended without it (node %s serves them and moves them "
                   "nowhere); deleting what it had received\n",
                   groups_text(c.first, c.end).c_str(), c.owner.c_str());
      if (auto st = erase_spans(c.first, c.end); !st)
        std::fprintf(stderr, "flowstate: deleting %s: %s\n", groups_text(c.first, c.end).c_str(), st.error().c_str());
    }
  });
}

}  // namespace flowstate::engine_detail
