// The commit pipeline: one writer thread (group write, no sync) and one sync
// thread (SyncWAL, then the acknowledgements of everything written before).
#include <algorithm>

#include "flowstate/runtime/fault.hpp"
#include "flowstate/runtime/thread_name.hpp"
#include "store_impl.hpp"

namespace flowstate {

namespace {

std::string encode_big_endian64(uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, value >>= 8) out[i] = static_cast<char>(value & 0xFF);
  return out;
}

}  // namespace

uint64_t store::commit(commit_batch&& batch, durability_mode mode, std::function<void()> on_durable,
                       std::function<void(const std::string&)> on_failed, uint64_t epoch) {
  bool wake = false;
  uint64_t ticket = 0;
  {
    std::unique_lock lock(impl_->queue_mu);
    if (impl_->stopping) {
      lock.unlock();
      // Closed: never written. Said so, or a caller waiting for it would wait forever.
      if (on_failed) on_failed("the store is closed");
      return 0;
    }
    wake = impl_->queue.empty();  // the writer only sleeps on an empty queue
    ticket = ++impl_->last_ticket;
    impl_->queue.push_back({std::move(batch), mode, std::move(on_durable), std::move(on_failed), epoch, ticket});
  }
  impl_->submitted.store(ticket, std::memory_order_release);
  if (wake) impl_->writer_cv.notify_one();
  return ticket;
}

void store::set_write_observer(std::function<void(const commit_batch&)> observer) {
  std::lock_guard lock(impl_->observer_mu);
  impl_->observed.store(static_cast<bool>(observer), std::memory_order_release);
  impl_->observer = std::move(observer);
}

void store::set_commit_hook(commit_hook hook) {
  std::lock_guard lock(impl_->observer_mu);
  impl_->hooked.store(static_cast<bool>(hook), std::memory_order_release);
  impl_->hook = std::move(hook);
}

void store::set_ack_gate(ack_gate gate) {
  std::lock_guard lock(impl_->gate_mu);
  impl_->gated.store(static_cast<bool>(gate), std::memory_order_release);
  impl_->gate = std::move(gate);
}

uint64_t store::written_through() const { return impl_->written_ticket.load(std::memory_order_acquire); }

uint64_t store::epoch() const { return impl_->epoch.load(std::memory_order_acquire); }

status store::health() const {
  if (!impl_->failed.load(std::memory_order_acquire)) return status::success();
  return fail(impl_->failure_reason());
}

status store::resume() {
  if (!impl_->failed.load(std::memory_order_acquire)) return status::success();
  if (!impl_->db) return fail(impl_->options.path + ": resume after close()");
  auto st = impl_->db->Resume();
  if (!st.ok()) return fail(impl_->options.path + ": cannot resume writing: " + st.ToString());
  // The new epoch before the flag: a commit computed while failed must not
  // slip through between the two.
  impl_->epoch.fetch_add(1, std::memory_order_acq_rel);
  {
    std::lock_guard lock(impl_->sync_mu);  // the sync thread waits on `failed`
    impl_->failed.store(false, std::memory_order_release);
  }
  impl_->sync_cv.notify_all();
  return status::success();
}

void store::impl::enter_failed(const std::string& message) {
  {
    std::lock_guard lock(failure_mu);
    failure = message;
  }
  failed.store(true, std::memory_order_release);
  epoch.fetch_add(1, std::memory_order_acq_rel);
}

std::string store::impl::failure_reason() const {
  std::lock_guard lock(failure_mu);
  return failure;
}

void store::impl::add_ops(rocksdb::WriteBatch& wb, const commit_batch& batch) {
  for (const auto& op : batch.ops()) {
    auto* h = handle(op.col);
    rocksdb::Slice key(op.key.data(), op.key.size());
    rocksdb::Slice value(op.value.data(), op.value.size());
    switch (op.kind) {
      case commit_batch::op_kind::put:
        wb.Put(h, key, value);
        break;
      case commit_batch::op_kind::erase:
        wb.Delete(h, key);
        break;
      case commit_batch::op_kind::add_count:
        wb.Merge(handle(column::metering), key, value);
        break;
    }
  }
}

rocksdb::Status store::impl::write(rocksdb::WriteBatch& wb, bool sync, const std::function<void()>& written) {
  std::lock_guard lock(write_mu);
  // Every sequence used in wb was allocated before this load, so the mark
  // written with wb covers them: on reopen counting resumes above it.
  uint64_t high_water = next_seq.load() - 1;
  bool advance = high_water > persisted_high_water;
  if (advance) {
    auto value = encode_big_endian64(high_water);
    wb.Put(handle(column::meta), rocksdb::Slice(meta_sequence_high_water.data(), meta_sequence_high_water.size()),
           value);
  }
  // Never a write after a failed one until resume(): RocksDB's WAL writer
  // has seen the error, and Debian's RocksDB asserts on the next append.
  if (failed.load(std::memory_order_acquire)) return rocksdb::Status::Aborted(failure_reason());
  rocksdb::WriteOptions write_options;
  write_options.sync = sync;
  auto st = db->Write(write_options, &wb);
  if (st.ok() && advance) persisted_high_water = high_water;
  if (st.ok() && written) written();
  if (!st.ok())
    enter_failed(options.path + (st.IsNoSpace() ? ": write failed, no space left: " : ": write failed: ") +
                 st.ToString());
  return st;
}

void store::impl::start_threads() {
  writer = std::thread([this] {
    name_this_thread("fs-store-write");
    run_writer();
  });
  syncer = std::thread([this] {
    name_this_thread("fs-store-sync");
    run_syncer();
  });
}

void store::impl::stop_threads() {
  {
    std::lock_guard lock(queue_mu);
    stopping = true;
  }
  writer_cv.notify_all();
  if (writer.joinable()) writer.join();
  {
    std::lock_guard lock(sync_mu);
    sync_stopping = true;
  }
  sync_cv.notify_all();
  if (syncer.joinable()) syncer.join();
}

void store::impl::run_writer() {
  std::vector<pending_commit> work;
  std::vector<pending_commit> refused;
  std::vector<awaiting_ack> to_sync;
  rocksdb::WriteBatch wb;
  auto fail_all = [](std::vector<pending_commit>& commits, const std::string& reason) {
    for (auto& p : commits)
      if (p.on_failed) p.on_failed(reason);
    commits.clear();
  };
  for (;;) {
    {
      std::unique_lock lock(queue_mu);
      writer_cv.wait(lock, [&] { return !queue.empty() || stopping; });
      if (queue.empty()) return;  // stopping, and everything is written
      work.swap(queue);
    }
    // While failed, nothing is written; a commit of an older epoch may rest
    // on a commit that was never written.
    const bool is_failed = failed.load(std::memory_order_acquire);
    const uint64_t current = epoch.load(std::memory_order_acquire);
    if (is_failed || std::any_of(work.begin(), work.end(), [&](auto& p) { return p.epoch && p.epoch != current; })) {
      std::vector<pending_commit> kept;
      for (auto& p : work) (is_failed || (p.epoch && p.epoch != current) ? refused : kept).push_back(std::move(p));
      work.swap(kept);
      fail_all(refused, is_failed ? failure_reason()
                                  : options.path + ": the commit was computed before a failed write; not written");
      if (work.empty()) continue;
    }
    wb.Clear();
    for (const auto& p : work) add_ops(wb, p.batch);
    if (observed.load(std::memory_order_acquire)) {
      std::lock_guard lock(observer_mu);
      for (const auto& p : work)
        if (observer) observer(p.batch);
    }

    fault_point("store.before_write");
    // The hook (replication) sees a group only once it is written here: a
    // group whose write failed never reaches a replica, so a replica never
    // holds a commit its leader lacks.
    auto st = write(wb, false, [&] {
      if (!hooked.load(std::memory_order_acquire)) return;
      std::lock_guard lock(observer_mu);
      for (std::size_t i = 0; i < work.size(); ++i)
        if (hook) hook(work[i].batch, work[i].ticket, work[i].mode, i + 1 == work.size());
    });
    if (!st.ok()) {
      if (st.IsNoSpace() || st.IsAborted()) {
        // No space (now or in a write_now() just before): nothing of this
        // group is acknowledged, and later commits fail until resume().
        fail_all(work, failure_reason());
        continue;
      }
      fatal("group write failed", st);
      work.clear();
      continue;
    }

    written_ticket.store(work.back().ticket, std::memory_order_release);
    for (auto& p : work) {
      if (p.mode == durability_mode::relaxed) {
        if (p.on_durable) p.on_durable();
      } else {
        to_sync.push_back({p.ticket, std::move(p.on_durable), std::move(p.on_failed)});
      }
    }
    work.clear();
    if (!to_sync.empty()) {
      fault_point("store.after_write_before_sync");
      {
        std::lock_guard lock(sync_mu);
        for (auto& cb : to_sync) awaiting_sync.push_back(std::move(cb));
      }
      to_sync.clear();
      sync_cv.notify_one();
    }
  }
}

void store::impl::run_syncer() {
  std::vector<awaiting_ack> synced;
  for (;;) {
    {
      std::unique_lock lock(sync_mu);
      // While the store is failed no sync is attempted: RocksDB's WAL writer
      // has seen the failed write, and Debian's RocksDB asserts on a sync
      // after it. The commits waiting were written before the failure; they
      // are acknowledged after resume() (which flushes them to table files),
      // or never, if the store closes first.
      sync_cv.wait(lock, [&] { return sync_stopping || (!awaiting_sync.empty() && !failed.load()); });
      if (awaiting_sync.empty() || failed.load()) return;  // stopping
      synced.swap(awaiting_sync);
    }
    // Everything in `synced` was written before this call, so this one fsync
    // makes all of it durable.
    auto st = db->SyncWAL();
    if (!st.ok()) {
      // Never retried: after a failed fsync the kernel may have dropped the
      // dirty pages and a second fsync would report success (PostgreSQL's
      // "fsyncgate"). Nothing of `synced` is acknowledged.
      fatal("WAL sync failed", st);
      synced.clear();
      continue;
    }
    fault_point("store.after_sync_before_ack");
    if (gated.load(std::memory_order_acquire)) {
      std::lock_guard lock(gate_mu);
      for (auto& a : synced) {
        if (gate && gate(a.ticket, a.on_durable, a.on_failed)) continue;
        if (a.on_durable) a.on_durable();
      }
    } else {
      for (auto& a : synced)
        if (a.on_durable) a.on_durable();
    }
    synced.clear();
  }
}

}  // namespace flowstate
