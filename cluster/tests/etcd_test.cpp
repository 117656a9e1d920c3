// The etcd client against a real etcd.
#include "flowstate/cluster/etcd.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <mutex>
#include <thread>

#include "etcd_process.hpp"

using namespace flowstate;
using namespace flowstate::cluster;

namespace {

std::unique_ptr<etcd_client> client_of(const test::etcd_process& etcd, int timeout_ms = 5000) {
  auto c = etcd_client::connect(etcd_options::at(etcd.endpoint(), timeout_ms));
  REQUIRE(c.ok());
  return std::move(*c);
}

}  // namespace

TEST_CASE("base64 round-trips every byte and refuses what is not base64") {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (std::size_t n = 0; n < 8; ++n) CHECK(base64_decode(base64_encode(all.substr(0, n))) == all.substr(0, n));
  CHECK(base64_decode(base64_encode(all)) == all);
  CHECK(base64_encode("flow") == "Zmxvdw==");
  CHECK_FALSE(base64_decode("Zm=x").has_value());
  CHECK_FALSE(base64_decode("Zmx").has_value());
  CHECK_FALSE(base64_decode("Zm!v").has_value());
}

TEST_CASE("an endpoint that is not http://HOST:PORT is refused with an example") {
  for (auto bad : {"127.0.0.1:2379", "https://h:1", "http://", "http://host", "http://:2379"}) {
    auto c = etcd_client::connect(etcd_options::at(bad));
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().find("expected http://HOST:PORT") != std::string::npos);
  }
}

TEST_CASE("keys with any bytes are put, read and listed by prefix with their revisions") {
  test::etcd_process etcd;
  auto c = client_of(etcd);
  const std::string binary("a\0\xff/k", 5);
  auto r1 = c->put("/fs/a", "1");
  REQUIRE(r1.ok());
  REQUIRE(c->put("/fs/b", binary).ok());
  REQUIRE(c->put("/fs0", "outside").ok());
  auto a = c->get("/fs/a");
  REQUIRE(a.ok());
  REQUIRE(a->has_value());
  CHECK((*a)->value == "1");
  CHECK((*a)->mod_revision == *r1);
  CHECK((*a)->version == 1);
  int64_t revision = 0;
  auto all = c->get_prefix("/fs/", &revision);
  REQUIRE(all.ok());
  REQUIRE(all->size() == 2);
  CHECK((*all)[1].value == binary);
  CHECK(revision >= *r1);
  auto none = c->get("/fs/none");
  REQUIRE(none.ok());
  CHECK_FALSE(none->has_value());
}

TEST_CASE("a transaction applies its success branch only when every comparison holds") {
  test::etcd_process etcd;
  auto c = client_of(etcd);
  // Create-if-absent: the key's create revision is 0 while it does not exist.
  etcd_compare absent{"/fs/controller", etcd_compare::target::create, etcd_compare::result::equal, 0, ""};
  auto first = c->txn({absent}, {etcd_op::put("/fs/controller", "node-a")});
  REQUIRE(first.ok());
  CHECK(first->succeeded);
  auto second = c->txn({absent}, {etcd_op::put("/fs/controller", "node-b")}, {etcd_op::range("/fs/controller")});
  REQUIRE(second.ok());
  CHECK_FALSE(second->succeeded);
  REQUIRE(second->ranges.size() == 1);
  REQUIRE(second->ranges[0].size() == 1);
  CHECK(second->ranges[0][0].value == "node-a");
  // A write guarded by the value seen.
  etcd_compare still_a{"/fs/controller", etcd_compare::target::value, etcd_compare::result::equal, 0, "node-a"};
  auto guarded = c->txn({still_a}, {etcd_op::put("/fs/placement", "p1")});
  REQUIRE(guarded.ok());
  CHECK(guarded->succeeded);
  auto erased = c->txn({}, {etcd_op::erase("/fs/", etcd_client::prefix_end("/fs/"))});
  REQUIRE(erased.ok());
  CHECK(c->get_prefix("/fs/")->empty());
}

TEST_CASE("a key put under a lease goes when the lease is revoked, and stays while it is kept alive") {
  test::etcd_process etcd;
  auto c = client_of(etcd);
  auto lease = c->lease_grant(2);
  REQUIRE(lease.ok());
  REQUIRE(c->put("/fs/nodes/a", "up", *lease).ok());
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(900));
    auto ttl = c->lease_keepalive(*lease);
    REQUIRE(ttl.ok());
    CHECK(*ttl > 0);
  }
  CHECK(c->get("/fs/nodes/a")->has_value());
  REQUIRE(c->lease_revoke(*lease).ok());
  CHECK_FALSE(c->get("/fs/nodes/a")->has_value());
  auto gone = c->lease_keepalive(*lease);
  REQUIRE(gone.ok());
  CHECK(*gone == 0);
}

TEST_CASE("a watch streams puts and deletions under its prefix from a revision, and stops when asked") {
  test::etcd_process etcd;
  auto c = client_of(etcd);
  auto start = c->put("/fs/w/1", "one");
  REQUIRE(start.ok());
  REQUIRE(c->put("/fs/other", "not watched").ok());
  std::atomic<bool> stop{false};
  std::vector<etcd_event> seen;
  std::vector<std::vector<std::string>> batches;  // the keys of each call
  std::mutex mu;
  std::thread watcher([&] {
    auto w = etcd_client::connect(etcd_options::at(etcd.endpoint()));
    if (!w) return;  // seen below: no events
    auto st = (*w)->watch(
        "/fs/w/", *start,
        [&](const std::vector<etcd_event>& events) {
          std::lock_guard lock(mu);
          seen.insert(seen.end(), events.begin(), events.end());
          batches.emplace_back();
          for (auto& e : events) batches.back().push_back(e.kv.key);
          return true;
        },
        stop);
    std::lock_guard lock(mu);
    if (!st) seen.clear();  // a failed watch fails the checks below
  });
  REQUIRE(c->put("/fs/w/2", "two").ok());
  REQUIRE(c->txn({}, {etcd_op::erase("/fs/w/1")}).ok());
  // One transaction with two changes: delivered in one call.
  REQUIRE(c->txn({}, {etcd_op::put("/fs/w/3", "three"), etcd_op::put("/fs/w/4", "four")}).ok());
  for (int i = 0; i < 100; ++i) {
    {
      std::lock_guard lock(mu);
      if (seen.size() >= 5) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  stop = true;
  watcher.join();
  REQUIRE(seen.size() == 5);
  // A transaction's changes come in one call (history may come in fewer).
  bool together = false;
  for (auto& b : batches)
    together = together || (std::find(b.begin(), b.end(), "/fs/w/3") != b.end() &&
                            std::find(b.begin(), b.end(), "/fs/w/4") != b.end());
  CHECK(together);
  CHECK(seen[4].kv.key == "/fs/w/4");
  CHECK(seen[0].kv.key == "/fs/w/1");
  CHECK(seen[0].kv.value == "one");
  CHECK(seen[1].kv.key == "/fs/w/2");
  CHECK_FALSE(seen[1].deleted);
  CHECK(seen[2].kv.key == "/fs/w/1");
  CHECK(seen[2].deleted);
}

TEST_CASE("a stalled etcd is an error after the timeout, and the client works again once it answers") {
  test::etcd_process etcd;
  auto c = client_of(etcd, 500);
  REQUIRE(c->put("/fs/x", "1").ok());
  etcd.pause();
  auto r = c->get("/fs/x");
  etcd.resume();
  CHECK_FALSE(r.ok());
  CHECK(r.error().find("no answer within 500 ms") != std::string::npos);
  auto again = c->get("/fs/x");
  REQUIRE(again.ok());
  CHECK((*again)->value == "1");
}
