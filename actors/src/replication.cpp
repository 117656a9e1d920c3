// Replicas of key-group ranges: the leader's log, senders and ack gate, and
// the follower's side (replication.hpp).
#include "replication.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "flowstate/runtime/decimal.hpp"
#include "flowstate/runtime/keys.hpp"
#include "flowstate/runtime/thread_name.hpp"
#include "peers.hpp"
#include "records.hpp"

namespace flowstate::engine_detail {
namespace {

constexpr std::size_t frame_bytes = 1u << 20;
constexpr uint32_t ask_timeout_ms = 10000;
// A follower further behind than this many log entries, and not needed by
// the gate, is rebuilt from a snapshot instead of being kept up from the log.
constexpr std::size_t log_entry_cap = 200000;

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// An op as three frame fields: (column with its kind: "!" erase, "+" count).
void add_op(std::vector<std::string>& args, const commit_batch::op& op) {
  const char* mark = op.kind == commit_batch::op_kind::erase       ? "!"
                     : op.kind == commit_batch::op_kind::add_count ? "+"
                                                                   : "";
  args.push_back(mark + std::string(column_name(op.col)));
  args.push_back(op.key);
  args.push_back(op.value);
}

// Decodes the (column, key, value) fields from `from` into batch, but for
// records of key groups outside [lo, hi) (a frame of a range's log holds
// all of it; the copy may be of a part: the rest of the range was moved).
status read_ops(const std::vector<std::string>& args, std::size_t from, commit_batch& batch, uint32_t lo = 0,
                uint32_t hi = key_group_count) {
  if ((args.size() - from) % 3) return fail("replication: expected (column, key, value) triples");
  for (std::size_t i = from; i < args.size(); i += 3) {
    std::string_view name = args[i];
    const char kind = name.empty() ? ' ' : name[0];
    if (kind == '!' || kind == '+') name.remove_prefix(1);
    auto c = key_group_column(name);
    if (!c) return fail("replication: no column \"" + args[i] + "\" belongs to key groups");
    if (auto g = key_group_of_record(args[i + 1]); !g || *g < lo || *g >= hi) continue;
    if (kind == '!')
      batch.erase(*c, args[i + 1]);
    else if (kind == '+')
      batch.add_count(args[i + 1], decode_count(args[i + 2]));
    else
      batch.put(*c, args[i + 1], args[i + 2]);
  }
  return status::success();
}

std::string follow_key(uint32_t first) { return key_builder().str("replica").u32(first).take(); }

http::response answer_ok(std::string body) {
  http::response r;
  r.status = 200;
  r.body = std::move(body);
  return r;
}

}  // namespace

replicator::replicator(store& db, peers& p, std::string self, hooks h, uint32_t lag_limit_ms)
    : db_(db), peers_(p), self_(std::move(self)), hooks_(std::move(h)), lag_limit_ms_(lag_limit_ms) {
  range_of_group_.assign(key_group_count, -1);
  fenced_.assign(key_group_count, false);
  load_following();
  db_.set_commit_hook([this](const commit_batch& b, uint64_t ticket, durability_mode mode, bool group_end) {
    on_commit(b, ticket, mode, group_end);
  });
  db_.set_ack_gate([this](uint64_t ticket, std::function<void()>& done,
                          std::function<void(const std::string&)>& failed) { return gate(ticket, done, failed); });
}

replicator::~replicator() {
  // From now on no sync commit is acknowledged here if this node led a
  // range with followers: they may not have it (the node is stopping; its
  // successor says what survived). Without such ranges, as before.
  bool replicated = false;
  {
    std::lock_guard lock(mu_);
    replicated = !by_index_.empty() || any_fenced_;
  }
  if (replicated)
    db_.set_ack_gate([](uint64_t, std::function<void()>&, std::function<void(const std::string&)>& failed) {
      if (failed) failed(std::string(outcome_unknown) + "the node is stopping");
      return true;
    });
  else
    db_.set_ack_gate(nullptr);
  db_.set_commit_hook(nullptr);
  std::vector<std::thread> threads;
  std::deque<waiting_ack> waiting;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [_, r] : ranges_) {
      r->gone = true;
      for (auto& [_, s] : r->streams)
        if (s->sender.joinable()) threads.push_back(std::move(s->sender));
    }
    for (auto& t : retired_) threads.push_back(std::move(t));
    retired_.clear();
    waiting.swap(fifo_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
  // Never acknowledged: the node stops (a client's request ends without an
  // answer; its outcome is for the next leader to say).
  for (auto& w : waiting)
    if (w.on_failed) w.on_failed(std::string(outcome_unknown) + "the node is stopping");
}

void replicator::on_commit(const commit_batch& batch, uint64_t ticket, durability_mode mode, bool group_end) {
  std::lock_guard lock(mu_);
  if (by_index_.empty() && !any_fenced_) return;
  append(batch, ticket, mode);
  if (!group_end) return;
  // The group is written and in the logs: a snapshot now holds exactly the
  // log up to each range's last index.
  bool taken = false;
  for (auto& r : by_index_)
    for (auto& [_, s] : r->streams)
      if (s->want_snapshot) {
        s->snapshot = db_.take_snapshot();
        s->snapshot_index = r->last_index;
        s->want_snapshot = false;
        taken = true;
      }
  if (taken) cv_.notify_all();
}

void replicator::append(const commit_batch& batch, uint64_t ticket, durability_mode mode) {
  std::map<int32_t, std::vector<commit_batch::op>> parts;
  for (const auto& op : batch.ops()) {
    if (op.col == column::meta || op.col == column::trace) continue;
    const auto g = key_group_of_record(op.key);
    if (!g || *g >= range_of_group_.size()) continue;
    if (fenced_[*g] && mode == durability_mode::sync) doomed_.insert(ticket);
    const int32_t at = range_of_group_[*g];
    if (at >= 0) parts[at].push_back(op);
  }
  if (parts.empty()) return;
  auto& refs = pending_[ticket];
  for (auto& [at, ops] : parts) {
    auto& r = by_index_[static_cast<std::size_t>(at)];
    const uint64_t index = ++r->last_index;
    r->log.push_back({index, std::move(ops)});
    if (mode == durability_mode::sync) refs.emplace_back(r, index);
  }
  if (refs.empty()) pending_.erase(ticket);
  cv_.notify_all();
}

bool replicator::satisfied(uint64_t ticket) const {
  auto it = pending_.find(ticket);
  if (it == pending_.end()) return true;
  for (auto& [r, index] : it->second) {
    if (r->view.in_sync.size() < r->view.min_in_sync) return false;
    for (auto& name : r->view.in_sync) {
      if (name == self_) continue;
      auto s = r->streams.find(name);
      if (s == r->streams.end() || s->second->building || s->second->acked < index) return false;
    }
    for (auto& [name, s] : r->streams)
      if (s->joining && (s->building || s->acked < index)) return false;
  }
  return true;
}

std::vector<std::function<void()>> replicator::releasable() {
  std::vector<std::function<void()>> out;
  while (!fifo_.empty() && satisfied(fifo_.front().ticket)) {
    pending_.erase(fifo_.front().ticket);
    out.push_back(std::move(fifo_.front().on_durable));
    fifo_.pop_front();
  }
  return out;
}

void replicator::release_now() {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(mu_);
    ready = releasable();
  }
  for (auto& f : ready)
    if (f) f();
}

bool replicator::gate(uint64_t ticket, std::function<void()>& on_durable,
                      std::function<void(const std::string&)>& on_failed) {
  std::vector<std::function<void()>> ready;
  {
    std::unique_lock lock(mu_);
    // A commit to groups this node stopped leading: by the hook's view
    // (doomed), or since the hook (its range went while the commit was
    // written, before it got here: lead() failed the ones waiting then).
    auto p = pending_.find(ticket);
    const bool range_gone = p != pending_.end() &&
                            std::any_of(p->second.begin(), p->second.end(), [](auto& ref) { return ref.first->gone; });
    if (doomed_.erase(ticket) || range_gone) {
      pending_.erase(ticket);
      lock.unlock();
      if (on_failed) on_failed(std::string(outcome_unknown) + "this node no longer leads the key group");
      return true;
    }
    if (fifo_.empty() && satisfied(ticket)) {
      pending_.erase(ticket);
      return false;
    }
    fifo_.push_back({ticket, std::move(on_durable), std::move(on_failed)});
    ready = releasable();
  }
  for (auto& f : ready)
    if (f) f();
  return true;
}

void replicator::trim(range_state& r) {
  uint64_t keep_after = r.last_index;
  for (auto& [_, s] : r.streams) {
    if (!s->building)
      keep_after = std::min(keep_after, s->acked);
    else if (s->snapshot)
      keep_after = std::min(keep_after, s->snapshot_index);
  }
  while (!r.log.empty() && r.log.front().index <= keep_after) r.log.pop_front();
  if (r.log.size() <= log_entry_cap) return;
  // A follower this far behind that the gate does not wait for: rebuilt later.
  for (auto& [name, s] : r.streams)
    if (!s->building && !s->joining &&
        std::find(r.view.in_sync.begin(), r.view.in_sync.end(), name) == r.view.in_sync.end())
      s->building = true;
}

void replicator::lead(std::vector<led_range_view> ranges) {
  std::vector<std::function<void(const std::string&)>> failed;
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(mu_);
    std::map<uint32_t, std::shared_ptr<range_state>> next;
    for (auto& [_, r] : ranges_)
      for (uint32_t g = r->view.first; g < r->view.end && g < key_group_count; ++g) fenced_[g] = true;
    for (auto& v : ranges)
      for (uint32_t g = v.first; g < v.end && g < key_group_count; ++g) fenced_[g] = false;
    any_fenced_ = std::find(fenced_.begin(), fenced_.end(), true) != fenced_.end();
    for (auto& v : ranges) {
      if (v.followers.empty()) continue;
      std::shared_ptr<range_state> r;
      auto it = ranges_.find(v.first);
      // The same range, or what a move left of it (the same epoch, groups
      // within it): its log goes on (a follower applies only the part of a
      // frame within its copy's groups, and splits its copy where the
      // leader's range now begins).
      if (it == ranges_.end() || it->second->view.end < v.end || it->second->view.epoch != v.epoch) {
        it = std::find_if(ranges_.begin(), ranges_.end(), [&](auto& old) {
          auto& w = old.second->view;
          return w.epoch == v.epoch && w.first <= v.first && v.end <= w.end;
        });
      }
      if (it != ranges_.end() && it->second->view.epoch == v.epoch && it->second->view.first <= v.first &&
          v.end <= it->second->view.end) {
        r = it->second;
        ranges_.erase(it);
      } else {
        r = std::make_shared<range_state>();
        char id[17];
        std::snprintf(id, sizeof id, "%016llx",
                      static_cast<unsigned long long>(std::random_device{}()) << 32 ^ std::random_device{}());
        r->log_id = self_ + "/" + id;
      }
      r->view = v;
      // Followers that went: their senders stop.
      for (auto s = r->streams.begin(); s != r->streams.end();) {
        if (std::find(v.followers.begin(), v.followers.end(), s->first) != v.followers.end()) {
          ++s;
          continue;
        }
        s->second->stop = true;
        if (s->second->sender.joinable()) retired_.push_back(std::move(s->second->sender));
        retired_streams_.push_back(std::move(s->second));
        s = r->streams.erase(s);
      }
      for (auto& f : v.followers) {
        if (f == self_ || r->streams.count(f)) continue;
        auto s = std::make_unique<stream>();
        s->follower = f;
        // A range received by a move, in its first streams: the followers
        // may hold what it brought already.
        s->adopting = !v.adopt_log.empty() && r->last_index == 0;
        s->building = !s->adopting;
        auto* raw = s.get();
        r->streams.emplace(f, std::move(s));
        raw->sender = std::thread([this, r, raw] { run_sender(r, raw); });
      }
      next.emplace(v.first, std::move(r));
    }
    // Ranges no longer led here: what waits for their followers fails.
    for (auto& [_, r] : ranges_) {
      r->gone = true;
      for (auto& [_, s] : r->streams) {
        s->stop = true;
        if (s->sender.joinable()) retired_.push_back(std::move(s->sender));
      }
    }
    if (!ranges_.empty()) {
      std::deque<waiting_ack> kept;
      for (auto& w : fifo_) {
        auto p = pending_.find(w.ticket);
        const bool lost = p != pending_.end() &&
                          std::any_of(p->second.begin(), p->second.end(), [](auto& ref) { return ref.first->gone; });
        if (lost) {
          pending_.erase(p);
          failed.push_back(std::move(w.on_failed));
        } else {
          kept.push_back(std::move(w));
        }
      }
      fifo_.swap(kept);
    }
    ranges_ = std::move(next);
    by_index_.clear();
    range_of_group_.assign(key_group_count, -1);
    for (auto& [_, r] : ranges_) {
      const auto at = static_cast<int32_t>(by_index_.size());
      by_index_.push_back(r);
      for (uint32_t g = r->view.first; g < r->view.end && g < key_group_count; ++g) range_of_group_[g] = at;
    }
    ready = releasable();
  }
  cv_.notify_all();
  for (auto& f : failed)
    if (f) f(std::string(outcome_unknown) + "this node no longer leads the key group");
  for (auto& f : ready)
    if (f) f();
}

void replicator::run_sender(std::shared_ptr<range_state> r, stream* s) {
  name_this_thread("fs-replicate");
  auto done = [&] {
    std::lock_guard lock(mu_);
    return stopping_ || r->gone || s->stop;
  };
  auto pause = [&](int ms) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_ || r->gone || s->stop; });
  };
  std::string last_error;
  while (!done()) {
    bool building = false, adopting = false;
    {
      std::lock_guard lock(mu_);
      building = s->building;
      adopting = s->adopting;
    }
    if (adopting) {
      auto adopted = adopt(*r, *s);
      if (adopted) {
        std::lock_guard lock(mu_);
        s->adopting = false;
        s->building = !*adopted;
        continue;
      }
      check_in_sync(*r, *s);  // a follower that stays unreachable leaves the in-sync set
      if (adopted.error() != last_error)
        std::fprintf(stderr, "flowstate: replica of key groups [%u, %u) on %s: %s (retrying)\n", r->view.first,
                     r->view.end, s->follower.c_str(), adopted.error().c_str());
      last_error = adopted.error();
      pause(200);
      continue;
    }
    if (building) {
      if (auto st = build(*r, *s); !st) {
        if (st.error() != last_error)  // said once, not every second
          std::fprintf(stderr, "flowstate: building the replica of key groups [%u, %u) on %s: %s (retrying)\n",
                       r->view.first, r->view.end, s->follower.c_str(), st.error().c_str());
        last_error = st.error();
        pause(1000);
      } else {
        last_error.clear();
      }
      continue;
    }
    auto shipped = ship(*r, *s);
    check_in_sync(*r, *s);
    if (!shipped) {
      // Not answered or refused (the follower may be down): said once.
      if (shipped.error() != last_error)
        std::fprintf(stderr, "flowstate: replica of key groups [%u, %u) on %s: %s (retrying)\n", r->view.first,
                     r->view.end, s->follower.c_str(), shipped.error().c_str());
      last_error = shipped.error();
      pause(200);
      continue;
    }
    last_error.clear();
    if (!*shipped) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(250),
                   [&] { return stopping_ || r->gone || s->stop || s->building || r->last_index > s->acked; });
    }
  }
}

status replicator::build(range_state& r, stream& s) {
  // The frames of this log carry its identity with the epoch: a copy made
  // from another log of the same epoch (another leader, or this one before
  // a restart) cannot be continued by it.
  // The range's bounds as they are now (lead() may shrink it meanwhile: the
  // copy is then not made ready, and built again).
  uint32_t v_first = 0, v_end = 0;
  uint64_t v_epoch = 0;
  {
    std::lock_guard lock(mu_);
    v_first = r.view.first;
    v_end = r.view.end;
    v_epoch = r.view.epoch;
  }
  const auto first = std::to_string(v_first), epoch = std::to_string(v_epoch) + "@" + r.log_id;
  auto ask = [&](peer_query q) -> status {
    auto a = peers_.ask(s.follower, q, ask_timeout_ms);
    if (!a) return fail(a.error());
    if (a->status >= 300) return fail("node " + s.follower + " answered " + std::to_string(a->status) + ": " + a->body);
    return status::success();
  };
  // Its copy is erased below: first it leaves the in-sync set in etcd, or
  // a failover meanwhile could promote a follower holding half a copy.
  std::vector<std::string> without;
  bool listed = false;
  {
    std::lock_guard lock(mu_);
    listed = std::find(r.view.in_sync.begin(), r.view.in_sync.end(), s.follower) != r.view.in_sync.end();
    without = r.view.in_sync;
    std::erase(without, s.follower);
    s.joining = false;
  }
  if (listed) {
    if (auto st = hooks_.write_in_sync(r.view.first, without); !st)
      return fail("taking it out of the in-sync set before rebuilding its copy: " + st.error());
    std::fprintf(stderr, "flowstate: key groups [%u, %u): %s left the in-sync set (its copy is rebuilt)\n",
                 r.view.first, r.view.end, s.follower.c_str());
    ++in_sync_changes_;
    {
      std::lock_guard lock(mu_);
      r.view.in_sync = without;
    }
    release_now();
  }
  if (auto st = ask({"replica-begin", {first, std::to_string(v_end), std::to_string(v_epoch), r.log_id}}); !st)
    return st;
  {
    std::lock_guard lock(mu_);
    s.snapshot = nullptr;
    s.want_snapshot = true;
  }
  // The hook takes the snapshot at the start of the next group of commits.
  {
    commit_batch marker;
    marker.put(column::meta, key_builder().str("replica-snapshot").u32(r.view.first).take(), s.follower);
    db_.commit(std::move(marker), durability_mode::relaxed, [] {});
  }
  std::shared_ptr<const store::snapshot> snap;
  uint64_t index = 0;
  {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return stopping_ || r.gone || s.stop || s.snapshot; });
    if (!s.snapshot) return fail("no snapshot was taken");
    snap = s.snapshot;
    index = s.snapshot_index;
  }
  peer_query chunk{"replica-import", {first, epoch}};
  std::size_t bytes = 0;
  status inner = status::success();
  auto flush = [&]() -> status {
    if (chunk.args.size() <= 2) return status::success();
    auto st = ask(chunk);
    chunk.args.resize(2);
    bytes = 0;
    return st;
  };
  for (auto& [begin, stop] : hooks_.spans(v_first, v_end))
    for (auto c : key_group_columns) {
      auto st = db_.scan_range(c, begin, stop, *snap, [&](std::string_view key, std::string_view value) {
        chunk.args.emplace_back(column_name(c));
        chunk.args.emplace_back(key);
        chunk.args.emplace_back(value);
        bytes += key.size() + value.size() + 16;
        if (bytes >= frame_bytes) inner = flush();
        return static_cast<bool>(inner);
      });
      if (!st) return st;
      if (!inner) return inner;
    }
  if (auto st = flush(); !st) return st;
  snap.reset();
  {
    std::lock_guard lock(mu_);
    if (r.view.first != v_first || r.view.end != v_end || r.view.epoch != v_epoch)
      return fail("the range changed while its copy was built; building it again");
  }
  if (auto st = ask({"replica-ready", {first, epoch, std::to_string(index), std::to_string(db_.next_sequence())}}); !st)
    return st;
  std::lock_guard lock(mu_);
  s.snapshot = nullptr;
  s.acked = index;
  s.building = false;
  trim(r);
  return status::success();
}

result<bool> replicator::adopt(range_state& r, stream& s) {
  std::string old_log;
  uint64_t old_index = 0;
  {
    std::lock_guard lock(mu_);
    old_log = r.view.adopt_log;
    old_index = r.view.adopt_index;
  }
  auto a = peers_.ask(s.follower,
                      {"replica-adopt",
                       {std::to_string(r.view.first), std::to_string(r.view.end), std::to_string(r.view.epoch),
                        r.log_id, old_log, std::to_string(old_index)}},
                      ask_timeout_ms);
  if (!a) return fail(a.error());
  if (a->status == 200) {
    std::fprintf(stderr, "flowstate: key groups [%u, %u): %s kept its copy (it had what the move brought)\n",
                 r.view.first, r.view.end, s.follower.c_str());
    return true;
  }
  // Fenced: it still leads the groups or hands them over (a transfer's
  // source, not yet released): asked again. Otherwise its copy cannot
  // continue: rebuilt.
  if (a->status == 409 && a->body.find("fenced:") != std::string::npos)
    return fail("node " + s.follower + " still holds the groups: " + a->body);
  if (a->status == 409) return false;
  return fail("node " + s.follower + " answered " + std::to_string(a->status) + ": " + a->body);
}

std::optional<log_point> replicator::hold_point(uint32_t group) const {
  std::lock_guard lock(mu_);
  if (group >= range_of_group_.size() || range_of_group_[group] < 0) return std::nullopt;
  auto& r = by_index_[static_cast<std::size_t>(range_of_group_[group])];
  return log_point{r->log_id, r->last_index};
}

void replicator::wait_acked(uint32_t group, uint64_t index, int timeout_ms) {
  std::unique_lock lock(mu_);
  if (group >= range_of_group_.size() || range_of_group_[group] < 0) return;
  auto r = by_index_[static_cast<std::size_t>(range_of_group_[group])];
  cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    if (stopping_ || r->gone) return true;
    for (auto& [_, s] : r->streams)
      if (s->building || s->adopting || s->acked < index) return false;
    return true;
  });
}

bool replicator::wait_follower(uint32_t group, const std::string& follower, uint64_t index, int timeout_ms) {
  std::unique_lock lock(mu_);
  if (group >= range_of_group_.size() || range_of_group_[group] < 0) return false;
  auto r = by_index_[static_cast<std::size_t>(range_of_group_[group])];
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                      [&] {
                        if (stopping_ || r->gone) return true;
                        auto s = r->streams.find(follower);
                        return s != r->streams.end() && !s->second->building && !s->second->adopting &&
                               s->second->acked >= index;
                      }) &&
         !stopping_ && !r->gone;
}

result<bool> replicator::ship(range_state& r, stream& s) {
  peer_query q{"replicate", {std::to_string(r.view.first), std::to_string(r.view.epoch) + "@" + r.log_id, "", "", ""}};
  uint64_t from = 0, to = 0;
  {
    std::lock_guard lock(mu_);
    std::size_t bytes = 0;
    for (auto& e : r.log) {
      if (e.index <= s.acked) continue;
      if (from == 0) from = e.index;
      if (e.index != (to ? to + 1 : from)) break;
      to = e.index;
      for (auto& op : e.ops) {
        add_op(q.args, op);
        bytes += op.key.size() + op.value.size() + 16;
      }
      if (bytes >= frame_bytes) break;
    }
    if (from == 0) {
      if (s.acked < r.last_index) {
        // What the follower lacks is no longer in the log.
        s.building = true;
        return false;
      }
      return false;
    }
    if (from != s.acked + 1) {
      s.building = true;
      return false;
    }
  }
  q.args[2] = std::to_string(from);
  q.args[3] = std::to_string(to);
  q.args[4] = std::to_string(db_.next_sequence());
  auto a = peers_.ask(s.follower, q, ask_timeout_ms);
  if (!a) return fail(a.error());
  if (a->status == 409) {
    std::lock_guard lock(mu_);
    if (auto at = a->body.find("\"detail\":\"at "); at != std::string::npos) {
      auto n = parse_decimal<uint64_t>(a->body.substr(at + 14, a->body.find('"', at + 14) - at - 14));
      if (n && *n >= s.acked && *n <= r.last_index) {
        s.acked = *n;
        return true;
      }
      s.building = true;  // its copy is not a prefix of this log
      return fail("node " + s.follower + "'s copy ends outside this log: rebuilt");
    }
    if (a->body.find("rebuild:") != std::string::npos) s.building = true;
    return fail("node " + s.follower + " refused: " + a->body);
  }
  if (a->status >= 300) return fail("node " + s.follower + " answered " + std::to_string(a->status) + ": " + a->body);
  const uint64_t applied = parse_decimal<uint64_t>(a->body).value_or(0);
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(mu_);
    s.acked = std::max(s.acked, applied);
    trim(r);
    ready = releasable();
  }
  cv_.notify_all();  // wait_acked()
  for (auto& f : ready)
    if (f) f();
  return true;
}

void replicator::check_in_sync(range_state& r, stream& s) {
  std::vector<std::string> want;
  bool adding = false;
  {
    std::lock_guard lock(mu_);
    const bool listed = std::find(r.view.in_sync.begin(), r.view.in_sync.end(), s.follower) != r.view.in_sync.end();
    const int64_t now = steady_ms();
    // Caught up: it has everything the leader had at the last check (under
    // steady load a follower is never level with the newest entry).
    if (!s.building && s.acked >= s.mark) {
      s.caught_at_ms = now;
      s.mark = r.last_index;
    }
    if (s.caught_at_ms == 0) s.caught_at_ms = now;
    const bool lagging = s.building || now - s.caught_at_ms > lag_limit_ms_;
    if (listed) {
      s.joining = false;
      if (!lagging) return;
      want = r.view.in_sync;
      std::erase(want, s.follower);
    } else if (s.joining && lagging) {
      s.joining = false;  // it fell behind while joining: try again later
      return;
    } else if (!s.joining) {
      if (lagging) return;
      s.joining = true;  // the gate waits for it from now on
      s.join_index = r.last_index;
      return;
    } else {
      if (s.acked < s.join_index) return;
      want = r.view.in_sync;
      want.push_back(s.follower);
      adding = true;
    }
  }
  auto st = hooks_.write_in_sync(r.view.first, want);
  if (!st) {
    std::fprintf(stderr, "flowstate: in-sync set of key groups [%u, %u): %s\n", r.view.first, r.view.end,
                 st.error().c_str());
    return;
  }
  std::fprintf(stderr, "flowstate: key groups [%u, %u): %s %s the in-sync set\n", r.view.first, r.view.end,
               s.follower.c_str(), adding ? "joined" : "left");
  ++in_sync_changes_;
  {
    std::lock_guard lock(mu_);
    r.view.in_sync = want;
    if (adding) s.joining = false;
  }
  release_now();
}

std::vector<replica_progress> replicator::progress() const {
  std::vector<replica_progress> out;
  std::lock_guard lock(mu_);
  for (auto& [_, r] : ranges_)
    for (auto& [name, s] : r->streams) {
      replica_progress p;
      p.first = r->view.first;
      p.end = r->view.end;
      p.follower = name;
      p.state = s->building ? "building" : s->acked < r->last_index ? "behind" : "streaming";
      p.acked = s->acked;
      p.last = r->last_index;
      p.in_sync = std::find(r->view.in_sync.begin(), r->view.in_sync.end(), name) != r->view.in_sync.end();
      out.push_back(std::move(p));
    }
  return out;
}

// ---- follower side ----

void replicator::load_following() {
  auto prefix = key_builder().str("replica").take();
  (void)db_.scan_prefix(column::meta, prefix, [&](std::string_view key, std::string_view value) {
    key_reader kr(key);
    (void)kr.str();
    auto first = kr.u32();
    if (!first) return true;
    // "end epoch applied ready leader"
    follow_state f;
    unsigned long long end = 0, epoch = 0, applied = 0;
    int ready = 0;
    char leader[128] = {0};
    std::string text(value);
    if (std::sscanf(text.c_str(), "%llu %llu %llu %d %127s", &end, &epoch, &applied, &ready, leader) < 4) return true;
    f.end = static_cast<uint32_t>(end);
    f.epoch = epoch;
    f.applied = applied;
    f.ready = ready != 0;
    f.leader = leader;
    following_[*first] = std::move(f);
    return true;
  });
}

status replicator::save_following(uint32_t first, const follow_state& f, commit_batch& batch) {
  batch.put(column::meta, follow_key(first),
            std::to_string(f.end) + " " + std::to_string(f.epoch) + " " + std::to_string(f.applied) + " " +
                (f.ready ? "1" : "0") + " " + f.leader);
  return status::success();
}

std::vector<std::shared_ptr<std::mutex>> replicator::carve(uint32_t first, uint32_t end, commit_batch& batch) {
  std::vector<std::shared_ptr<std::mutex>> touched;
  std::vector<std::pair<uint32_t, follow_state>> overlapping;
  for (auto& [f, st] : following_)
    if (f < end && first < st.end) overlapping.emplace_back(f, st);
  for (auto& [f, st] : overlapping) {
    touched.push_back(st.apply_mu);
    following_.erase(f);
    batch.erase(column::meta, follow_key(f));
    if (f < first) {  // the part before keeps its key: its leader's frames still find it
      auto left = st;
      left.end = first;
      following_[f] = left;
      (void)save_following(f, left, batch);
    }
    if (st.end > end) {  // the part after: a copy no frame continues, that a failover may promote
      auto right = st;
      following_[end] = right;
      (void)save_following(end, right, batch);
    }
  }
  return touched;
}

replicator::held_locks replicator::lock_copies(uint32_t first, uint32_t end) {
  std::vector<std::shared_ptr<std::mutex>> touched;
  {
    std::lock_guard lock(follow_mu_);
    for (auto& [f, st] : following_)
      if (f < end && first < st.end) touched.push_back(st.apply_mu);
  }
  return lock_in_order(std::move(touched));
}

replicator::held_locks replicator::lock_in_order(std::vector<std::shared_ptr<std::mutex>> mutexes) {
  // In address order: two callers never wait for each other's.
  std::sort(mutexes.begin(), mutexes.end());
  mutexes.erase(std::unique(mutexes.begin(), mutexes.end()), mutexes.end());
  held_locks held;
  held.mutexes = std::move(mutexes);
  for (auto& m : held.mutexes) held.locks.emplace_back(*m);
  return held;
}

status replicator::erase_records(uint32_t first, uint32_t end, commit_batch& batch) {
  for (auto& [begin, stop] : hooks_.spans(first, end))
    for (auto c : key_group_columns) {
      auto st = db_.scan_range(c, begin, stop, [&](std::string_view key, std::string_view) {
        batch.erase(c, std::string(key));
        return true;
      });
      if (!st) return st;
    }
  return status::success();
}

status replicator::drop_copies(uint32_t first, uint32_t end) {
  auto locks = lock_copies(first, end);
  commit_batch b;
  std::vector<std::pair<uint32_t, uint32_t>> dropped;
  {
    std::lock_guard lock(follow_mu_);
    for (auto it = following_.begin(); it != following_.end();) {
      if (!(it->first < end && first < it->second.end)) {
        ++it;
        continue;
      }
      dropped.emplace_back(it->first, it->second.end);
      b.erase(column::meta, follow_key(it->first));
      it = following_.erase(it);
    }
  }
  for (auto& [a, z] : dropped)
    if (auto st = erase_records(a, z, b); !st) return st;
  if (b.empty()) return status::success();
  return db_.write_now(std::move(b), true);
}

void replicator::hold_copy(uint32_t first, uint32_t end, const std::string& log, uint64_t applied) {
  commit_batch b;
  {
    std::lock_guard lock(follow_mu_);
    (void)carve(first, end, b);
    auto& f = following_[first];
    f.end = end;
    f.epoch = 0;  // no frame of its own log comes: only a replica-adopt
    f.applied = applied;
    f.ready = true;
    f.leader = log;
    (void)save_following(first, f, b);
  }
  (void)db_.write_now(std::move(b), true);
}

void replicator::promote(uint32_t first, uint32_t end) {
  auto locks = lock_copies(first, end);
  commit_batch b;
  {
    std::lock_guard lock(follow_mu_);
    (void)carve(first, end, b);
  }
  if (!b.empty()) (void)db_.write_now(std::move(b), true);
}

std::map<uint32_t, std::pair<uint32_t, uint64_t>> replicator::followed() const {
  std::map<uint32_t, std::pair<uint32_t, uint64_t>> out;
  std::lock_guard lock(follow_mu_);
  for (auto& [first, f] : following_) out[first] = {f.end, f.epoch};
  return out;
}

void replicator::stop_following(uint32_t first) {
  {
    std::lock_guard lock(follow_mu_);
    following_.erase(first);
  }
  commit_batch b;
  b.erase(column::meta, follow_key(first));
  (void)db_.write_now(std::move(b), true);
}

http::response replicator::answer(const peer_query& q) {
  auto number = [&](std::size_t i) { return i < q.args.size() ? parse_decimal<uint64_t>(q.args[i]) : std::nullopt; };
  auto refuse = [](std::string why) { return http::problem(409, "replica refused", std::move(why)); };
  auto first64 = number(0);
  if (!first64 || *first64 >= key_group_count) return http::problem(400, "bad replication frame", "no key group");
  const auto first = static_cast<uint32_t>(*first64);
  {
    // A replica-begin names its end; other frames continue a copy whose end
    // the follower knows.
    uint32_t end = first + 1;
    if (q.kind == "replica-begin" || q.kind == "replica-adopt") {
      if (auto e = number(1); e && *e > first && *e <= key_group_count) end = static_cast<uint32_t>(*e);
    } else {
      std::lock_guard lock(follow_mu_);
      if (auto it = following_.find(first); it != following_.end()) end = it->second.end;
    }
    if (auto why = hooks_.owns(first, end); !why.empty())
      return refuse("fenced: node " + self_ + " " + why + " (key groups of [" + std::to_string(first) + ", " +
                    std::to_string(end) + "))");
  }

  if (q.kind == "replica-begin") {
    auto end = number(1), epoch = number(2);
    if (!end || !epoch || q.args.size() != 4 || *end <= first || *end > key_group_count)
      return http::problem(400, "bad replication frame", "replica-begin: first, end, epoch, log");
    std::shared_ptr<std::mutex> apply;
    // The apply locks of every copy this one overlaps, and its own: a
    // frame still being applied to one of them finishes before the erase.
    std::vector<std::shared_ptr<std::mutex>> applying;
    commit_batch erase;
    {
      std::lock_guard lock(follow_mu_);
      for (auto& [f, st] : following_)
        if (f < *end && first < st.end && st.epoch > *epoch)
          return refuse("fenced: epoch " + std::to_string(*epoch) + " is older than " + std::to_string(st.epoch));
      // Copies overlapping this one give it their part (a copy split by a
      // move keeps the rest: a failover may promote it, or its leader go on).
      std::shared_ptr<std::mutex> reused;
      if (auto it = following_.find(first); it != following_.end()) reused = it->second.apply_mu;
      applying = carve(first, static_cast<uint32_t>(*end), erase);
      auto& f = following_[first];
      f.end = static_cast<uint32_t>(*end);
      f.epoch = *epoch;
      f.applied = 0;
      f.ready = false;
      f.leader = q.args[3];
      if (reused) f.apply_mu = reused;
      apply = f.apply_mu;
      applying.push_back(apply);
    }
    auto locks = lock_in_order(std::move(applying));
    if (auto st = erase_records(first, static_cast<uint32_t>(*end), erase); !st)
      return http::problem(500, "cannot read", st.error());
    {
      std::lock_guard lock(follow_mu_);
      (void)save_following(first, following_[first], erase);
    }
    if (auto st = db_.write_now(std::move(erase), true); !st) return http::problem(500, "cannot write", st.error());
    return answer_ok("");
  }

  if (q.kind == "replica-adopt") {
    // A node that received [first, end) by a move asks: does the copy here
    // hold every entry of the log the move's source had up to the hold
    // (then it holds what the move brought), so it continues from the new
    // leader's log?
    auto end = number(1), epoch = number(2), index = number(5);
    if (!end || !epoch || !index || q.args.size() != 6 || *end <= first || *end > key_group_count)
      return http::problem(400, "bad replication frame", "replica-adopt: first, end, epoch, log, old log, old index");
    const auto until = static_cast<uint32_t>(*end);
    std::shared_ptr<std::mutex> holder;
    auto suitable = [&]() -> std::optional<std::string> {
      for (auto& [f, st] : following_)
        if (f < until && first < st.end && st.epoch > *epoch)
          return "fenced: epoch " + std::to_string(*epoch) + " is older than " + std::to_string(st.epoch);
      for (auto& [f, st] : following_) {
        if (f > first || st.end < until) continue;
        if (!st.ready || st.leader != q.args[4] || st.applied < *index)
          return "rebuild: the copy here is not of that log up to " + std::to_string(*index);
        holder = st.apply_mu;
        return std::nullopt;
      }
      return "rebuild: no copy here holds key groups [" + std::to_string(first) + ", " + std::to_string(until) + ")";
    };
    {
      std::lock_guard lock(follow_mu_);
      if (auto why = suitable()) return refuse(*why);
    }
    const auto locked = holder;
    std::lock_guard applying(*locked);
    commit_batch batch;
    {
      std::lock_guard lock(follow_mu_);
      if (auto why = suitable()) return refuse(*why);
      if (holder != locked) return refuse("rebuild: the copy here changed meanwhile");
      (void)carve(first, until, batch);
      auto& f = following_[first];
      f.end = until;
      f.epoch = *epoch;
      f.applied = 0;
      f.ready = true;
      f.leader = q.args[3];
      (void)save_following(first, f, batch);
    }
    if (auto st = db_.write_now(std::move(batch), true); !st) return http::problem(500, "cannot write", st.error());
    return answer_ok("0");
  }

  // "EPOCH@LOG": the leader's epoch and the identity of its log.
  const auto at = q.args.size() > 1 ? q.args[1].find('@') : std::string::npos;
  auto epoch = at == std::string::npos ? std::nullopt : parse_decimal<uint64_t>(q.args[1].substr(0, at));
  if (!epoch) return http::problem(400, "bad replication frame", "no epoch@log");
  const std::string log = q.args[1].substr(at + 1);
  std::shared_ptr<std::mutex> apply;
  {
    std::lock_guard lock(follow_mu_);
    auto it = following_.find(first);
    if (it == following_.end()) {
      // The leader kept part of its range after a move and goes on with
      // the same log from that part's first group: the copy holding it is
      // split there (both parts follow the log; each applies its groups).
      for (auto& [f, st] : following_)
        if (f < first && first < st.end && st.epoch == *epoch && st.leader == log && st.ready) {
          auto right = st;
          right.apply_mu = std::make_shared<std::mutex>();
          st.end = first;
          commit_batch b;
          (void)save_following(f, st, b);
          (void)save_following(first, right, b);
          if (auto w = db_.write_now(std::move(b), true); !w) return http::problem(500, "cannot write", w.error());
          it = following_.emplace(first, std::move(right)).first;
          break;
        }
    }
    // The same log lives on here under another first group (a move split
    // the copy, and the leader has not seen its range change yet): asked
    // again shortly, not rebuilt.
    auto log_lives_on = [&] {
      for (auto& [f, st] : following_)
        if (f != first && st.leader == log && st.epoch == *epoch) return true;
      return false;
    };
    if (it == following_.end() || (it->second.leader != log && it->second.epoch == *epoch)) {
      if (log_lives_on())
        return refuse(
            "moved: the copy of this log begins at another key group now; ask again with the range's "
            "new bounds");
    }
    if (it == following_.end()) return refuse("rebuild: no copy of the range here");
    if (*epoch < it->second.epoch)
      return refuse("fenced: epoch " + std::to_string(*epoch) + " is older than " + std::to_string(it->second.epoch));
    if (*epoch > it->second.epoch) return refuse("rebuild: the copy here is of an older epoch");
    if (log != it->second.leader) return refuse("rebuild: the copy here was made from another log");
    apply = it->second.apply_mu;
  }
  std::lock_guard applying(*apply);
  auto current = [&]() -> follow_state* {
    auto it = following_.find(first);
    return it == following_.end() || it->second.epoch != *epoch || it->second.leader != log ? nullptr : &it->second;
  };

  if (q.kind == "replica-import") {
    commit_batch batch;
    if (auto st = read_ops(q.args, 2, batch); !st) return http::problem(400, "bad replication frame", st.error());
    {
      std::lock_guard lock(follow_mu_);
      auto* f = current();
      if (!f || f->ready) return refuse("rebuild: not building");
    }
    if (auto st = db_.write_now(std::move(batch), false); !st) return http::problem(500, "cannot write", st.error());
    return answer_ok("");
  }
  if (q.kind == "replica-ready") {
    auto index = number(2), seq = number(3);
    if (!index || !seq) return http::problem(400, "bad replication frame", "replica-ready: first, epoch, index, seq");
    db_.raise_sequence(*seq);
    commit_batch batch;
    {
      std::lock_guard lock(follow_mu_);
      auto* f = current();
      if (!f) return refuse("rebuild: no copy of the range here");
      f->applied = *index;
      f->ready = true;
      (void)save_following(first, *f, batch);
    }
    // Synced: the imported records (written unsynced) are durable with it.
    if (auto st = db_.write_now(std::move(batch), true); !st) return http::problem(500, "cannot write", st.error());
    return answer_ok(std::to_string(*index));
  }
  if (q.kind == "replicate") {
    auto from = number(2), to = number(3), seq = number(4);
    if (!from || !to || !seq || *from > *to)
      return http::problem(400, "bad replication frame", "replicate: first, epoch, from, to, seq, ops");
    uint64_t applied = 0;
    uint32_t copy_end = 0;
    follow_state next;
    {
      std::lock_guard lock(follow_mu_);
      auto* f = current();
      if (!f || !f->ready) return refuse("rebuild: no complete copy here");
      if (*to <= f->applied) return answer_ok(std::to_string(f->applied));  // a repeat
      // Its answer to an earlier frame was lost: the leader goes on from here.
      if (*from <= f->applied) return refuse("at " + std::to_string(f->applied));
      if (*from != f->applied + 1)
        return refuse("rebuild: the copy here ends at " + std::to_string(f->applied) + ", the frame starts at " +
                      std::to_string(*from));
      next = *f;
      next.applied = *to;
      copy_end = f->end;
      applied = *to;
    }
    commit_batch batch;
    if (auto st = read_ops(q.args, 5, batch, first, copy_end); !st)
      return http::problem(400, "bad replication frame", st.error());
    (void)save_following(first, next, batch);
    db_.raise_sequence(*seq);
    if (auto st = db_.write_now(std::move(batch), true); !st) return http::problem(500, "cannot write", st.error());
    {
      std::lock_guard lock(follow_mu_);
      if (auto* f = current()) f->applied = std::max(f->applied, applied);
    }
    return answer_ok(std::to_string(applied));
  }
  return http::problem(400, "bad replication frame", "unknown kind " + q.kind);
}

}  // namespace flowstate::engine_detail
