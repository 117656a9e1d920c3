#pragma once
// Private to the store: the RocksDB handles and the commit pipeline state.
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/write_batch.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "flowstate/runtime/store.hpp"

namespace flowstate {

// The Env the store opens RocksDB on: nullptr (RocksDB's default) in release
// builds, a file system that injects disk faults with FLOWSTATE_FAULT_INJECTION.
std::unique_ptr<rocksdb::Env> make_store_env();

// uint64 counters in `metering`: the sum of 8-byte little-endian operands.
std::shared_ptr<rocksdb::MergeOperator> make_uint64_add_operator();

// Drops what store_options::expired says, during compactions.
class expiry_filter : public rocksdb::CompactionFilter {
 public:
  explicit expiry_filter(std::function<bool(std::string_view, std::string_view)> expired)
      : expired_(std::move(expired)) {}
  bool Filter(int, const rocksdb::Slice& key, const rocksdb::Slice& value, std::string*, bool*) const override {
    return expired_({key.data(), key.size()}, {value.data(), value.size()});
  }
  const char* Name() const override { return "flowstate.expiry"; }

 private:
  std::function<bool(std::string_view, std::string_view)> expired_;
};

struct store::impl {
  struct pending_commit {
    commit_batch batch;
    durability_mode mode;
    std::function<void()> on_durable;
    std::function<void(const std::string&)> on_failed;
    uint64_t epoch = 0;  // 0: written whatever the epoch
    uint64_t ticket = 0;
  };

  store_options options;
  std::unique_ptr<rocksdb::Env> env;                    // outlives db
  std::vector<std::unique_ptr<expiry_filter>> filters;  // outlive db (declared first, destroyed last)
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // default, then by column
  std::atomic<uint64_t> next_seq{1};
  std::string store_id, incarnation;
  std::optional<int64_t> upgraded_at_ms;

  // Serialises a WriteBatch write with its high-water mark (writer thread and
  // write_now), so the persisted mark never goes backwards.
  std::mutex write_mu;
  uint64_t persisted_high_water = 0;

  std::mutex observer_mu;
  std::function<void(const commit_batch&)> observer;  // under observer_mu
  std::atomic<bool> observed{false};
  store::commit_hook hook;  // under observer_mu
  std::atomic<bool> hooked{false};
  std::mutex gate_mu;
  ack_gate gate;  // under gate_mu
  std::atomic<bool> gated{false};

  std::mutex queue_mu;
  std::condition_variable writer_cv;
  std::vector<pending_commit> queue;  // submission order
  bool stopping = false;
  uint64_t last_ticket = 0;                 // under queue_mu
  std::atomic<uint64_t> submitted{0};       // the last ticket handed out
  std::atomic<uint64_t> written_ticket{0};  // every commit up to it is in RocksDB

  std::mutex sync_mu;
  std::condition_variable sync_cv;
  struct awaiting_ack {
    uint64_t ticket = 0;
    std::function<void()> on_durable;
    std::function<void(const std::string&)> on_failed;
  };
  std::vector<awaiting_ack> awaiting_sync;  // written, not yet synced
  bool sync_stopping = false;

  // Fail-closed state after a write failed for lack of space: every commit
  // fails until resume(). epoch changes on entering and on leaving it.
  std::atomic<uint64_t> epoch{1};
  std::atomic<bool> failed{false};
  mutable std::mutex failure_mu;
  std::string failure;  // under failure_mu: why commits fail

  std::thread writer;
  std::thread syncer;
  std::mutex close_mu;
  bool closed = false;

  ~impl();
  rocksdb::ColumnFamilyHandle* handle(column c) const { return handles[static_cast<size_t>(c) + 1]; }
  void start_threads();
  void stop_threads();
  void run_writer();
  void run_syncer();
  void fatal(const std::string& what, const rocksdb::Status& s);
  // A write failed for lack of space: fail closed (see store::health()).
  void enter_failed(const std::string& message);
  std::string failure_reason() const;
  void add_ops(rocksdb::WriteBatch& wb, const commit_batch& batch);
  // Writes wb plus the sequence high-water mark when it advanced.
  // Writes wb; on success calls `written` (if any) before another write
  // can come in (under write_mu).
  rocksdb::Status write(rocksdb::WriteBatch& wb, bool sync, const std::function<void()>& written = nullptr);
  void release_db();
};

// The meta key holding the sequence high-water mark (8 bytes, big-endian).
inline constexpr std::string_view meta_sequence_high_water = "sequence_high_water";

}  // namespace flowstate
