#include <doctest/doctest.h>

#include "flowstate/drivers/mqtt_session.hpp"

using flowstate::drivers::mqtt::parse_broker;

TEST_CASE("a broker URL gives its host and port, an IPv6 address in brackets included") {
  auto plain = parse_broker("mqtt://broker.example:1884");
  REQUIRE(plain);
  CHECK(plain->host == "broker.example");
  CHECK(plain->port == "1884");
  CHECK(!plain->tls);
  auto tls = parse_broker("mqtts://broker.example/");
  REQUIRE(tls);
  CHECK(tls->port == "8883");
  CHECK(tls->tls);
  auto v6 = parse_broker("mqtt://[::1]:9999");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->port == "9999");
  auto v6_default = parse_broker("mqtt://[fd00::2]");
  REQUIRE(v6_default);
  CHECK(v6_default->host == "fd00::2");
  CHECK(v6_default->port == "1883");
  CHECK(parse_broker("mqtt://[::1").error().find("broker: expected [IPv6 address]") == 0);
  CHECK(parse_broker("mqtt://[::1]x").error().find("broker: expected [IPv6 address]") == 0);
  CHECK(parse_broker("mqtt://host:0").error() == "broker: the port must be a number from 1 to 65535");
  CHECK(parse_broker("127.0.0.1:1883").error().find("broker: expected mqtt://") == 0);
}
