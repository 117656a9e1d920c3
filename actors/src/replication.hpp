#pragma once
// Replicas of key-group ranges (docs/cluster.md "Replicas and failover").
//
// Leader side: the store's commit hook (writer thread) splits every commit
// into the ranges this node leads that have followers and appends each
// range's part to that range's log under the next index; one sender thread
// per (range, follower) ships the log in order ("replicate" frames) and
// learns how far the follower has it durable. The store's ack gate holds
// every `sync` acknowledgement, in ticket order, until each member of the
// range's in-sync set (as etcd has it, plus a follower about to join it)
// has the commit durable. A follower that has no copy, or whose copy
// cannot continue the log, is rebuilt: a snapshot taken inside the commit
// hook (so the log continues exactly where the snapshot ends), copied
// across, then the log from there. A follower that stays behind longer
// than the lag limit is taken out of the in-sync set by an etcd
// transaction on the range's record; one that has caught up is put in.
//
// Follower side: "replica-begin" (erase the copy, take the leader's epoch),
// "replica-import" (snapshot records), "replica-ready" (the log index the
// snapshot ends at), "replicate" (log entries, applied with a synced
// write). A frame from an epoch older than the follower's is refused: a
// leader that was replaced can no longer get acknowledgements.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/store.hpp"
#include "peer_frames.hpp"

namespace flowstate::engine_detail {

class peers;

// A range this node leads, as the placement says.
struct led_range_view {
  uint32_t first = 0, end = 0;
  uint64_t epoch = 0;
  std::vector<std::string> followers;  // node names
  std::vector<std::string> in_sync;    // node names, the leader included
  uint32_t min_in_sync = 1;
  // A range this node received by a move from a leader whose log was
  // `adopt_log`: a follower whose copy has that log's entries up to
  // `adopt_index` holds what the move brought, and continues from this
  // node's log without being rebuilt ("replica-adopt").
  std::string adopt_log;
  uint64_t adopt_index = 0;
};

// Where a led range's log stood when a move held some of its groups.
struct log_point {
  std::string log;
  uint64_t index = 0;
};

// One follower's position, for `cluster status` and /metrics.
struct replica_progress {
  uint32_t first = 0, end = 0;
  std::string follower;
  std::string state;  // "building", "streaming", "waiting"
  uint64_t acked = 0, last = 0;
  bool in_sync = false;
};

class replicator {
 public:
  struct hooks {
    // [begin, end) key spans of every project for groups [first, end).
    std::function<std::vector<std::pair<std::string, std::string>>(uint32_t, uint32_t)> spans;
    // Writes the range's in-sync set into etcd (a transaction on the
    // range's record as this node's view has it).
    std::function<status(uint32_t first, const std::vector<std::string>& in_sync)> write_in_sync;
    // Why this node runs, or is receiving by a move, a key group of
    // [first, end), or "" when it does not (a follower refuses frames for
    // such a range: its copy there is the move's, not the replica's).
    std::function<std::string(uint32_t first, uint32_t end)> owns;
  };
  replicator(store& db, peers& p, std::string self, hooks h, uint32_t lag_limit_ms);
  ~replicator();
  replicator(const replicator&) = delete;
  replicator& operator=(const replicator&) = delete;

  // The ranges this node leads with followers (all of them, each time the
  // placement changes). A range no longer led: its waiting acknowledgements
  // fail (outcome unknown), its log and senders go.
  void lead(std::vector<led_range_view> ranges);

  // Follower side: a peer query of kind replica-*/replicate.
  http::response answer(const peer_query& q);
  // Ranges this node holds a follower's copy of, by first group: (end, epoch).
  std::map<uint32_t, std::pair<uint32_t, uint64_t>> followed() const;
  // Forgets the follower record of a range (the copy is gone).
  void stop_following(uint32_t first);
  // Gives up every copy overlapping [first, end) whole, records and data,
  // once a frame being applied to one of them is done (a move brings
  // these groups here; the controller took this node out of their range's
  // followers first).
  status drop_copies(uint32_t first, uint32_t end);
  // A transfer's source after the hand-over: its data of [first, end) is a
  // copy of its log `log` up to `applied`, followed from now on (the new
  // leader's first frame asks it to adopt the new log).
  void hold_copy(uint32_t first, uint32_t end, const std::string& log, uint64_t applied);
  // This node leads groups [first, end) now: they leave the copies that
  // held them (the rest of such a copy is still followed).
  void promote(uint32_t first, uint32_t end);

  // Moves of a led range's groups: the log's identity and last index now
  // (every commit to held groups is in the log below it), and waiting (at
  // most timeout_ms) until every follower of the range has it durable.
  std::optional<log_point> hold_point(uint32_t group) const;
  void wait_acked(uint32_t group, uint64_t index, int timeout_ms);
  // Whether `follower` has the log of group's range durable up to `index`
  // within timeout_ms.
  bool wait_follower(uint32_t group, const std::string& follower, uint64_t index, int timeout_ms);

  std::vector<replica_progress> progress() const;
  uint64_t in_sync_changes() const { return in_sync_changes_.load(); }

  // The reason on_failed gets when a range stopped being led here with
  // commits waiting for its followers: they may or may not survive.
  static constexpr std::string_view outcome_unknown = "replication: outcome unknown: ";

 private:
  struct entry {
    uint64_t index = 0;
    std::vector<commit_batch::op> ops;
  };
  struct stream {
    std::string follower;
    bool building = true;
    bool adopting = false;  // first asks the follower to adopt this log (led_range_view::adopt_log)
    bool want_snapshot = false;
    std::shared_ptr<const store::snapshot> snapshot;
    uint64_t snapshot_index = 0;
    uint64_t acked = 0;
    uint64_t mark = 0;         // the leader's last index at the last check it had caught up with
    int64_t caught_at_ms = 0;  // when it last had everything up to `mark`
    uint64_t join_index = 0;   // joining: in sync once it has this
    bool joining = false;      // required by the gate, not yet in etcd's in-sync set
    bool stop = false;         // under mu_: the follower is no longer one
    std::thread sender;
  };
  struct range_state {
    led_range_view view;
    std::string log_id;  // this log's identity: the leader's name and a random part
    uint64_t last_index = 0;
    std::deque<entry> log;
    std::map<std::string, std::unique_ptr<stream>> streams;
    bool gone = false;
  };
  struct waiting_ack {
    uint64_t ticket = 0;
    std::function<void()> on_durable;
    std::function<void(const std::string&)> on_failed;
  };

  void on_commit(const commit_batch& batch, uint64_t ticket, durability_mode mode, bool group_end);
  void append(const commit_batch& batch, uint64_t ticket, durability_mode mode);  // under mu_
  bool gate(uint64_t ticket, std::function<void()>& on_durable, std::function<void(const std::string&)>& on_failed);
  // Pops what may be acknowledged now; called with mu_ held, calls after.
  std::vector<std::function<void()>> releasable();
  bool satisfied(uint64_t ticket) const;
  void trim(range_state& r);
  void run_sender(std::shared_ptr<range_state> r, stream* s);
  status build(range_state& r, stream& s);
  // "replica-adopt": true when the follower continues from this log; false
  // when it must be rebuilt.
  result<bool> adopt(range_state& r, stream& s);
  // Sends what the follower lacks: true when something went, false when
  // there was nothing to send (or it must be rebuilt first).
  result<bool> ship(range_state& r, stream& s);
  void check_in_sync(range_state& r, stream& s);
  void release_now();

  store& db_;
  peers& peers_;
  std::string self_;
  hooks hooks_;
  uint32_t lag_limit_ms_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<uint32_t, std::shared_ptr<range_state>> ranges_;  // by first group
  std::vector<int32_t> range_of_group_;                      // index into by_index_, -1: none
  // Groups of ranges this node led with followers and leads no more: a
  // commit to them (computed before this node learned it) is never
  // acknowledged, since no follower will take it.
  std::vector<bool> fenced_;
  bool any_fenced_ = false;
  std::set<uint64_t> doomed_;  // tickets of such commits
  std::vector<std::shared_ptr<range_state>> by_index_;
  std::map<uint64_t, std::vector<std::pair<std::shared_ptr<range_state>, uint64_t>>>
      pending_;  // ticket -> (range, index)
  std::deque<waiting_ack> fifo_;
  std::vector<std::thread> retired_;                      // senders of ranges no longer led, joined at the end
  std::vector<std::unique_ptr<stream>> retired_streams_;  // theirs, kept until then
  std::atomic<uint64_t> in_sync_changes_{0};

  // Follower side: one lock per range copy, so frames apply in order.
  mutable std::mutex follow_mu_;
  struct follow_state {
    uint32_t end = 0;
    uint64_t epoch = 0;
    uint64_t applied = 0;
    bool ready = false;
    std::string leader;  // the identity of the log the copy follows
    std::shared_ptr<std::mutex> apply_mu = std::make_shared<std::mutex>();
  };
  std::map<uint32_t, follow_state> following_;  // by first group
  void load_following();
  // Takes [first, end) out of the copies followed here (their parts
  // outside it stay), writing the change into batch; the apply locks of
  // the copies it touched. Called with follow_mu_ held.
  std::vector<std::shared_ptr<std::mutex>> carve(uint32_t first, uint32_t end, commit_batch& batch);
  // Apply locks held: the mutexes are kept alive with them (the records
  // that own them may be erased while they are held).
  struct held_locks {
    std::vector<std::shared_ptr<std::mutex>> mutexes;
    std::vector<std::unique_lock<std::mutex>> locks;  // destroyed first
  };
  // The apply locks of the copies overlapping [first, end), held.
  held_locks lock_copies(uint32_t first, uint32_t end);
  static held_locks lock_in_order(std::vector<std::shared_ptr<std::mutex>> mutexes);
  // Adds the erasure of every record of groups [first, end) to batch.
  status erase_records(uint32_t first, uint32_t end, commit_batch& batch);
  status save_following(uint32_t first, const follow_state& f, commit_batch& batch);
};

}  // namespace flowstate::engine_detail
