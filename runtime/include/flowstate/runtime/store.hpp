#pragma once
// The node's RocksDB store: column families, the atomic commit with group
// commit, point reads and prefix scans. RocksDB stays behind a pimpl.
//
// Commit pipeline: commit() only enqueues. One writer thread takes everything
// pending, writes it as one WriteBatch without sync, acknowledges relaxed
// commits at once and hands sync commits to a sync thread, which calls
// SyncWAL() and acknowledges every commit written before that sync began.
// No timers: each thread takes whatever is pending when it is free.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/runtime/durability.hpp"
#include "flowstate/runtime/keys.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate {

// idempotency: HTTP Idempotency-Key -> the response recorded with the commit
// that produced it.
// outbox: messages for key groups another node owns, written in the commit
// that produced them and kept until that node acknowledged them; and the
// de-duplication marks of the messages this node received (keys.hpp).
enum class column { meta, state, queue, errors, metering, trace, idempotency, outbox };
constexpr int column_count = 8;
// The column family name ("meta", "state", ...).
std::string_view column_name(column c);

// Recorded in `meta` at first open. A format-1 store (records of a key
// outside its key group) is upgraded at open; a newer one is refused.
constexpr uint32_t storage_format_version = 2;

// The write operations of one atomic commit.
class commit_batch {
 public:
  enum class op_kind : uint8_t { put, erase, add_count };
  struct op {
    op_kind kind;
    column col;
    std::string key;
    std::string value;  // put: the value; add_count: encode_count(n)
  };

  void put(column c, std::string key, std::string value);
  void erase(column c, std::string key);
  // Adds n to the counter at key in `metering` (a merge: no read).
  void add_count(std::string key, uint64_t n);
  // Moves other's operations after this batch's own.
  void append(commit_batch&& other);
  bool empty() const { return ops_.empty(); }
  size_t size() const { return ops_.size(); }
  const std::vector<op>& ops() const { return ops_; }

 private:
  std::vector<op> ops_;
};

// Counter values in `metering` are 8 bytes, little-endian.
std::string encode_count(uint64_t n);
// 0 when value is not 8 bytes.
uint64_t decode_count(std::string_view value);

struct store_options {
  std::string path;  // the RocksDB directory, created if missing
  uint32_t key_group_count = flowstate::key_group_count;
  size_t write_buffer_bytes = 64u << 20;  // all memtables together
  size_t block_cache_bytes = 32u << 20;   // memtables are charged to it too
  uint64_t max_total_wal_size = 256u << 20;
  // Records that compactions drop, per column (e.g. expired idempotency
  // records); called on RocksDB's compaction threads. Columns with one are
  // also compacted at least daily, so that old files get looked at.
  std::map<column, std::function<bool(std::string_view key, std::string_view value)>> expired;
  // Called on the writer or sync thread when RocksDB fails a sync, or a write
  // for another reason than lack of space: acknowledgements can no longer be
  // given, and a failed fsync is never retried (the kernel may have dropped
  // the pages it could not write): the process must stop and recover from
  // what the log holds. Default: print, abort().
  std::function<void(const std::string& message)> on_fatal_error;
  // Only for recover_store(): open past damage in the middle of the
  // write-ahead log (RocksDB's point-in-time recovery: the damaged record and
  // everything after it are dropped). Otherwise open() refuses such a log.
  bool drop_wal_after_damage = false;
};

class store {
 public:
  // Opens or creates the store; refuses a format_version or key_group_count
  // that differs from the one recorded at first open, and a write-ahead log
  // damaged before its end (wal_check.hpp; a torn tail is tolerated).
  static result<std::unique_ptr<store>> open(store_options options);
  ~store();  // close()
  store(const store&) = delete;
  store& operator=(const store&) = delete;

  // Thread-safe and never blocks on I/O. Commits apply in the order of the
  // commit() calls. on_durable runs once on the writer thread (relaxed) or
  // the sync thread (sync); it must not block nor call close(). Commits
  // submitted after close() are dropped and never acknowledged (ticket 0).
  // Returns the commit's ticket: tickets grow in commit order.
  //
  // A commit that is never written gets on_failed(reason) instead (on the
  // caller's or the writer thread): when a write failed for lack of space,
  // while the store is failed (health()), or when `epoch` is not 0 and not
  // the current epoch() (it was computed from reads of before a failure).
  uint64_t commit(commit_batch&& batch, durability_mode mode, std::function<void()> on_durable,
                  std::function<void(const std::string& reason)> on_failed = {}, uint64_t epoch = 0);
  // Every commit with a ticket up to this one is written (readable by read();
  // not necessarily durable yet).
  uint64_t written_through() const;

  // Changes when a write fails and again when writing resumes: state read or
  // cached in an older epoch may derive from a commit that was never written.
  uint64_t epoch() const;
  // Success while commits are written; after a write failed for lack of
  // space, that error until resume() succeeds. Commits fail meanwhile.
  status health() const;
  // Asks RocksDB to resume writing after a failed write (e.g. once space is
  // free again); on success, a new epoch starts and commits are written again.
  status resume();

  // Blocking point read: the value, nullopt when the key is absent, or the
  // read error (an I/O error or a corrupt block is never "absent").
  result<std::optional<std::string>> read(column c, std::string_view key) const;
  // Calls fn for each entry whose key starts with prefix, in key order, until
  // fn returns false. An error when the iteration failed (I/O, corruption):
  // the entries seen until then are not all there are.
  status scan_prefix(column c, std::string_view prefix,
                     const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
  // Same over [begin, end); an empty end means no upper bound.
  status scan_range(column c, std::string_view begin, std::string_view end,
                    const std::function<bool(std::string_view key, std::string_view value)>& fn) const;

  // Same, from the last entry before `end` back to `begin` (an empty end:
  // from the very last entry).
  status scan_range_reverse(column c, std::string_view begin, std::string_view end,
                            const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
  // Removes every entry in [begin, end) at once (a range tombstone): for
  // retention, which drops whole time ranges. Not ordered with pending commits.
  status delete_range(column c, std::string_view begin, std::string_view end);
  // Compacts the whole column now (blocking): applies `expired`.
  status compact(column c);
  // Approximate bytes of the entries in [begin, end), memtables included.
  result<uint64_t> approximate_size(column c, std::string_view begin, std::string_view end) const;

  // A point-in-time view of the store for scans (a replica's first copy);
  // RocksDB keeps what it sees until the last copy of it is gone. It must
  // not outlive the store.
  class snapshot;
  std::shared_ptr<const snapshot> take_snapshot() const;
  // scan_range() as of the snapshot.
  status scan_range(column c, std::string_view begin, std::string_view end, const snapshot& at,
                    const std::function<bool(std::string_view key, std::string_view value)>& fn) const;

  // Replication (cluster): called on the writer thread with each commit's
  // batch, ticket and mode once the group holding it is written (never for
  // a group whose write failed), before any other write; `group_end` is
  // true for the group's last commit, when a snapshot taken inside the hook
  // holds everything of the commits the hook has seen and nothing after.
  // nullptr: none.
  using commit_hook = std::function<void(const commit_batch&, uint64_t ticket, durability_mode mode, bool group_end)>;
  void set_commit_hook(commit_hook hook);
  // Replication: a sync commit that is durable here passes through the gate
  // (on the sync thread, in ticket order) before it is acknowledged. The
  // gate returns true when it took the callbacks, to call one of them later
  // (once the replicas have the commit, or on_failed when they never will);
  // false: acknowledged now. Relaxed commits never pass through it.
  using ack_gate = std::function<bool(uint64_t ticket, std::function<void()>& on_durable,
                                      std::function<void(const std::string&)>& on_failed)>;
  void set_ack_gate(ack_gate gate);

  // Called on the writer thread with each commit's batch as it is written
  // (nullptr: none). A node moving key groups to another node records what
  // changes meanwhile, so that it sends only that while the groups are held.
  void set_write_observer(std::function<void(const commit_batch&)> observer);

  // Blocking write for rare writes (meta); not ordered with pending commits.
  status write_now(commit_batch&& batch, bool sync);

  // Monotonic across restarts: the high-water mark is persisted with every
  // write that follows an allocation.
  uint64_t next_sequence();

  // After data was copied in from another store (a key-group range moving
  // here): later sequences are above `at_least`, so the range's entries keep
  // their order.
  void raise_sequence(uint64_t at_least);

  uint32_t key_groups() const;
  const std::string& path() const;
  // This data directory's identity (random, written at its first open,
  // 32 hex digits) and this open's (random, 16 hex digits): a node that comes
  // back under the same name with an empty directory, or restarts, is told
  // apart from the one that owned ranges before.
  const std::string& store_id() const;
  const std::string& incarnation() const;
  // When this store was upgraded from format 1 (ms since the epoch), if it was.
  std::optional<int64_t> upgraded_from_format1_at_ms() const;

  // Writes and acknowledges every pending commit, stops the threads, closes
  // RocksDB. Idempotent.
  void close();

  struct impl;

 private:
  explicit store(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

// What `flowstate recover` did to a store whose write-ahead log is damaged.
struct recovery_report {
  std::string summary;     // for the operator: the damage and what was dropped
  bool recovered = false;  // false: nothing to recover (or a dry run)
  std::string kept_copy;   // where the damaged log files were copied
};

// Checks the store's write-ahead log; when it is damaged (and not dry_run),
// copies the damaged files aside (next to the store, `.damaged-<time>`),
// opens with point-in-time recovery (dropping the damaged record and all
// after it) and flushes, so that the store opens normally again.
result<recovery_report> recover_store(const std::string& path, bool dry_run);

}  // namespace flowstate
