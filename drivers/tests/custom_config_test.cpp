// Custom drivers' kinds and configurations (custom.hpp): which package, the
// driver's own configuration, and which hosts and addresses it may reach.
#include <doctest/doctest.h>

#include "flowstate/drivers/custom.hpp"
#include "flowstate/drivers/outbound.hpp"

using namespace flowstate::drivers::custom;

TEST_CASE("npm and python kinds name their package and other kinds are not custom") {
  auto npm = parse_kind("npm:@acme/flowstate-modbus");
  REQUIRE(npm);
  REQUIRE(*npm);
  CHECK((*npm)->lang == language::js);
  CHECK((*npm)->package == "@acme/flowstate-modbus");
  auto py = parse_kind("python:acme.graphite");
  REQUIRE(py);
  REQUIRE(*py);
  CHECK((*py)->lang == language::python);
  CHECK((*py)->package == "acme.graphite");
  auto builtin = parse_kind("http.Post");
  REQUIRE(builtin);
  CHECK(!*builtin);
  CHECK(!parse_kind("npm:Acme"));
  CHECK(!parse_kind("npm:@acme"));
  CHECK(!parse_kind("python:1acme"));
  CHECK(parse_kind("python:acme-graphite").error().find("not a Python module name") != std::string::npos);
}

TEST_CASE("the driver gets its file without the node's fields") {
  auto c = parse_config(
      R"({"kind":"npm:x","gateway":"tcp://10.0.0.5:7000","hosts":["api.example.com"],"memory":64,"concurrency":4,)"
      R"("retry":{"attempts":3},"key":"/device"})");
  REQUIRE_MESSAGE(c, (c ? "" : c.error()));
  CHECK(c->driver_json == R"({"gateway":"tcp://10.0.0.5:7000","key":"/device"})");
  CHECK(c->memory_mb == 64);
  CHECK(c->concurrency == 4);
  CHECK(c->retry.attempts == 3);
  CHECK(parse_config(R"({"kind":"npm:x","memory":1})").error().find("memory") != std::string::npos);
  CHECK(parse_config(R"({"kind":"npm:x","hosts":["a:b"]})").error().find("hosts") != std::string::npos);
}

TEST_CASE("a driver may connect to the hosts its configuration names and nothing else") {
  auto c = parse_config(R"({"kind":"npm:x","gateway":"tcp://10.0.0.5:7000","api":"https://user@api.example.com/v1",)"
                        R"("db":{"host":"db.internal","port":5432},"hosts":["[::1]:8080","any.example.com"]})");
  REQUIRE(c);
  CHECK(check_named(*c, "10.0.0.5", 7000).empty());
  CHECK(check_named(*c, "api.example.com", 443).empty());  // the scheme's port
  CHECK(check_named(*c, "API.example.com", 443).empty());  // names are case-insensitive
  CHECK(check_named(*c, "db.internal", 5432).empty());
  CHECK(check_named(*c, "::1", 8080).empty());
  CHECK(check_named(*c, "any.example.com", 1).empty());  // no port: any port
  CHECK(!check_named(*c, "10.0.0.5", 7001).empty());
  CHECK(!check_named(*c, "api.example.com", 80).empty());
  CHECK(!check_named(*c, "localhost", 7000).empty());
  CHECK(check_named(*c, "127.0.0.1", 9090).find("not named by the driver's configuration") != std::string::npos);
}

TEST_CASE("a name that resolves to a loopback or private address is refused, the address named itself is not") {
  CHECK(check_address("api.example.com", "93.184.216.34").empty());
  for (const char* inside : {"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                             "0.0.0.0", "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "64:ff9b::a00:5",
                             "2002:a00:5::1", "198.18.0.1", "240.0.0.1", "255.255.255.255", "fec0::1"}) {
    CAPTURE(inside);
    CHECK(check_address("evil.example.com", inside).find("loopback, private or link-local") != std::string::npos);
  }
  CHECK(check_address("10.0.0.5", "10.0.0.5").empty());
  CHECK(check_address("::1", "::1").empty());
  CHECK(!check_address("localhost", "127.0.0.1").empty());
  CHECK(check_address("172.32.0.1", "172.32.0.1").empty());               // outside 172.16/12: public
  CHECK(check_address("api.example.com", "64:ff9b::5db8:d822").empty());  // NAT64 of a public address
}

TEST_CASE("listen takes ports and addresses, each once, and a hosted node refuses it") {
  auto c = parse_config(R"({"kind":"npm:x","listen":[5020,"127.0.0.1:9000","[::1]:7000"],"key":"/d"})");
  REQUIRE_MESSAGE(c, (c ? "" : c.error()));
  REQUIRE(c->listen.size() == 3);
  CHECK(c->listen[0].host == "0.0.0.0");
  CHECK(c->listen[0].port == 5020);
  CHECK(c->listen[1].host == "127.0.0.1");
  CHECK(c->listen[2].host == "::1");
  CHECK(c->listen[2].port == 7000);
  CHECK(c->driver_json == R"({"key":"/d"})");
  CHECK(parse_config(R"({"kind":"npm:x","listen":[70000]})").error().find("port 70000 is out of range") !=
        std::string::npos);
  CHECK(parse_config(R"({"kind":"npm:x","listen":["gateway.local:5020"]})").error().find("an address and port") !=
        std::string::npos);  // a name is not bound
  CHECK(parse_config(R"({"kind":"npm:x","listen":["127.0.0.1"]})").error().find("listen:") != std::string::npos);
  CHECK(parse_config(R"({"kind":"npm:x","listen":5020})").error().find("expected a list") != std::string::npos);
  CHECK(parse_config(R"({"kind":"npm:x","listen":[5020,"0.0.0.0:5020"]})").error().find("listed twice") !=
        std::string::npos);
  flowstate::drivers::outbound::set_public_only(true);
  auto hosted = parse_config(R"({"kind":"npm:x","listen":[5020]})");
  flowstate::drivers::outbound::set_public_only(false);
  REQUIRE(!hosted);
  CHECK(hosted.error().find("a hosted node opens no ports") != std::string::npos);
}
