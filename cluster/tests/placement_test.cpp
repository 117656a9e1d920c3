// Placement records and rules (no etcd needed).
#include "flowstate/cluster/placement.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>

using namespace flowstate::cluster;

namespace {
node_info node(std::string name, std::string store) {
  node_info n;
  n.name = std::move(name);
  n.store_id = std::move(store);
  return n;
}
}  // namespace

TEST_CASE("the first placement splits the key groups evenly over the nodes in name order at epoch 1") {
  std::vector<node_info> nodes{node("c", "sc"), node("a", "sa"), node("b", "sb")};
  auto p = initial_placement(nodes, 4096);
  REQUIRE(p.ranges.size() == 3);
  CHECK(p.ranges[0] == range_owner{0, 1366, "a", "sa", 1});
  CHECK(p.ranges[1] == range_owner{1366, 2731, "b", "sb", 1});
  CHECK(p.ranges[2] == range_owner{2731, 4096, "c", "sc", 1});
  CHECK_FALSE(p.problem(4096).has_value());
  CHECK(p.owner_of(0)->node == "a");
  CHECK(p.owner_of(1365)->node == "a");
  CHECK(p.owner_of(1366)->node == "b");
  CHECK(p.owner_of(4095)->node == "c");
  CHECK(p.owner_of(4096) == nullptr);
  CHECK(initial_placement({}, 4096).ranges.empty());
  CHECK(initial_placement(nodes, 2).ranges.size() == 2);  // never an empty range
}

TEST_CASE("a placement with a gap, an overlap or a range past the end names the problem") {
  placement p;
  p.ranges = {{0, 10, "a", "s", 1}, {12, 4096, "b", "s", 1}};
  CHECK(p.problem(4096) == "key groups [10, 12) have no owner");
  p.ranges = {{0, 10, "a", "s", 1}, {8, 4096, "b", "s", 1}};
  CHECK(p.problem(4096) == "range [8, 4096) on b overlaps the range before it");
  p.ranges = {{0, 5000, "a", "s", 1}};
  CHECK(p.problem(4096) == "range [0, 5000) on a goes past the 4096 key groups");
  p.ranges = {{0, 100, "a", "s", 1}};
  CHECK(p.problem(4096) == "key groups [100, 4096) have no owner");
  CHECK(p.owner_of(100) == nullptr);
}

TEST_CASE("node and range records round-trip through their JSON, and a bad one names what is wrong") {
  node_info n{"node-\"1\"", "0123abcd", "ffee", "127.0.0.1:7000", "127.0.0.1:8080", "127.0.0.1:8081"};
  auto back = decode_node(encode_node(n));
  REQUIRE(back.ok());
  CHECK(back->name == n.name);
  CHECK(back->store_id == n.store_id);
  CHECK(back->peer == n.peer);
  range_owner r{100, 200, "b", "s1", 7};
  auto rb = decode_range(encode_range(r));
  REQUIRE(rb.ok());
  CHECK(*rb == r);
  auto bad = decode_range(R"({"first":5,"end":5,"node":"a","storeId":"s","epoch":1})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error() == "placement record: range [5, 5) is empty or too large");
  auto missing = decode_node(R"({"name":"a"})");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error() == "node record: no \"storeId\"");
  CHECK_FALSE(decode_range("[1]").ok());
}

TEST_CASE("moving part of a range splits it: the moved part to the new owner at the next epoch, the rest kept") {
  range_owner r{100, 200, "a", "sa", 3};
  auto mid = split_for_move(r, 120, 150, "b", "sb");
  REQUIRE(mid.size() == 3);
  CHECK(mid[0] == range_owner{100, 120, "a", "sa", 3});
  CHECK(mid[1] == range_owner{120, 150, "b", "sb", 4});
  CHECK(mid[2] == range_owner{150, 200, "a", "sa", 3});
  auto whole = split_for_move(r, 100, 200, "c", "sc");
  REQUIRE(whole.size() == 1);
  CHECK(whole[0] == range_owner{100, 200, "c", "sc", 4});
  CHECK(split_for_move(r, 100, 150, "b", "sb").size() == 2);
}

namespace {
range_owner r_part(range_owner r, uint32_t first, uint32_t end) {
  r.first = first;
  r.end = end;
  return r;
}
}  // namespace

TEST_CASE("a move of a replicated range keeps its other followers and never lists the target as a follower") {
  range_owner r{0, 100, "a", "sa", 7, {{"b", "sb"}, {"c", "sc"}, {"d", "sd"}}, {"a", "b", "c"}};
  auto parts = split_for_move(r, 50, 100, "b", "sb2");
  REQUIRE(parts.size() == 2);
  // The part kept by a: b gave up its copy.
  CHECK(parts[0] == range_owner{0, 50, "a", "sa", 7, {{"c", "sc"}, {"d", "sd"}}, {"a", "c"}});
  // The moved part: led by b at the next epoch; c (in sync) and d (not)
  // stay followers; the old leader is neither.
  CHECK(parts[1] == range_owner{50, 100, "b", "sb2", 8, {{"c", "sc"}, {"d", "sd"}}, {"b", "c"}});
  // To a node that was no follower: the followers and the in-sync ones stay.
  auto whole = split_for_move(r, 0, 100, "e", "se");
  REQUIRE(whole.size() == 1);
  CHECK(whole[0] == range_owner{0, 100, "e", "se", 8, {{"b", "sb"}, {"c", "sc"}, {"d", "sd"}}, {"e", "b", "c"}});
  // A transfer to an in-sync follower: it leads the moved part from its
  // copy and stays a follower of the rest.
  auto handed = split_for_move(r, 50, 100, "b", "sb", true);
  REQUIRE(handed.size() == 2);
  CHECK(handed[0] == r_part(r, 0, 50));
  CHECK(handed[1] == range_owner{50, 100, "b", "sb", 8, {{"c", "sc"}, {"d", "sd"}, {"a", "sa"}}, {"b", "a", "c"}});
  CHECK(without_follower(r, "c") == range_owner{0, 100, "a", "sa", 7, {{"b", "sb"}, {"d", "sd"}}, {"a", "b"}});
  CHECK(without_follower(r, "a") ==
        range_owner{0, 100, "a", "sa", 7, {{"b", "sb"}, {"c", "sc"}, {"d", "sd"}}, {"a", "b", "c"}});
}

TEST_CASE("unset, replication is 3 copies with 2 in sync from three nodes, 2 and 2 with two, none with one") {
  CHECK(effective_config({}, 5) == cluster_config{3, 2});
  CHECK(effective_config({}, 3) == cluster_config{3, 2});
  CHECK(effective_config({}, 2) == cluster_config{2, 2});
  CHECK(effective_config({}, 1) == cluster_config{1, 1});
  CHECK(effective_config({}, 0) == cluster_config{1, 1});
  // Set: never more copies than nodes; min_in_sync as set.
  CHECK(effective_config({1, 1}, 3) == cluster_config{1, 1});
  CHECK(effective_config({5, 3}, 4) == cluster_config{4, 3});
  CHECK(effective_config({3, 2}, 1) == cluster_config{1, 2});
}

TEST_CASE("a move request round-trips through its JSON, and one with no groups is refused") {
  move_request m{10, 20, "n\"2", "failed", "node a did not answer", 12.5};
  auto back = decode_move(encode_move(m));
  REQUIRE(back.ok());
  CHECK(*back == m);
  auto empty = decode_move(R"({"first":5,"end":5,"to":"b"})");
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().find("[5, 5)") != std::string::npos);
}

namespace {
// The placement after the moves, and the groups per node it gives.
std::map<std::string, uint32_t> after_moves(placement p, const std::vector<move_request>& moves) {
  for (auto& m : moves) {
    std::vector<range_owner> next;
    for (auto& r : p.ranges) {
      if (r.end <= m.first || m.end <= r.first) {
        next.push_back(r);
        continue;
      }
      for (auto& part : split_for_move(r, std::max(r.first, m.first), std::min(r.end, m.end), m.to, "s-" + m.to))
        next.push_back(part);
    }
    p.ranges = next;
  }
  REQUIRE_FALSE(p.problem(4096).has_value());
  std::map<std::string, uint32_t> out;
  for (auto& [n, c] : p.groups_per_node()) out[n] = c;
  return out;
}
}  // namespace

TEST_CASE("a node that joins gets an even share of the groups, moved from the others' range ends") {
  auto p = initial_placement({node("a", "sa"), node("b", "sb")}, 4096);
  auto moves = plan_even(p, {"a", "b", "c"}, 4096);
  REQUIRE_FALSE(moves.empty());
  for (auto& m : moves) CHECK(m.to == "c");
  auto counts = after_moves(p, moves);
  CHECK(counts["c"] == 1365);
  CHECK(counts["a"] + counts["b"] == 4096 - 1365);
  CHECK(std::max(counts["a"], counts["b"]) - std::min(counts["a"], counts["b"]) <= 1);
  CHECK(plan_even(p, {"a", "b"}, 4096).empty());  // even already
}

TEST_CASE("draining a node moves all of its groups to the others, evenly") {
  auto p = initial_placement({node("a", "sa"), node("b", "sb"), node("c", "sc")}, 4096);
  auto counts = after_moves(p, plan_even(p, {"a", "c"}, 4096));
  CHECK(counts.count("b") == 0);
  CHECK(counts["a"] == 2048);
  CHECK(counts["c"] == 2048);
}

TEST_CASE("a range with replicas round-trips through its JSON with its followers and in-sync set") {
  range_owner r{0, 100, "a", "sa", 3, {{"b", "sb"}, {"c", "sc"}}, {"a", "c"}};
  auto back = decode_range(encode_range(r));
  REQUIRE(back);
  CHECK(*back == r);
  CHECK(back->is_in_sync("c"));
  CHECK_FALSE(back->is_in_sync("b"));
  CHECK(back->is_replica("b"));
}

TEST_CASE("failover gives a range whose leader is gone to its first registered in-sync follower at epoch + 1") {
  range_owner r{0, 100, "a", "sa", 3, {{"b", "sb"}, {"c", "sc"}}, {"a", "b", "c"}};
  std::map<std::string, node_info> all{{"a", node("a", "sa")}, {"b", node("b", "sb")}, {"c", node("c", "sc")}};
  CHECK_FALSE(failover(r, all).has_value());  // the leader is there
  auto without_a = all;
  without_a.erase("a");
  auto next = failover(r, without_a);
  REQUIRE(next);
  CHECK(*next == range_owner{0, 100, "b", "sb", 4, {{"c", "sc"}}, {"b", "c"}});
  // b is not in sync: c takes it; b back with an empty directory: not b either.
  r.in_sync = {"a", "c"};
  CHECK(failover(r, without_a)->node == "c");
  r.in_sync = {"a", "b"};
  without_a["b"] = node("b", "another-store");
  CHECK_FALSE(failover(r, without_a).has_value());
}

TEST_CASE("failover also takes a range from a leader registered again with another, empty data directory") {
  range_owner r{0, 100, "a", "sa", 3, {{"b", "sb"}, {"c", "sc"}}, {"a", "b", "c"}};
  std::map<std::string, node_info> all{
      {"a", node("a", "another-store")}, {"b", node("b", "sb")}, {"c", node("c", "sc")}};
  auto next = failover(r, all);
  REQUIRE(next);
  CHECK(*next == range_owner{0, 100, "b", "sb", 4, {{"c", "sc"}}, {"b", "c"}});
}

TEST_CASE("a range gets the followers the settings ask for, on the nodes holding the fewest copies, out of sync") {
  std::map<std::string, node_info> all{
      {"a", node("a", "sa")}, {"b", node("b", "sb")}, {"c", node("c", "sc")}, {"d", node("d", "sd")}};
  range_owner r{0, 100, "a", "sa", 1};
  CHECK_FALSE(with_replicas(r, all, {1, 1}, {}, {}).has_value());  // no replication: unchanged
  auto next = with_replicas(r, all, {3, 2}, {}, {{"b", 2}, {"c", 0}, {"d", 1}});
  REQUIRE(next);
  CHECK(next->replicas == std::vector<replica>{{"c", "sc"}, {"d", "sd"}});
  CHECK(next->in_sync == std::vector<std::string>{"a"});
  CHECK_FALSE(with_replicas(*next, all, {3, 2}, {}, {}).has_value());  // stable
  // d is gone and b is free: d is replaced; fewer copies asked: the out-of-sync one goes.
  next->in_sync = {"a", "c", "d"};
  auto without_d = all;
  without_d.erase("d");
  auto replaced = with_replicas(*next, without_d, {3, 2}, {}, {});
  REQUIRE(replaced);
  CHECK(replaced->replicas == std::vector<replica>{{"c", "sc"}, {"b", "sb"}});
  CHECK(replaced->in_sync == std::vector<std::string>{"a", "c"});
  auto fewer = with_replicas(*replaced, without_d, {2, 2}, {}, {});
  REQUIRE(fewer);
  CHECK(fewer->replicas == std::vector<replica>{{"c", "sc"}});
}
