// Damage in the middle of the write-ahead log is refused at open and
// recovered only on request; a torn tail is tolerated.
#include "flowstate/runtime/wal_check.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <future>

#include "flowstate/runtime/store.hpp"
#include "store_test_util.hpp"

using namespace flowstate;
using flowstate::test::require_ready;
using flowstate::test::temp_dir;
using flowstate::test::value_of;

namespace {

namespace fs = std::filesystem;

constexpr int batches = 300;

std::string key_of(int i) { return "counter/" + std::to_string(1000 + i); }

// Writes `batches` acknowledged (synced) commits and closes: they are all in
// the write-ahead log only (no flush).
void write_acknowledged(const std::string& path) {
  store_options options;
  options.path = path;
  auto db = store::open(options);
  REQUIRE(db.ok());
  for (int i = 0; i < batches; ++i) {
    commit_batch b;
    b.put(column::state, key_of(i), std::string(400, char('a' + i % 26)));
    std::promise<void> done;
    auto f = done.get_future();
    (*db)->commit(std::move(b), durability_mode::sync, [&] { done.set_value(); });
    require_ready(f);
  }
  (*db)->close();
}

std::string only_log(const std::string& dir) {
  std::string found;
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".log") {
      REQUIRE(found.empty());
      found = e.path().string();
    }
  REQUIRE(!found.empty());
  return found;
}

void overwrite(const std::string& file, uint64_t offset, size_t n) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekp(static_cast<std::streamoff>(offset));
  std::string junk(n, '\xAB');
  f.write(junk.data(), static_cast<std::streamsize>(n));
}

// How many of the keys are there, and whether they are a prefix 0..k-1.
std::pair<int, bool> present(store& db) {
  int n = 0;
  bool prefix = true;
  for (int i = 0; i < batches; ++i) {
    if (value_of(db, column::state, key_of(i))) prefix = prefix && n++ == i;
  }
  return {n, prefix};
}

result<std::unique_ptr<store>> open_at(const std::string& path) {
  store_options options;
  options.path = path;
  return store::open(options);
}

}  // namespace

TEST_CASE(
    "64 bytes overwritten in the middle of the log: open refuses naming the file and offset, recover drops "
    "what follows and says so") {
  temp_dir dir;
  write_acknowledged(dir.path());
  auto log = only_log(dir.path());
  const uint64_t size = fs::file_size(log);
  REQUIRE(size > 3 * 32768);  // several blocks: intact records follow the damage
  const uint64_t at = size / 2;
  overwrite(log, at, 64);

  auto refused = open_at(dir.path());
  REQUIRE_FALSE(refused.ok());
  INFO(refused.error());
  CHECK(refused.error().find(log) != std::string::npos);
  CHECK(refused.error().find("damaged at byte offset ") != std::string::npos);
  CHECK(refused.error().find("flowstate recover") != std::string::npos);

  auto checked = check_wal(dir.path());
  REQUIRE(checked.ok());
  REQUIRE(checked->damage.has_value());
  const auto& d = *checked->damage;
  CHECK(d.file == log);
  CHECK(d.offset <= at);
  CHECK(d.offset + 32768 > at);  // in the record the bytes hit (records are smaller than a block)
  CHECK(d.dropped_batches > 0);
  CHECK(d.first_dropped_sequence > d.last_good_sequence);
  CHECK(d.dropped_bytes == size - d.offset);

  auto dry = recover_store(dir.path(), true);
  REQUIRE(dry.ok());
  CHECK_FALSE(dry->recovered);
  CHECK(dry->summary == describe(d));
  CHECK_FALSE(open_at(dir.path()).ok());  // a dry run changes nothing

  auto done = recover_store(dir.path(), false);
  REQUIRE(done.ok());
  CHECK(done->recovered);
  CHECK(fs::exists(fs::path(done->kept_copy) / fs::path(log).filename()));

  auto reopened = open_at(dir.path());
  REQUIRE(reopened.ok());
  auto [n, prefix] = present(**reopened);
  CHECK(prefix);  // a consistent prefix of the commits: nothing after the damage
  CHECK(n > 0);
  CHECK(n < batches);
  CHECK(uint64_t(batches - n) >= d.dropped_batches);  // the damaged batch(es) and the intact ones after
}

TEST_CASE("a torn tail of the log is tolerated: the store opens with every complete commit") {
  temp_dir dir;
  write_acknowledged(dir.path());
  auto log = only_log(dir.path());
  fs::resize_file(log, fs::file_size(log) - 10);  // the last record cut short, as by a crash mid-write

  auto checked = check_wal(dir.path());
  REQUIRE(checked.ok());
  CHECK_FALSE(checked->damage.has_value());
  CHECK(checked->torn_tail.has_value());
  auto opened = open_at(dir.path());
  INFO((opened.ok() ? std::string() : opened.error()));
  REQUIRE(opened.ok());
  auto [n, prefix] = present(**opened);
  CHECK(prefix);
  CHECK(n == batches - 1);
}

TEST_CASE("an intact log checks clean and recover has nothing to do") {
  temp_dir dir;
  write_acknowledged(dir.path());
  auto checked = check_wal(dir.path());
  REQUIRE(checked.ok());
  CHECK_FALSE(checked->damage.has_value());
  CHECK_FALSE(checked->torn_tail.has_value());
  CHECK(checked->batches >= uint64_t(batches));
  auto r = recover_store(dir.path(), false);
  REQUIRE(r.ok());
  CHECK_FALSE(r->recovered);
  auto opened = open_at(dir.path());
  REQUIRE(opened.ok());
  CHECK(present(**opened).first == batches);
}
