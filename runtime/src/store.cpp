// Opening the store (options, column families, the format record) and reads.
#include "flowstate/runtime/store.hpp"

#include <rocksdb/cache.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_buffer_manager.h>

#include <charconv>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <random>

#include "flowstate/runtime/wal_check.hpp"
#include "store_impl.hpp"
#include "store_migrate.hpp"

namespace flowstate {

namespace {

constexpr std::string_view meta_format_version = "format_version";
constexpr std::string_view meta_key_group_count = "key_group_count";
constexpr std::string_view meta_store_id = "store_id";

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

std::optional<uint64_t> parse_decimal(std::string_view text) {
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

uint64_t decode_big_endian64(std::string_view bytes) {
  uint64_t value = 0;
  for (unsigned char c : bytes) value = (value << 8) | c;
  return value;
}

// Checks one meta record against what this build expects; writes it into
// first_open when absent.
status check_meta_record(store::impl& s, std::string_view name, uint64_t expected, rocksdb::WriteBatch& first_open) {
  std::string found;
  auto st = s.db->Get(rocksdb::ReadOptions(), s.handle(column::meta), slice(name), &found);
  if (st.IsNotFound()) {
    first_open.Put(s.handle(column::meta), slice(name), std::to_string(expected));
    return status::success();
  }
  if (!st.ok()) return fail(s.options.path + ": cannot read meta record " + std::string(name) + ": " + st.ToString());
  auto value = parse_decimal(found);
  if (!value)
    return fail(s.options.path + ": meta record " + std::string(name) + ": expected a decimal number, found \"" +
                found + "\"");
  if (*value != expected)
    return fail(s.options.path + ": the store was created with " + std::string(name) + " " + std::to_string(*value) +
                ", this node is configured for " + std::to_string(expected) + "; refusing to open it");
  return status::success();
}

// RocksDB would resume by itself after a write failed for lack of space; the
// store resumes only when asked (store::resume()), so that the engine can
// make its memory agree with the disk first (a new epoch).
class manual_recovery : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason, rocksdb::Status, bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

// RocksDB's info log (DIR/LOG) through stdio: RocksDB's own logger writes
// through a file writer that, on a full disk, fails once and then asserts in
// Debian's build on the next line (the error handler logs the very failure
// that filled the disk). Lines that cannot be written are dropped.
class tolerant_logger : public rocksdb::Logger {
 public:
  explicit tolerant_logger(const std::string& path) : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {
    std::error_code ec;
    if (std::filesystem::file_size(path, ec) > (16u << 20) && !ec)
      std::filesystem::rename(path, path + ".old", ec);  // one generation kept
    file_ = std::fopen(path.c_str(), "a");
  }
  ~tolerant_logger() override {
    if (file_) std::fclose(file_);
  }
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    if (!file_) return;
    std::lock_guard lock(mu_);
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y/%m/%d-%H:%M:%S ", &tm);
    std::fputs(stamp, file_);
    std::vfprintf(file_, format, ap);
    std::fputc('\n', file_);
    std::fflush(file_);
  }

 private:
  std::FILE* file_ = nullptr;
  std::mutex mu_;
};

// The format record: 0 when absent (a new store).
result<uint64_t> read_format(store::impl& s) {
  std::string found;
  auto st = s.db->Get(rocksdb::ReadOptions(), s.handle(column::meta), slice(meta_format_version), &found);
  if (st.IsNotFound()) return uint64_t{0};
  if (!st.ok()) return fail(s.options.path + ": cannot read meta record format_version: " + st.ToString());
  if (found == meta_format1_upgrading) return uint64_t{1};
  auto value = parse_decimal(found);
  if (!value || *value == 0)
    return fail(s.options.path + ": meta record format_version: expected a positive decimal number, found \"" + found +
                "\"");
  return *value;
}

std::string random_hex(std::size_t bytes) {
  std::random_device rd;
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    auto b = static_cast<unsigned>(rd()) & 0xFF;
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

status read_or_create_store_id(store::impl& s, rocksdb::WriteBatch& first_open) {
  std::string found;
  auto st = s.db->Get(rocksdb::ReadOptions(), s.handle(column::meta), slice(meta_store_id), &found);
  if (st.IsNotFound()) {
    s.store_id = random_hex(16);
    first_open.Put(s.handle(column::meta), slice(meta_store_id), s.store_id);
    return status::success();
  }
  if (!st.ok()) return fail(s.options.path + ": cannot read meta record store_id: " + st.ToString());
  s.store_id = found;
  return status::success();
}

result<std::optional<int64_t>> read_upgrade_time(store::impl& s) {
  std::string found;
  auto st = s.db->Get(rocksdb::ReadOptions(), s.handle(column::meta), slice(meta_upgraded_from_format1_at), &found);
  if (st.IsNotFound()) return std::optional<int64_t>();
  if (!st.ok())
    return fail(s.options.path + ": cannot read meta record " + std::string(meta_upgraded_from_format1_at) + ": " +
                st.ToString());
  auto value = parse_decimal(found);
  if (!value) return std::optional<int64_t>();
  return std::optional<int64_t>(static_cast<int64_t>(*value));
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string_view column_name(column c) {
  switch (c) {
    case column::meta:
      return "meta";
    case column::state:
      return "state";
    case column::queue:
      return "queue";
    case column::errors:
      return "errors";
    case column::metering:
      return "metering";
    case column::trace:
      return "trace";
    case column::idempotency:
      return "idempotency";
    case column::outbox:
      return "outbox";
  }
  return "?";
}

store::store(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

store::~store() { close(); }

result<std::unique_ptr<store>> store::open(store_options options) {
  if (options.key_group_count == 0) return fail(options.path + ": key_group_count must be at least 1, found 0");
  auto state = std::make_unique<impl>();
  state->options = std::move(options);
  const auto& opts = state->options;

  auto cache = rocksdb::NewLRUCache(opts.block_cache_bytes);
  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.manual_wal_flush = false;  // every Write reaches the OS: a process crash loses nothing
  db_options.max_total_wal_size = opts.max_total_wal_size;
  db_options.write_buffer_manager = std::make_shared<rocksdb::WriteBufferManager>(opts.write_buffer_bytes, cache);
  db_options.max_background_jobs = 2;
  db_options.listeners.push_back(std::make_shared<manual_recovery>());
  {
    std::error_code ec;
    std::filesystem::create_directories(opts.path, ec);  // the log lives in the store's directory
    db_options.info_log = std::make_shared<tolerant_logger>(opts.path + "/LOG");
  }
  state->env = make_store_env();
  if (state->env) db_options.env = state->env.get();

  rocksdb::BlockBasedTableOptions table_options;
  table_options.block_cache = cache;
  auto table_factory = std::shared_ptr<rocksdb::TableFactory>(rocksdb::NewBlockBasedTableFactory(table_options));

  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  rocksdb::ColumnFamilyOptions base;
  base.table_factory = table_factory;
  families.emplace_back(rocksdb::kDefaultColumnFamilyName, base);
  for (int i = 0; i < column_count; ++i) {
    auto c = static_cast<column>(i);
    rocksdb::ColumnFamilyOptions cf = base;
    if (c == column::metering) cf.merge_operator = make_uint64_add_operator();
    if (auto drop = opts.expired.find(c); drop != opts.expired.end()) {
      state->filters.push_back(std::make_unique<expiry_filter>(drop->second));
      cf.compaction_filter = state->filters.back().get();
      cf.periodic_compaction_seconds = 24 * 3600;
    }
    if (c == column::trace) {
      // Written once and rarely read: no compression, fewer compactions.
      // (memtable_insert_with_hint_prefix_extractor would suit its
      // time-ordered keys, but RocksDB 7.8 asserts in the skip list when
      // range deletions, which retention uses, meet insert hints.)
      cf.compression = rocksdb::kNoCompression;
      cf.level0_file_num_compaction_trigger = 8;
    }
    families.emplace_back(std::string(column_name(c)), cf);
  }

  // RocksDB's point-in-time recovery stops at the first bad record without
  // an error: damage in the middle would silently drop acknowledged commits.
  if (!opts.drop_wal_after_damage) {
    auto wal = check_wal(opts.path);
    if (!wal) return fail(wal.error());
    if (wal->damage)
      return fail(describe(*wal->damage) +
                  " This is not the torn tail of a crash but damage to written data (a disk fault): the node does not "
                  "start on it. `flowstate recover --data DIR` reports what it drops and makes the store usable "
                  "again (it keeps a copy of the damaged files).");
    if (wal->torn_tail)
      std::fprintf(stderr,
                   "flowstate store: %s: the log ends in an incomplete record (%s at byte %llu), the unsynced "
                   "tail of a crash; it is dropped\n",
                   wal->torn_tail->file.c_str(), wal->torn_tail->what.c_str(),
                   static_cast<unsigned long long>(wal->torn_tail->offset));
  }
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;

  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::Open(db_options, opts.path, families, &state->handles, &raw);
  if (!st.ok()) return fail(opts.path + ": cannot open the store: " + st.ToString());
  state->db.reset(raw);
  if (opts.drop_wal_after_damage) {
    // Into table files, so that the damaged log is obsolete and removed.
    std::vector<rocksdb::ColumnFamilyHandle*> all(state->handles.begin(), state->handles.end());
    st = state->db->Flush(rocksdb::FlushOptions(), all);
    if (!st.ok()) return fail(opts.path + ": cannot flush after recovery: " + st.ToString());
  }

  rocksdb::WriteBatch first_open;
  if (auto s = check_meta_record(*state, meta_key_group_count, opts.key_group_count, first_open); !s)
    return fail(s.error());
  auto format = read_format(*state);
  if (!format) return fail(format.error());
  if (*format == 0 || *format == 1) {
    // 0: a new store (or one whose first open did not finish). 1: upgraded
    // here (store_migrate.cpp), resumed if a crash interrupted it.
    if (*format == 1) {
      // First marked as under way: a format-1 node refuses the half-moved
      // store ("expected a decimal number") instead of reading it.
      rocksdb::WriteBatch mark;
      mark.Put(state->handle(column::meta), slice(meta_format_version), slice(meta_format1_upgrading));
      rocksdb::WriteOptions synced;
      synced.sync = true;
      if (auto m = state->db->Write(synced, &mark); !m.ok())
        return fail(opts.path + ": cannot mark the upgrade to format 2: " + m.ToString());
      state->upgraded_at_ms = wall_ms();
      auto report = migrate_format1_to_format2(*state, opts.key_group_count, *state->upgraded_at_ms, first_open);
      if (!report) return fail(report.error());
      std::fprintf(stderr,
                   "flowstate store: %s: upgraded from format 1 to %u (%llu error records and %llu counters moved "
                   "under their key groups)\n",
                   opts.path.c_str(), storage_format_version, static_cast<unsigned long long>(report->errors_moved),
                   static_cast<unsigned long long>(report->counters_moved));
    }
    first_open.Put(state->handle(column::meta), slice(meta_format_version), std::to_string(storage_format_version));
  } else if (*format != storage_format_version) {
    return fail(opts.path + ": the store was created with format_version " + std::to_string(*format) +
                ", this node reads format " + std::to_string(storage_format_version) +
                " (and upgrades format 1); refusing to open it. A newer flowstate wrote it.");
  }
  if (auto s = read_or_create_store_id(*state, first_open); !s) return fail(s.error());
  state->incarnation = random_hex(8);
  if (!state->upgraded_at_ms) {
    auto at = read_upgrade_time(*state);
    if (!at) return fail(at.error());
    state->upgraded_at_ms = *at;
  }
  if (first_open.Count() > 0) {
    rocksdb::WriteOptions sync_write;
    sync_write.sync = true;
    st = state->db->Write(sync_write, &first_open);
    if (!st.ok()) return fail(opts.path + ": cannot record the store format: " + st.ToString());
  }

  std::string high_water;
  st =
      state->db->Get(rocksdb::ReadOptions(), state->handle(column::meta), slice(meta_sequence_high_water), &high_water);
  if (st.ok()) {
    if (high_water.size() != 8)
      return fail(opts.path + ": meta record sequence_high_water: expected 8 bytes, found " +
                  std::to_string(high_water.size()));
    state->persisted_high_water = decode_big_endian64(high_water);
  } else if (!st.IsNotFound()) {
    return fail(opts.path + ": cannot read sequence_high_water: " + st.ToString());
  }
  state->next_seq.store(state->persisted_high_water + 1);

  state->start_threads();
  return std::unique_ptr<store>(new store(std::move(state)));
}

result<std::optional<std::string>> store::read(column c, std::string_view key) const {
  if (!impl_->db) return fail(impl_->options.path + ": read after close()");
  std::string value;
  auto st = impl_->db->Get(rocksdb::ReadOptions(), impl_->handle(c), slice(key), &value);
  if (st.IsNotFound()) return std::optional<std::string>();
  if (!st.ok())
    return fail(impl_->options.path + ": cannot read column " + std::string(column_name(c)) + ": " + st.ToString());
  return std::optional<std::string>(std::move(value));
}

namespace {

// The iteration's own error once it stopped: an iterator that is not Valid()
// either reached the end or failed.
status iteration_status(const store::impl& s, column c, const rocksdb::Iterator& it) {
  auto st = it.status();
  if (st.ok()) return status::success();
  return fail(s.options.path + ": cannot scan column " + std::string(column_name(c)) + ": " + st.ToString());
}

}  // namespace

namespace {

status scan_at(const store::impl& impl, column c, std::string_view begin, std::string_view end,
               const rocksdb::Snapshot* at, const std::function<bool(std::string_view, std::string_view)>& fn) {
  if (!impl.db) return fail(impl.options.path + ": scan after close()");
  rocksdb::ReadOptions read_options;
  read_options.snapshot = at;
  rocksdb::Slice upper = slice(end);
  if (!end.empty()) read_options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(impl.db->NewIterator(read_options, impl.handle(c)));
  for (it->Seek(slice(begin)); it->Valid(); it->Next()) {
    auto k = it->key();
    auto v = it->value();
    if (!fn({k.data(), k.size()}, {v.data(), v.size()})) return status::success();
  }
  return iteration_status(impl, c, *it);
}

}  // namespace

status store::scan_range(column c, std::string_view begin, std::string_view end,
                         const std::function<bool(std::string_view, std::string_view)>& fn) const {
  return scan_at(*impl_, c, begin, end, nullptr, fn);
}

class store::snapshot {
 public:
  snapshot(rocksdb::DB* db, const rocksdb::Snapshot* s) : db_(db), snap_(s) {}
  ~snapshot() { db_->ReleaseSnapshot(snap_); }
  snapshot(const snapshot&) = delete;
  snapshot& operator=(const snapshot&) = delete;
  const rocksdb::Snapshot* get() const { return snap_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

std::shared_ptr<const store::snapshot> store::take_snapshot() const {
  if (!impl_->db) return nullptr;
  return std::make_shared<const snapshot>(impl_->db.get(), impl_->db->GetSnapshot());
}

status store::scan_range(column c, std::string_view begin, std::string_view end, const snapshot& at,
                         const std::function<bool(std::string_view, std::string_view)>& fn) const {
  return scan_at(*impl_, c, begin, end, at.get(), fn);
}

status store::scan_range_reverse(column c, std::string_view begin, std::string_view end,
                                 const std::function<bool(std::string_view, std::string_view)>& fn) const {
  if (!impl_->db) return fail(impl_->options.path + ": scan after close()");
  rocksdb::ReadOptions read_options;
  rocksdb::Slice lower = slice(begin);
  read_options.iterate_lower_bound = &lower;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(read_options, impl_->handle(c)));
  if (end.empty())
    it->SeekToLast();
  else
    it->SeekForPrev(slice(end));
  // SeekForPrev lands on `end` itself when it exists: the range excludes it.
  if (it->Valid() && !end.empty() && it->key() == slice(end)) it->Prev();
  for (; it->Valid(); it->Prev()) {
    auto k = it->key();
    auto v = it->value();
    if (!fn({k.data(), k.size()}, {v.data(), v.size()})) return status::success();
  }
  return iteration_status(*impl_, c, *it);
}

status store::compact(column c) {
  if (!impl_->db) return fail(impl_->options.path + ": compact after close()");
  if (impl_->failed.load()) return fail(impl_->failure_reason());
  rocksdb::CompactRangeOptions options;
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  auto st = impl_->db->CompactRange(options, impl_->handle(c), nullptr, nullptr);
  if (!st.ok()) return fail(impl_->options.path + ": compaction failed: " + st.ToString());
  return status::success();
}

status store::delete_range(column c, std::string_view begin, std::string_view end) {
  if (!impl_->db) return fail(impl_->options.path + ": delete_range after close()");
  std::lock_guard lock(impl_->write_mu);  // a write: not after a failed one (see impl::write)
  if (impl_->failed.load()) return fail(impl_->failure_reason());
  auto st = impl_->db->DeleteRange(rocksdb::WriteOptions(), impl_->handle(c), slice(begin), slice(end));
  if (!st.ok()) impl_->enter_failed(impl_->options.path + ": delete_range failed: " + st.ToString());
  if (!st.ok()) return fail(impl_->options.path + ": delete_range failed: " + st.ToString());
  return status::success();
}

result<uint64_t> store::approximate_size(column c, std::string_view begin, std::string_view end) const {
  if (!impl_->db) return fail(impl_->options.path + ": approximate_size after close()");
  rocksdb::Range range(slice(begin), slice(end));
  rocksdb::SizeApproximationOptions options;
  options.include_memtables = true;
  options.include_files = true;
  uint64_t size = 0;
  auto st = impl_->db->GetApproximateSizes(options, impl_->handle(c), &range, 1, &size);
  if (!st.ok()) return fail(impl_->options.path + ": cannot estimate sizes: " + st.ToString());
  return size;
}

status store::scan_prefix(column c, std::string_view prefix,
                          const std::function<bool(std::string_view, std::string_view)>& fn) const {
  return scan_range(c, prefix, prefix_successor(prefix), fn);
}

status store::write_now(commit_batch&& batch, bool sync) {
  if (!impl_->db) return fail(impl_->options.path + ": write_now after close()");
  rocksdb::WriteBatch wb;
  impl_->add_ops(wb, batch);
  auto st = impl_->write(wb, sync);
  if (!st.ok()) return fail(impl_->options.path + ": write failed: " + st.ToString());
  return status::success();
}

uint64_t store::next_sequence() { return impl_->next_seq.fetch_add(1); }

void store::raise_sequence(uint64_t at_least) {
  uint64_t current = impl_->next_seq.load();
  while (current <= at_least && !impl_->next_seq.compare_exchange_weak(current, at_least + 1)) {
  }
}

uint32_t store::key_groups() const { return impl_->options.key_group_count; }

const std::string& store::store_id() const { return impl_->store_id; }

const std::string& store::incarnation() const { return impl_->incarnation; }

std::optional<int64_t> store::upgraded_from_format1_at_ms() const { return impl_->upgraded_at_ms; }

const std::string& store::path() const { return impl_->options.path; }

void store::close() {
  std::lock_guard lock(impl_->close_mu);
  if (impl_->closed) return;
  impl_->stop_threads();
  impl_->release_db();
  impl_->closed = true;
}

void store::impl::release_db() {
  if (!db) return;
  // Only fails for the default family's handle, which Open did not return.
  for (auto* h : handles) (void)db->DestroyColumnFamilyHandle(h);
  handles.clear();
  // Everything acknowledged is already in the log; a failing close (e.g.
  // after a failed write) loses nothing more, but the operator should know.
  if (auto st = db->Close(); !st.ok())
    std::fprintf(stderr, "flowstate store: %s: closing: %s\n", options.path.c_str(), st.ToString().c_str());
  db.reset();
}

store::impl::~impl() {
  stop_threads();
  release_db();
}

void store::impl::fatal(const std::string& what, const rocksdb::Status& s) {
  auto message = options.path + ": " + what + ": " + s.ToString();
  if (options.on_fatal_error) {
    options.on_fatal_error(message);
    return;
  }
  std::fprintf(stderr, "flowstate store: fatal: %s\n", message.c_str());
  std::abort();
}

}  // namespace flowstate
