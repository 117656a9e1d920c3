#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "flowstate/runtime/keys.hpp"

using namespace flowstate;
using namespace std::string_literals;

TEST_CASE("string elements sort like the strings, embedded zero bytes included") {
  std::vector<std::string> strings = {""s,      "\0"s, "\0\0"s, "\0\x01"s, "\x01"s,     "a"s,   "a\0"s,  "a\0b"s,
                                      "a\x01"s, "ab"s, "b"s,    "\xff"s,   "\xff\xff"s, "abc"s, "a\0\0"s};
  for (const auto& x : strings)
    for (const auto& y : strings) {
      auto kx = key_builder().str(x).take();
      auto ky = key_builder().str(y).take();
      INFO("x=" << doctest::toString(x) << " y=" << doctest::toString(y));
      CHECK((kx < ky) == (x < y));
      CHECK((kx == ky) == (x == y));
    }
}

TEST_CASE("a is before a with a zero byte, which is before ab") {
  auto a = key_builder().str("a").take();
  auto a0 = key_builder().str("a\0"s).take();
  auto ab = key_builder().str("ab").take();
  CHECK(a < a0);
  CHECK(a0 < ab);
}

TEST_CASE("tuples sort element by element, a shorter tuple before its extensions") {
  using tuple = std::tuple<uint32_t, std::string, uint64_t>;
  std::vector<tuple> tuples;
  for (uint32_t a : {0u, 1u, 255u, 256u, 0xFFFFFFFFu})
    for (auto s : {""s, "a"s, "a\0"s, "ab"s, "b"s})
      for (uint64_t n : {0ull, 1ull, 0x100ull, 0xFFFFFFFFFFFFFFFFull}) tuples.emplace_back(a, s, n);
  auto encode = [](const tuple& t) {
    return key_builder().u32(std::get<0>(t)).str(std::get<1>(t)).u64(std::get<2>(t)).take();
  };
  auto by_key = tuples;
  std::sort(by_key.begin(), by_key.end(), [&](const tuple& x, const tuple& y) { return encode(x) < encode(y); });
  auto by_tuple = tuples;
  std::sort(by_tuple.begin(), by_tuple.end());
  CHECK(by_key == by_tuple);

  auto prefix = key_builder().u32(1).str("a").take();
  auto longer = key_builder().u32(1).str("a").u64(0).take();
  CHECK(prefix < longer);
  CHECK(longer.compare(0, prefix.size(), prefix) == 0);
}

TEST_CASE("a key decodes back to the elements it was built from") {
  auto bytes = key_builder().u32(7).u64(0x0102030405060708ull).str("x\0y\xff"s).str("").take();
  key_reader r(bytes);
  CHECK(r.peek() == key_tag::u32);
  auto a = r.u32();
  REQUIRE(a.ok());
  CHECK(*a == 7u);
  auto b = r.u64();
  REQUIRE(b.ok());
  CHECK(*b == 0x0102030405060708ull);
  auto c = r.str();
  REQUIRE(c.ok());
  CHECK(*c == "x\0y\xff"s);
  auto d = r.str();
  REQUIRE(d.ok());
  CHECK(*d == "");
  CHECK(r.at_end());
}

TEST_CASE("decoding a malformed key names the offset and what was expected") {
  auto bytes = key_builder().u32(7).take();
  key_reader r(bytes);
  auto s = r.str();
  REQUIRE_FALSE(s.ok());
  CHECK(s.error() == "key offset 0: expected string element (tag 0x20), found byte 0x10");

  auto truncated = key_builder().str("abc").take();
  truncated.pop_back();
  key_reader t(truncated);
  auto u = t.str();
  REQUIRE_FALSE(u.ok());
  CHECK(u.error().find("key offset") == 0);

  key_reader short_int(std::string("\x10\x00\x01", 3));
  CHECK_FALSE(short_int.u32().ok());
}

TEST_CASE("key groups are stable and within range") {
  // Fixed values: changing them would move every stored key to another group.
  CHECK(stable_hash64("") == (14695981039346656037ull ^ (14695981039346656037ull >> 32)));
  CHECK(key_group_of("") == 4033u);
  CHECK(key_group_of("device-1") == 372u);
  CHECK(key_group_of("sensor/42") == 3550u);
  CHECK(key_group_of("user@example.com") == 306u);
  for (int i = 0; i < 1000; ++i) CHECK(key_group_of(std::to_string(i)) < key_group_count);
  CHECK(key_group_of("device-1", 16) == static_cast<uint32_t>(stable_hash64("device-1") % 16));
}

TEST_CASE("key groups spread keys over all groups") {
  std::vector<int> hits(key_group_count, 0);
  for (int i = 0; i < 200000; ++i) ++hits[key_group_of("key-" + std::to_string(i))];
  CHECK(std::count(hits.begin(), hits.end(), 0) == 0);
}

TEST_CASE("layout keys start with tenant and project and order by their tuples") {
  auto prefix = project_prefix(3, 9);
  auto s = state_key(3, 9, 17, "flow", "block", "k");
  auto q = queue_key(3, 9, 17, 5);
  auto e = error_key(3, 9, 17, 5);
  auto m = executions_key(3, 9, 0);
  for (const auto& k : {s, q, e, m}) CHECK(k.compare(0, prefix.size(), prefix) == 0);
  CHECK(project_prefix(3, 10).compare(0, prefix.size(), prefix) != 0);

  CHECK(queue_key(3, 9, 17, 5) < queue_key(3, 9, 17, 6));
  CHECK(queue_key(3, 9, 17, 0xFFFFFFFFFFull) < queue_key(3, 9, 18, 0));
  CHECK(queue_key(3, 9, 17, 5).compare(0, queue_prefix(3, 9, 17).size(), queue_prefix(3, 9, 17)) == 0);
  auto [begin, end] = queue_range(3, 9, 10, 20);
  CHECK(begin <= queue_key(3, 9, 10, 0));
  CHECK(queue_key(3, 9, 19, ~0ull) < end);
  CHECK(end <= queue_key(3, 9, 20, 0));
  CHECK(error_key(3, 9, 17, 1) < error_key(3, 9, 17, 2));
  CHECK(state_key(3, 9, 17, "f", "b", "a") < state_key(3, 9, 17, "f", "b", "a\0"s));

  key_reader r(s);
  CHECK(*r.u32() == 3u);
  CHECK(*r.u32() == 9u);
  CHECK(*r.u32() == 17u);
  CHECK(*r.str() == "flow");
  CHECK(*r.str() == "block");
  CHECK(*r.str() == "k");
  CHECK(r.at_end());
}

TEST_CASE("the prefix successor bounds every key with that prefix") {
  CHECK(prefix_successor("ab") == "ac");
  CHECK(prefix_successor("a\xff"s) == "b");
  CHECK(prefix_successor("\xff\xff"s) == "");
  auto p = project_prefix(1, 2);
  CHECK(state_key(1, 2, 4095, "\xff", "\xff", "\xff") < prefix_successor(p));
}

TEST_CASE("every record of a message key is under its key group, inside the range that moves with it") {
  // A key-group range [10, 20) of project (3, 9) is one span per column.
  auto [begin, end] = queue_range(3, 9, 10, 20);
  for (const auto& k : {state_key(3, 9, 15, "f", "b", "k"), queue_key(3, 9, 15, 7), error_key(3, 9, 15, 7),
                        executions_key(3, 9, 15), error_count_key(3, 9, 15), idempotency_key(3, 9, 15, "idem-1")}) {
    CHECK(begin <= k);
    CHECK(k < end);
  }
  for (const auto& k : {error_key(3, 9, 20, 0), idempotency_key(3, 9, 9, "z"), executions_key(3, 9, 20)})
    CHECK_FALSE((begin <= k && k < end));
  // The counters of all key groups are one span, apart from the node's own.
  auto [cb, ce] = key_group_counters_range(3, 9);
  CHECK(cb <= executions_key(3, 9, 0));
  CHECK(error_count_key(3, 9, key_group_count - 1) < ce);
  CHECK_FALSE(legacy_idempotency_key(3, 9, "idem-1") < ce);
}

TEST_CASE("error ids name their key group and sequence, and anything else is refused") {
  CHECK(error_id(17, 4711) == "17-4711");
  auto parsed = parse_error_id("17-4711");
  REQUIRE(parsed.has_value());
  CHECK(parsed->first == 17u);
  CHECK(parsed->second == 4711u);
  for (auto bad : {"4711", "-4711", "17-", "17-x", "4096-1", "a-1", "", "17-4711-1"})
    CHECK_FALSE(parse_error_id(bad).has_value());
}
