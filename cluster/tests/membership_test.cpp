// Membership, election and the first placement against a real etcd.
#include "flowstate/cluster/membership.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "etcd_process.hpp"

using namespace flowstate;
using namespace flowstate::cluster;

namespace {

membership_options options_for(const test::etcd_process& etcd, const std::string& name, int ttl = 2) {
  membership_options o;
  o.etcd.endpoint = etcd.endpoint();
  o.cluster = "test";
  o.self = {name, "store-" + name, "inc-" + name, "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"};
  o.lease_ttl_s = ttl;
  o.settle_ms = 1500;  // the joins below take milliseconds each; a slow etcd fsync must not split them
  return o;
}

std::unique_ptr<membership> join(const test::etcd_process& etcd, const std::string& name, int ttl = 2) {
  auto m = membership::join(options_for(etcd, name, ttl));
  INFO((m.ok() ? std::string() : m.error()));
  REQUIRE(m.ok());
  return std::move(*m);
}

bool placed(const cluster_view& v) { return !v.ranges.ranges.empty() && !v.ranges.problem(4096); }

}  // namespace

TEST_CASE("three nodes elect one controller, which places every key group over all three at epoch 1") {
  test::etcd_process etcd;
  auto a = join(etcd, "a");
  auto b = join(etcd, "b");
  auto c = join(etcd, "c");
  for (auto* m : {a.get(), b.get(), c.get()})
    REQUIRE(m->wait_for([](const cluster_view& v) { return placed(v) && v.ranges.ranges.size() == 3; }, 20000));
  const auto view = a->view();
  CHECK(view.nodes.size() == 3);
  CHECK(int(a->is_controller()) + int(b->is_controller()) + int(c->is_controller()) == 1);
  CHECK(b->view().ranges.ranges == view.ranges.ranges);
  CHECK(c->view().ranges.ranges == view.ranges.ranges);
  for (auto& r : view.ranges.ranges) {
    CHECK(r.epoch == 1u);
    CHECK(r.store_id == "store-" + r.node);
  }
  auto per_node = view.ranges.groups_per_node();
  REQUIRE(per_node.size() == 3);
  for (auto& [_, n] : per_node) CHECK((n == 1365u || n == 1366u));
}

TEST_CASE("when the controller leaves, another node becomes controller and the placement stays") {
  test::etcd_process etcd;
  auto a = join(etcd, "a");
  auto b = join(etcd, "b");
  REQUIRE(a->wait_for([](const cluster_view& v) { return placed(v) && v.ranges.ranges.size() == 2; }, 20000));
  auto before = a->view().ranges.ranges;
  auto& controller = a->is_controller() ? a : b;
  auto& other = a->is_controller() ? b : a;
  controller.reset();  // leaves: its lease is revoked
  REQUIRE(other->wait_for([&](const cluster_view& v) { return v.nodes.size() == 1 && !v.controller.empty(); }, 20000));
  CHECK(other->is_controller());
  CHECK(other->view().ranges.ranges == before);
}

TEST_CASE("a second node with a live node's name is refused, naming the one that holds it") {
  test::etcd_process etcd;
  auto a = join(etcd, "a", 1);
  auto again = membership::join(options_for(etcd, "a", 1));
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().find("a node named \"a\" is already in cluster \"test\" (store store-a, incarnation inc-a") !=
        std::string::npos);
}

TEST_CASE("a node that died without leaving can rejoin under its name once its lease has lapsed") {
  test::etcd_process etcd;
  {
    // Registered, then gone without revoking: what kill -9 leaves behind.
    auto c = etcd_client::connect(etcd_options::at(etcd.endpoint()));
    REQUIRE(c.ok());
    auto lease = (*c)->lease_grant(1);
    REQUIRE(lease.ok());
    node_info old;
    old.name = "a";
    old.store_id = "store-a";
    old.incarnation = "old-incarnation";
    REQUIRE((*c)->put(cluster_prefix("test") + "nodes/a", encode_node(old), *lease).ok());
  }
  auto a = join(etcd, "a", 1);  // waits for the lapse
  CHECK(a->view().nodes.at("a").incarnation == "inc-a");
}

TEST_CASE("the cluster view read once shows nodes, controller and placement") {
  test::etcd_process etcd;
  auto a = join(etcd, "a");
  REQUIRE(a->wait_for(placed, 20000));
  auto v = read_cluster_view(etcd_options::at(etcd.endpoint()), "test");
  REQUIRE(v.ok());
  CHECK(v->controller == "a");
  CHECK(v->nodes.count("a") == 1);
  REQUIRE(v->ranges.ranges.size() == 1);
  CHECK(v->ranges.ranges[0] == range_owner{0, 4096, "a", "store-a", 1});
}

TEST_CASE("a project's id is the same for every node that asks, and two projects never share one") {
  test::etcd_process etcd;
  auto opts = etcd_options::at(etcd.endpoint());
  std::vector<std::thread> askers;
  std::vector<uint32_t> ids(8);
  std::vector<std::string> errors(8);
  for (int i = 0; i < 8; ++i)
    askers.emplace_back([&, i] {
      // No REQUIRE off the test's thread: results are checked after the joins.
      auto id = cluster_project_id(opts, "test", i % 2 ? "orders" : "telemetry");
      if (id)
        ids[static_cast<std::size_t>(i)] = *id;
      else
        errors[static_cast<std::size_t>(i)] = id.error();
    });
  for (auto& t : askers) t.join();
  for (auto& e : errors) CHECK(e == "");
  for (int i = 2; i < 8; ++i) CHECK(ids[static_cast<std::size_t>(i)] == ids[static_cast<std::size_t>(i % 2)]);
  CHECK(ids[0] != ids[1]);
  CHECK(std::min(ids[0], ids[1]) == 1u);
  CHECK(std::max(ids[0], ids[1]) == 2u);
  auto third = cluster_project_id(opts, "test", "billing");
  REQUIRE(third.ok());
  CHECK(*third == 3u);
  auto other_cluster = cluster_project_id(opts, "other", "billing");
  REQUIRE(other_cluster.ok());
  CHECK(*other_cluster == 1u);
}
