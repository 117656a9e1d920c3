#include <doctest/doctest.h>

#include "flowstate/drivers/http_routes.hpp"

using namespace flowstate::http;

TEST_CASE("a route with a key parameter matches and extracts the key") {
  auto routes = parse_request_routes(R"({"kind":"http.Request","method":"post","path":"/count/{key}"})");
  REQUIRE(routes.ok());
  route_table table;
  REQUIRE(table.add(routes->at(0)).ok());
  auto m = table.match("POST", "/count/abc%20d");
  REQUIRE(m);
  CHECK(m->key == "abc d");
  CHECK(!table.match("GET", "/count/abc"));
  CHECK(!table.match("POST", "/count/abc/x"));
}

TEST_CASE("the first parameter is the key when none is named key") {
  auto routes = parse_request_routes(R"({"routes":["GET /lists/{list}/todos/{todo}"]})");
  REQUIRE(routes.ok());
  route_table table;
  REQUIRE(table.add(routes->at(0)).ok());
  auto m = table.match("GET", "/lists/l1/todos/t2");
  REQUIRE(m);
  CHECK(m->key == "l1");
}

TEST_CASE("colliding routes are refused with both names") {
  route_table table;
  auto a = parse_request_routes(R"({"routes":["GET /a/{x}"]})");
  auto b = parse_request_routes(R"({"routes":["GET /a/b"]})");
  REQUIRE(table.add(a->at(0)).ok());
  auto st = table.add(b->at(0));
  REQUIRE(!st.ok());
  CHECK(st.error().find("GET /a/b") != std::string::npos);
  CHECK(st.error().find("GET /a/{x}") != std::string::npos);
}

TEST_CASE("a bad method or a path without a slash is refused") {
  CHECK(!parse_request_routes(R"({"method":"FETCH","path":"/a"})").ok());
  CHECK(!parse_request_routes(R"({"method":"GET","path":"a"})").ok());
  CHECK(!parse_request_routes(R"({"method":"GET"})").ok());
}

TEST_CASE("the request message embeds a JSON body and refuses a broken one") {
  auto routes = parse_request_routes(R"({"path":"/c/{key}"})");
  route_table table;
  REQUIRE(table.add(routes->at(0)).ok());
  request req;
  req.method = "POST";
  req.target = "/c/k1?x=1&y=a%2Fb";
  req.headers = {{"Content-Type", "application/json"}};
  req.body = R"({"by":2})";
  auto m = table.match("POST", "/c/k1");
  auto msg = build_request_message(req, *m);
  REQUIRE(msg.ok());
  CHECK(
      *msg ==
      R"({"route":"POST /c/{key}","method":"POST","path":"/c/k1","params":{"key":"k1"},"query":{"x":"1","y":"a/b"},"headers":{"content-type":"application/json"},"body":{"by":2}})");
  req.body = "{broken";
  CHECK(!build_request_message(req, *m).ok());
}

TEST_CASE("text that is not UTF-8 in a path, query, header or text body is refused before the message") {
  auto routes = parse_request_routes(R"({"path":"/c/{key}"})");
  route_table table;
  REQUIRE(table.add(routes->at(0)).ok());
  auto build = [&](std::string target, header_list headers, std::string body) {
    request req;
    req.method = "POST";
    req.target = std::move(target);
    req.headers = std::move(headers);
    req.body = std::move(body);
    auto path = split_target(req.target).first;
    auto m = table.match("POST", path);
    REQUIRE(m);
    return build_request_message(req, *m);
  };
  auto escaped = build("/c/%FF%FE", {}, "");
  REQUIRE(!escaped.ok());
  CHECK(escaped.error() == "expected UTF-8 text in path parameter {key}, found byte 0xff at offset 0");
  auto raw = build("/c/k\xC3", {}, "");
  REQUIRE(!raw.ok());
  CHECK(raw.error().find("the request path") != std::string::npos);
  auto query = build("/c/k?a=%ED%A0%80", {}, "");  // an encoded surrogate
  REQUIRE(!query.ok());
  CHECK(query.error().find("query parameter a") != std::string::npos);
  auto header = build("/c/k", {{"X-Name", "caf\xE9"}}, "");
  REQUIRE(!header.ok());
  CHECK(header.error().find("header X-Name") != std::string::npos);
  auto body = build("/c/k", {{"Content-Type", "text/plain"}}, "\xC0\xAF");  // overlong "/"
  REQUIRE(!body.ok());
  CHECK(body.error().find("the request body") != std::string::npos);
  CHECK(build("/c/k%C3%A9?q=%E2%82%AC", {{"X-Name", "café"}}, "naïve").ok());
}

TEST_CASE("a route timeout is read in ms, s or m and one too large for 32 bits of ms is refused") {
  auto timeout_of = [](const std::string& value) -> std::optional<uint32_t> {
    auto routes = parse_request_routes(R"({"path":"/a","timeout":)" + value + "}");
    if (!routes) {
      CHECK(routes.error() == "timeout: expected a duration like 2s or 500ms");
      return std::nullopt;
    }
    return routes->at(0).timeout_ms;
  };
  CHECK(timeout_of(R"("2s")") == 2000u);
  CHECK(timeout_of(R"("500ms")") == 500u);
  CHECK(timeout_of(R"("3m")") == 180000u);
  CHECK(timeout_of("750") == 750u);
  CHECK(timeout_of(R"("99999999999999999999999s")") == std::nullopt);  // threw std::out_of_range
  CHECK(timeout_of(R"("5000000s")") == std::nullopt);                  // wrapped to 705032704 ms
  CHECK(timeout_of("4294967296") == std::nullopt);                     // wrapped to 0
  CHECK(timeout_of(R"("2h")") == std::nullopt);
  CHECK(timeout_of(R"("s")") == std::nullopt);
}
