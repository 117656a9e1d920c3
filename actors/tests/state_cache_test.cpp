#include <doctest/doctest.h>

#include "../src/state_cache.hpp"

using namespace flowstate::engine_detail;

TEST_CASE("the state cache keeps the most recently used entries within its budget") {
  state_cache cache(1000);
  for (int i = 0; i < 20; ++i) cache.put("key" + std::to_string(i), std::string(100, 'x'));
  cache.trim(0);
  CHECK(cache.bytes() <= 1000);
  CHECK(cache.find("key19") != nullptr);
  CHECK(cache.find("key0") == nullptr);
}

TEST_CASE("a cached entry whose commit is not written yet is never evicted") {
  state_cache cache(500);
  cache.put("pending", std::string(100, 'p'));
  cache.written_by("pending", 7);
  for (int i = 0; i < 20; ++i) cache.put("read" + std::to_string(i), std::string(100, 'r'));
  cache.trim(6);  // commit 7 is not written yet
  REQUIRE(cache.find("pending") != nullptr);
  CHECK(**cache.find("pending") == std::string(100, 'p'));
  cache.put("more", std::string(100, 'm'));
  cache.trim(7);  // now it is: the pending entry may go like any other
  CHECK(cache.bytes() <= 500);
}

TEST_CASE("a key known to have no state is cached as such, and replacing a value keeps the byte count exact") {
  state_cache cache(10000);
  cache.put("gone", std::nullopt);
  REQUIRE(cache.find("gone") != nullptr);
  CHECK(!cache.find("gone")->has_value());
  cache.put("k", std::string(500, 'a'));
  auto with_long = cache.bytes();
  cache.put("k", std::string(10, 'b'));
  CHECK(cache.bytes() == with_long - 490);
  CHECK(cache.size() == 2);
}

TEST_CASE("using an entry makes it the last to be evicted") {
  state_cache cache(900);  // four entries of about 200 bytes
  for (int i = 0; i < 3; ++i) cache.put("k" + std::to_string(i), std::string(100, 'x'));
  CHECK(cache.find("k0") != nullptr);  // k0 is now the most recently used
  for (int i = 3; i < 6; ++i) cache.put("k" + std::to_string(i), std::string(100, 'x'));
  cache.trim(0);
  CHECK(cache.find("k0") != nullptr);
  CHECK(cache.find("k1") == nullptr);
}
