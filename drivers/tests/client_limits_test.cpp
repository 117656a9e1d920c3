#include <doctest/doctest.h>

#include "flowstate/drivers/detail/client_limits.hpp"

using flowstate::http::detail::client_limit_options;
using flowstate::http::detail::client_limits;
using admission = client_limits::admission;

TEST_CASE("connections are capped for all clients and per client address") {
  client_limits limits(client_limit_options{3, 2, 0, 0});
  CHECK(limits.open("10.0.0.1") == admission::admitted);
  CHECK(limits.open("10.0.0.1") == admission::admitted);
  CHECK(limits.open("10.0.0.1") == admission::too_many_from_client);
  CHECK(limits.open("10.0.0.2") == admission::admitted);
  CHECK(limits.open("10.0.0.3") == admission::too_many_connections);
  limits.close("10.0.0.1");
  CHECK(limits.connections() == 2);
  CHECK(limits.open("10.0.0.1") == admission::admitted);
  limits.close("10.0.0.9");  // never admitted: nothing changes
  CHECK(limits.connections() == 3);
}

TEST_CASE("each client address has its own bucket of requests, refilled at the rate") {
  client_limits limits(client_limit_options{0, 0, 2, 4});  // 2 per second, bursts of 4
  auto t0 = client_limits::clock::now();
  for (int i = 0; i < 4; ++i) CHECK(limits.take_request("a", t0) == 0);
  CHECK(limits.take_request("a", t0) == 1);  // Retry-After: 1 s
  CHECK(limits.take_request("b", t0) == 0);  // another address is not held back
  CHECK(limits.take_request("a", t0 + std::chrono::milliseconds(500)) == 0);
  CHECK(limits.take_request("a", t0 + std::chrono::milliseconds(500)) == 1);
  CHECK(limits.take_request("a", t0 + std::chrono::seconds(60)) == 0);  // refilled, to the burst at most
  for (int i = 0; i < 3; ++i) CHECK(limits.take_request("a", t0 + std::chrono::seconds(60)) == 0);
  CHECK(limits.take_request("a", t0 + std::chrono::seconds(60)) != 0);
}

TEST_CASE("without a rate every request is admitted") {
  client_limits limits(client_limit_options{});
  for (int i = 0; i < 1000; ++i) CHECK(limits.take_request("a") == 0);
}
