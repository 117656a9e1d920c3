// Upgrading a format-1 data directory to format 2 (records of a key under
// its key group), including one whose upgrade was interrupted.
#include <doctest/doctest.h>

#include "flowstate/runtime/store.hpp"
#include "store_test_util.hpp"

using namespace flowstate;
using flowstate::test::temp_dir;
using flowstate::test::value_of;

namespace {

result<std::unique_ptr<store>> try_open(const std::string& path) {
  store_options options;
  options.path = path;
  return store::open(options);
}

std::unique_ptr<store> open_store(const std::string& path) {
  auto s = try_open(path);
  INFO((s.ok() ? std::string() : s.error()));
  REQUIRE(s.ok());
  return std::move(*s);
}

void write(store& db, commit_batch&& b) { REQUIRE(db.write_now(std::move(b), true).ok()); }

// Format 1's keys, as its engine wrote them.
std::string v1_error_key(uint32_t tenant, uint32_t project, uint64_t seq) {
  return key_builder().u32(tenant).u32(project).u64(seq).take();
}
std::string v1_error(uint64_t seq, const std::string& key_json) {
  return "{\"id\":\"" + std::to_string(seq) +
         "\",\"type\":\"Exception\",\"message\":\"boom\",\"flow\":\"f\","
         "\"block\":\"b\",\"key\":" +
         key_json + ",\"messageId\":\"m\",\"details\":{},\"input\":null}";
}

// Turns the freshly created store at `path` into a format-1 store holding
// two errors of project (1, 2), its counters and a stored response.
void make_format1_store(const std::string& path) {
  auto db = open_store(path);
  commit_batch b;
  b.put(column::errors, v1_error_key(1, 2, 5), v1_error(5, "\"dev-1\""));
  b.put(column::errors, v1_error_key(1, 2, 6), v1_error(6, "\"dev \\\"2\\\"\""));
  b.add_count(project_prefix(1, 2), 42);                                         // executions
  b.add_count(key_builder().u32(1).u32(2).str("errors").take(), 2);              // errors queued
  b.put(column::idempotency, legacy_idempotency_key(1, 2, "idem-1"), "stored");  // a stored response
  b.put(column::meta, "format_version", "1");
  write(*db, std::move(b));
}

uint64_t count_at(store& db, const std::string& key) {
  auto v = value_of(db, column::metering, key);
  return v ? decode_count(*v) : 0;
}

void check_upgraded(store& db) {
  const auto g1 = key_group_of("dev-1"), g2 = key_group_of("dev \"2\"");
  auto e1 = value_of(db, column::errors, error_key(1, 2, g1, 5));
  auto e2 = value_of(db, column::errors, error_key(1, 2, g2, 6));
  REQUIRE(e1.has_value());
  REQUIRE(e2.has_value());
  CHECK(e1->rfind("{\"id\":\"" + error_id(g1, 5) + "\"", 0) == 0);
  CHECK(e2->rfind("{\"id\":\"" + error_id(g2, 6) + "\"", 0) == 0);
  CHECK_FALSE(value_of(db, column::errors, v1_error_key(1, 2, 5)).has_value());
  CHECK_FALSE(value_of(db, column::errors, v1_error_key(1, 2, 6)).has_value());
  CHECK(count_at(db, executions_key(1, 2, 0)) == 42u);
  CHECK_FALSE(value_of(db, column::metering, project_prefix(1, 2)).has_value());
  CHECK_FALSE(value_of(db, column::metering, key_builder().u32(1).u32(2).str("errors").take()).has_value());
  if (g1 == g2) {
    CHECK(count_at(db, error_count_key(1, 2, g1)) == 2u);
  } else {
    CHECK(count_at(db, error_count_key(1, 2, g1)) == 1u);
    CHECK(count_at(db, error_count_key(1, 2, g2)) == 1u);
  }
  // Stored responses stay where they were, read there while they live.
  CHECK(value_of(db, column::idempotency, legacy_idempotency_key(1, 2, "idem-1")) ==
        std::optional<std::string>("stored"));
  CHECK(db.upgraded_from_format1_at_ms().has_value());
}

}  // namespace

TEST_CASE("a format-1 store is upgraded at open: errors and counters move under their key groups") {
  temp_dir dir;
  make_format1_store(dir.path());
  {
    auto db = open_store(dir.path());
    check_upgraded(*db);
  }
  // Opening again changes nothing (counters are not counted twice).
  auto db = open_store(dir.path());
  check_upgraded(*db);
}

TEST_CASE("an upgrade interrupted after moving some errors finishes at the next open, counting each once") {
  temp_dir dir;
  make_format1_store(dir.path());
  {
    // Open (which upgrades), then put the store back into the state a
    // crash after the first batch of error moves leaves: error 5 moved,
    // error 6 still at its format-1 key, counters as format 1 had them, the
    // format record saying the upgrade is under way (a format-1 node refuses
    // that value: it is not a number).
    auto db = open_store(dir.path());
    const auto g1 = key_group_of("dev-1");
    commit_batch b;
    const auto g2 = key_group_of("dev \"2\"");
    auto e2 = value_of(*db, column::errors, error_key(1, 2, g2, 6));
    REQUIRE(e2.has_value());
    b.erase(column::errors, error_key(1, 2, g2, 6));
    b.put(column::errors, v1_error_key(1, 2, 6), v1_error(6, "\"dev \\\"2\\\"\""));
    b.put(column::metering, error_count_key(1, 2, g1), encode_count(7));  // a stale count, to be recounted
    b.erase(column::metering, executions_key(1, 2, 0));
    b.add_count(project_prefix(1, 2), 42);
    b.add_count(key_builder().u32(1).u32(2).str("errors").take(), 2);
    b.put(column::meta, "format_version", "1-upgrading-to-2");  // what the upgrade writes first
    write(*db, std::move(b));
  }
  auto db = open_store(dir.path());
  check_upgraded(*db);
  CHECK(value_of(*db, column::meta, "format_version") == std::optional<std::string>("2"));
}

TEST_CASE("a store written by a newer format is refused with the versions named") {
  temp_dir dir;
  {
    auto db = open_store(dir.path());
    commit_batch b;
    b.put(column::meta, "format_version", "3");
    write(*db, std::move(b));
  }
  auto s = try_open(dir.path());
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().find("format_version 3") != std::string::npos);
  CHECK(s.error().find("this node reads format 2") != std::string::npos);
}

TEST_CASE("a data directory keeps its store id across opens and gets a new incarnation at each") {
  temp_dir dir;
  std::string id, first;
  {
    auto db = open_store(dir.path());
    id = db->store_id();
    first = db->incarnation();
    CHECK(id.size() == 32);
    CHECK(first.size() == 16);
    CHECK_FALSE(db->upgraded_from_format1_at_ms().has_value());
  }
  auto db = open_store(dir.path());
  CHECK(db->store_id() == id);
  CHECK(db->incarnation() != first);
  temp_dir other;
  CHECK(open_store(other.path())->store_id() != id);
}

TEST_CASE("raising the sequence above a range copied in keeps later sequences above it") {
  temp_dir dir;
  auto db = open_store(dir.path());
  auto before = db->next_sequence();
  db->raise_sequence(before + 1000);
  CHECK(db->next_sequence() == before + 1001);
  db->raise_sequence(5);  // lower: no effect
  CHECK(db->next_sequence() == before + 1002);
}
