#include "flowstate/runtime/store.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "store_test_util.hpp"

using namespace flowstate;
using flowstate::test::require_ready;
using flowstate::test::temp_dir;
using flowstate::test::value_of;

namespace {

std::unique_ptr<store> open_store(const std::string& path, uint32_t groups = key_group_count) {
  store_options options;
  options.path = path;
  options.key_group_count = groups;
  auto s = store::open(options);
  INFO((s.ok() ? std::string() : s.error()));
  REQUIRE(s.ok());
  return std::move(*s);
}

// Commits and waits for the acknowledgement.
void commit_and_wait(store& db, commit_batch&& batch, durability_mode mode) {
  std::promise<void> done;
  auto f = done.get_future();
  db.commit(std::move(batch), mode, [&] { done.set_value(); });
  require_ready(f);
}

}  // namespace

TEST_CASE("concurrent commits are each acknowledged exactly once and all readable after") {
  temp_dir dir;
  auto db = open_store(dir.path());
  constexpr int threads = 8;
  constexpr int per_thread = 500;
  std::vector<std::atomic<int>> fired(threads * per_thread);
  std::atomic<int> total{0};
  std::promise<void> all_done;
  auto all = all_done.get_future();

  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        int id = t * per_thread + i;
        commit_batch b;
        b.put(column::state, state_key(1, 1, key_group_of(std::to_string(id)), "f", "b", std::to_string(id)),
              "v" + std::to_string(id));
        b.put(column::queue, queue_key(1, 1, 0, db->next_sequence()), "msg");
        b.add_count(executions_key(1, 1, 0), 1);
        auto mode = id % 3 == 0 ? durability_mode::relaxed : durability_mode::sync;
        db->commit(std::move(b), mode, [&, id] {
          fired[id].fetch_add(1);
          if (total.fetch_add(1) + 1 == threads * per_thread) all_done.set_value();
        });
      }
    });
  for (auto& w : workers) w.join();
  require_ready(all);
  db->close();  // drains: any duplicate acknowledgement would show below

  for (int id = 0; id < threads * per_thread; ++id) CHECK(fired[id].load() == 1);
  auto reopened = open_store(dir.path());
  for (int id = 0; id < threads * per_thread; ++id) {
    auto v = value_of(*reopened, column::state,
                      state_key(1, 1, key_group_of(std::to_string(id)), "f", "b", std::to_string(id)));
    REQUIRE(v.has_value());
    CHECK(*v == "v" + std::to_string(id));
  }
  int queued = 0;
  CHECK(reopened
            ->scan_prefix(column::queue, queue_prefix(1, 1, 0),
                          [&](auto, auto) {
                            ++queued;
                            return true;
                          })
            .ok());
  CHECK(queued == threads * per_thread);
  auto count = value_of(*reopened, column::metering, executions_key(1, 1, 0));
  REQUIRE(count.has_value());
  CHECK(decode_count(*count) == uint64_t(threads * per_thread));
}

TEST_CASE("a relaxed commit is acknowledged while the sync thread is busy") {
  temp_dir dir;
  auto db = open_store(dir.path());
  std::promise<void> relaxed_acked;
  std::shared_future<void> relaxed_future = relaxed_acked.get_future().share();
  std::promise<void> sync_entered;
  auto sync_entered_future = sync_entered.get_future();
  std::atomic<bool> later_sync_acked{false};

  // The first sync acknowledgement holds the sync thread until the relaxed
  // commit is acknowledged: if relaxed commits waited for a sync, this would
  // never finish.
  commit_batch first;
  first.put(column::state, "s1", "1");
  db->commit(std::move(first), durability_mode::sync, [&, relaxed_future] {
    sync_entered.set_value();
    relaxed_future.wait();
  });
  require_ready(sync_entered_future);

  commit_batch later;
  later.put(column::state, "s2", "2");
  std::promise<void> later_done;
  auto later_future = later_done.get_future();
  db->commit(std::move(later), durability_mode::sync, [&] {
    later_sync_acked = true;
    later_done.set_value();
  });

  std::atomic<bool> later_acked_before_relaxed{true};
  commit_batch relaxed;
  relaxed.put(column::state, "r", "3");
  db->commit(std::move(relaxed), durability_mode::relaxed, [&] {
    // The sync thread is still inside the first callback.
    later_acked_before_relaxed = later_sync_acked.load();
    relaxed_acked.set_value();
  });
  auto main_view = relaxed_future;
  REQUIRE(main_view.wait_for(std::chrono::minutes(2)) == std::future_status::ready);
  CHECK_FALSE(later_acked_before_relaxed.load());
  CHECK(value_of(*db, column::state, "r") == std::optional<std::string>("3"));
  require_ready(later_future);
}

TEST_CASE("commits apply in submission order") {
  temp_dir dir;
  auto db = open_store(dir.path());
  constexpr int n = 2000;
  std::atomic<int> acked{0};
  std::atomic<int> out_of_order{0};
  std::atomic<int> last_relaxed{-1};
  std::promise<void> done;
  auto f = done.get_future();
  for (int i = 0; i < n; ++i) {
    commit_batch b;
    b.put(column::state, "same-key", std::to_string(i));
    if (i % 2 == 0)
      b.erase(column::state, "erased-key");
    else
      b.put(column::state, "erased-key", std::to_string(i));
    auto mode = i % 5 == 0 ? durability_mode::sync : durability_mode::relaxed;
    db->commit(std::move(b), mode, [&, i, mode] {
      // Relaxed acknowledgements come from the writer in submission order.
      if (mode == durability_mode::relaxed) {
        if (last_relaxed.load() > i) ++out_of_order;
        last_relaxed = i;
      }
      if (acked.fetch_add(1) + 1 == n) done.set_value();
    });
  }
  require_ready(f);
  CHECK(out_of_order.load() == 0);
  CHECK(value_of(*db, column::state, "same-key") == std::optional<std::string>(std::to_string(n - 1)));
  CHECK(value_of(*db, column::state, "erased-key") == std::optional<std::string>(std::to_string(n - 1)));
}

TEST_CASE("close acknowledges every pending commit") {
  temp_dir dir;
  auto db = open_store(dir.path());
  std::atomic<int> acked{0};
  for (int i = 0; i < 1000; ++i) {
    commit_batch b;
    b.put(column::trace, "t" + std::to_string(i), "x");
    db->commit(std::move(b), i % 2 ? durability_mode::sync : durability_mode::relaxed, [&] { ++acked; });
  }
  db->close();
  CHECK(acked.load() == 1000);
  db->close();  // idempotent
  commit_batch after;
  after.put(column::trace, "late", "x");
  db->commit(std::move(after), durability_mode::relaxed, [&] { ++acked; });
  CHECK(acked.load() == 1000);
  CHECK_FALSE(db->read(column::trace, "t1").ok());  // closed: an error, not "absent"
}

TEST_CASE("reopening keeps the data and the format record") {
  temp_dir dir;
  {
    auto db = open_store(dir.path());
    commit_batch b;
    b.put(column::errors, error_key(2, 3, 0, 1), "boom");
    commit_and_wait(*db, std::move(b), durability_mode::sync);
  }
  auto db = open_store(dir.path());
  CHECK(value_of(*db, column::errors, error_key(2, 3, 0, 1)) == std::optional<std::string>("boom"));
  CHECK(value_of(*db, column::meta, "format_version") == std::optional<std::string>("2"));
  CHECK(value_of(*db, column::meta, "key_group_count") == std::optional<std::string>("4096"));
  CHECK(db->key_groups() == key_group_count);
}

TEST_CASE("reopening with a different key_group_count is refused") {
  temp_dir dir;
  open_store(dir.path());
  store_options options;
  options.path = dir.path();
  options.key_group_count = 1024;
  auto s = store::open(options);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error() == dir.path() +
                         ": the store was created with key_group_count 4096, this node is "
                         "configured for 1024; refusing to open it");
  // The refused open left the store intact.
  open_store(dir.path());
}

TEST_CASE("reopening a store of a newer format_version is refused") {
  temp_dir dir;
  {
    auto db = open_store(dir.path());
    commit_batch b;
    b.put(column::meta, "format_version", "3");
    REQUIRE(db->write_now(std::move(b), true).ok());
  }
  store_options options;
  options.path = dir.path();
  auto s = store::open(options);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().find("format_version 3, this node reads format 2") != std::string::npos);
}

TEST_CASE("sequences keep increasing across reopen") {
  temp_dir dir;
  uint64_t last = 0;
  for (int round = 0; round < 3; ++round) {
    auto db = open_store(dir.path());
    for (int i = 0; i < 100; ++i) {
      auto seq = db->next_sequence();
      CHECK(seq > last);
      last = seq;
    }
    // Sequences allocated and then written by a commit are covered by the
    // high-water mark persisted with that write.
    commit_batch b;
    b.put(column::queue, queue_key(1, 1, 0, last), "m");
    commit_and_wait(*db, std::move(b), round % 2 ? durability_mode::sync : durability_mode::relaxed);
  }
  auto db = open_store(dir.path());
  CHECK(db->next_sequence() > last);
}

TEST_CASE("metering counters sum their additions") {
  temp_dir dir;
  {
    auto db = open_store(dir.path());
    for (int i = 1; i <= 10; ++i) {
      commit_batch b;
      b.add_count(executions_key(1, 2, 0), i);
      b.add_count(executions_key(1, 3, 0), 1);
      db->commit(std::move(b), durability_mode::relaxed, {});
    }
    commit_batch b;
    b.add_count(executions_key(1, 2, 0), 1000);
    REQUIRE(db->write_now(std::move(b), false).ok());
    db->close();
  }
  auto db = open_store(dir.path());
  CHECK(decode_count(*value_of(*db, column::metering, executions_key(1, 2, 0))) == 1055u);
  CHECK(decode_count(*value_of(*db, column::metering, executions_key(1, 3, 0))) == 10u);
  CHECK_FALSE(value_of(*db, column::metering, executions_key(1, 4, 0)).has_value());
}

TEST_CASE("prefix and range scans return exactly the matching keys in order") {
  temp_dir dir;
  auto db = open_store(dir.path());
  commit_batch b;
  for (uint32_t group : {0u, 5u, 9u, 10u})
    for (uint64_t seq : {1ull, 2ull}) b.put(column::queue, queue_key(1, 1, group, seq), "x");
  b.put(column::queue, queue_key(1, 2, 5, 1), "other project");
  REQUIRE(db->write_now(std::move(b), false).ok());

  std::vector<std::pair<uint32_t, uint64_t>> seen;
  auto collect = [&](std::string_view key, std::string_view) {
    key_reader r(key);
    (void)r.u32();
    (void)r.u32();
    auto group = r.u32();
    auto seq = r.u64();
    seen.emplace_back(*group, *seq);
    return true;
  };
  CHECK(db->scan_prefix(column::queue, queue_prefix(1, 1, 5), collect).ok());
  CHECK(seen == std::vector<std::pair<uint32_t, uint64_t>>{{5, 1}, {5, 2}});
  seen.clear();
  auto [begin, end] = queue_range(1, 1, 5, 10);
  CHECK(db->scan_range(column::queue, begin, end, collect).ok());
  CHECK(seen == std::vector<std::pair<uint32_t, uint64_t>>{{5, 1}, {5, 2}, {9, 1}, {9, 2}});
  seen.clear();
  CHECK(db->scan_prefix(column::queue, project_prefix(1, 1), [&](auto k, auto v) {
            collect(k, v);
            return seen.size() < 3;
          }).ok());
  CHECK(seen.size() == 3);
}

TEST_CASE("a compaction drops the records its column's expiry says, and keeps the others") {
  temp_dir dir;
  store_options options;
  options.path = dir.path();
  options.expired[column::idempotency] = [](std::string_view, std::string_view value) { return value == "old"; };
  auto opened = store::open(options);
  REQUIRE(opened.ok());
  auto& db = **opened;
  commit_batch b;
  b.put(column::idempotency, "a", "old");
  b.put(column::idempotency, "b", "fresh");
  b.put(column::state, "c", "old");  // another column: no expiry there
  commit_and_wait(db, std::move(b), durability_mode::sync);
  REQUIRE(db.compact(column::idempotency).ok());
  REQUIRE(db.compact(column::state).ok());
  CHECK(!value_of(db, column::idempotency, "a"));
  CHECK(value_of(db, column::idempotency, "b") == std::optional<std::string>("fresh"));
  CHECK(value_of(db, column::state, "c") == std::optional<std::string>("old"));
}

TEST_CASE("commit tickets grow in commit order and are written through once acknowledged") {
  temp_dir dir;
  auto db = open_store(dir.path());
  uint64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    commit_batch b;
    b.put(column::state, "k" + std::to_string(i), "v");
    std::promise<void> done;
    auto f = done.get_future();
    uint64_t ticket = db->commit(std::move(b), durability_mode::relaxed, [&] { done.set_value(); });
    require_ready(f);
    CHECK(ticket > last);
    CHECK(db->written_through() >= ticket);
    last = ticket;
  }
}

TEST_CASE("a reverse scan stops before the end bound and reaches the begin bound") {
  temp_dir dir;
  auto db = open_store(dir.path());
  commit_batch b;
  for (const char* k : {"a", "b", "c", "d"}) b.put(column::trace, k, k);
  commit_and_wait(*db, std::move(b), durability_mode::relaxed);
  std::string seen;
  CHECK(db->scan_range_reverse(column::trace, "b", "d", [&](std::string_view key, std::string_view) {
            seen += key;
            return true;
          }).ok());
  CHECK(seen == "cb");
  REQUIRE(db->delete_range(column::trace, "a", "c").ok());
  seen.clear();
  CHECK(db->scan_range_reverse(column::trace, "", "", [&](std::string_view key, std::string_view) {
            seen += key;
            return true;
          }).ok());
  CHECK(seen == "dc");
}
