// The store under disk faults (fault.hpp, a fault-injecting RocksDB file
// system in builds with FLOWSTATE_FAULT_INJECTION): read errors, a full
// disk, a failed fsync.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "flowstate/runtime/fault.hpp"
#include "flowstate/runtime/store.hpp"
#include "store_test_util.hpp"

using namespace flowstate;
using flowstate::test::require_ready;
using flowstate::test::temp_dir;
using flowstate::test::value_of;

#if !defined(FLOWSTATE_FAULT_INJECTION)
#error "store_fault_test needs a build with FLOWSTATE_FAULT_INJECTION (the default)"
#endif

namespace {

// Disarms a fault when the test case ends, whatever happens.
struct armed_fault {
  explicit armed_fault(disk_fault f) : fault(f) { set_disk_fault(f, true); }
  ~armed_fault() { disarm(); }
  void disarm() { set_disk_fault(fault, false); }
  disk_fault fault;
};

std::unique_ptr<store> open_store(const std::string& path, std::function<void(const std::string&)> on_fatal = {}) {
  store_options options;
  options.path = path;
  options.on_fatal_error = std::move(on_fatal);
  auto s = store::open(options);
  INFO((s.ok() ? std::string() : s.error()));
  REQUIRE(s.ok());
  return std::move(*s);
}

// The outcome of one commit: "durable", or "failed: <reason>".
std::future<std::string> commit(store& db, const std::string& key, const std::string& value, durability_mode mode,
                                uint64_t epoch = 0) {
  auto done = std::make_shared<std::promise<std::string>>();
  auto outcome = done->get_future();
  commit_batch b;
  b.put(column::state, key, value);
  db.commit(
      std::move(b), mode, [done] { done->set_value("durable"); },
      [done](const std::string& reason) { done->set_value("failed: " + reason); }, epoch);
  return outcome;
}

std::string wait(std::future<std::string> f) {
  require_ready(f);
  return f.get();
}

}  // namespace

TEST_CASE("a read error is an error, never an absent key") {
  temp_dir dir;
  auto db = open_store(dir.path());
  REQUIRE(wait(commit(*db, "counter", "41", durability_mode::sync)) == "durable");
  REQUIRE(db->compact(column::state).ok());  // into a table file, which the fault reaches
  {
    armed_fault fault(disk_fault::read_fails);
    auto v = db->read(column::state, "counter");
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().find("cannot read column state") != std::string::npos);
    CHECK(v.error().find("read failed") != std::string::npos);
    int seen = 0;
    auto scanned = db->scan_prefix(column::state, "", [&](auto, auto) { return ++seen, true; });
    CHECK_FALSE(scanned.ok());
  }
  CHECK(value_of(*db, column::state, "counter") == std::optional<std::string>("41"));
  CHECK(value_of(*db, column::state, "absent") == std::nullopt);
}

TEST_CASE("a write that fails for lack of space acknowledges nothing and fails every commit until the store resumes") {
  temp_dir dir;
  auto db = open_store(dir.path());
  REQUIRE(wait(commit(*db, "a", "1", durability_mode::sync)) == "durable");
  const uint64_t before = db->epoch();
  CHECK(db->health().ok());
  {
    armed_fault full(disk_fault::disk_full);
    auto first = wait(commit(*db, "a", "2", durability_mode::relaxed));
    CHECK(first.find("failed: ") == 0);
    CHECK(first.find("no space") != std::string::npos);
    CHECK_FALSE(db->health().ok());
    CHECK(db->epoch() != before);
    // Later commits are not written, even of another key, in either mode.
    CHECK(wait(commit(*db, "b", "1", durability_mode::sync)).find("failed: ") == 0);
    CHECK(wait(commit(*db, "b", "1", durability_mode::relaxed)).find("failed: ") == 0);
    CHECK_FALSE(db->resume().ok());  // still full
    CHECK_FALSE(db->health().ok());
  }
  {
    auto resumed = db->resume();
    INFO((resumed.ok() ? std::string() : resumed.error()));
    REQUIRE(resumed.ok());
  }
  CHECK(db->health().ok());
  const uint64_t resumed = db->epoch();
  // A commit computed in the epoch of the failure is refused; a new one is written.
  CHECK(wait(commit(*db, "a", "stale", durability_mode::sync, before + 1)).find("failed: ") == 0);
  CHECK(wait(commit(*db, "a", "3", durability_mode::sync, resumed)) == "durable");
  CHECK(value_of(*db, column::state, "a") == std::optional<std::string>("3"));
  CHECK(value_of(*db, column::state, "b") == std::nullopt);
  db->close();
  auto reopened = open_store(dir.path());
  CHECK(value_of(*reopened, column::state, "a") == std::optional<std::string>("3"));
  CHECK(value_of(*reopened, column::state, "b") == std::nullopt);
}

TEST_CASE("a failed fsync is not retried: nothing it covers is acknowledged and the store stops") {
  temp_dir dir;
  std::mutex mu;
  std::vector<std::string> fatal;
  {
    auto db = open_store(dir.path(), [&](const std::string& m) {
      std::lock_guard lock(mu);
      fatal.push_back(m);
    });
    REQUIRE(wait(commit(*db, "before", "1", durability_mode::sync)) == "durable");
    armed_fault sync_fails(disk_fault::sync_fails);
    std::atomic<int> acknowledged{0};
    commit_batch b;
    b.put(column::state, "during", "1");
    db->commit(std::move(b), durability_mode::sync, [&] { ++acknowledged; });
    db->close();  // drains the writer and the sync thread
    CHECK(acknowledged.load() == 0);
    std::lock_guard lock(mu);
    REQUIRE(fatal.size() == 1);
    CHECK(fatal[0].find("WAL sync failed") != std::string::npos);
  }
  // The next start recovers from what the log holds.
  auto db = open_store(dir.path());
  CHECK(value_of(*db, column::state, "before") == std::optional<std::string>("1"));
}
