#include <doctest/doctest.h>

#include <optional>
#include <string>

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

TEST_CASE("collisions are found whichever side has the parameter, and only between same method and length") {
  auto one = [](const char* text) {
    return parse_request_routes(std::string(R"({"routes":[")") + text + "\"]}")->at(0);
  };
  route_table table;
  REQUIRE(table.add(one("GET /a/b")).ok());
  CHECK(!table.add(one("GET /{x}/b")).ok());  // the parameter on the new side
  CHECK(!table.add(one("GET /{x}/{y}")).ok());
  CHECK(!table.add(one("GET /a/b")).ok());     // the same route twice
  CHECK(table.add(one("GET /a/c")).ok());      // another literal
  CHECK(table.add(one("POST /{x}/b")).ok());   // another method
  CHECK(table.add(one("GET /a/b/{x}")).ok());  // another length
  CHECK(table.add(one("GET /{x}/b/c/d")).ok());
  CHECK(!table.add(one("GET /a/{y}/c/d")).ok());  // crosses parameters on both sides
  CHECK(table.add(one("GET /a/{y}/c/e")).ok());
  auto m = table.match("GET", "/a/z/c/e");
  REQUIRE(m);
  CHECK(m->matched->text == "GET /a/{y}/c/e");
  CHECK(table.match("GET", "/q/b/c/d")->matched->text == "GET /{x}/b/c/d");
  CHECK(!table.match("GET", "/q/z/c/e"));
}

TEST_CASE("a table of a thousand routes matches each path to its own route") {
  route_table table;
  for (int i = 0; i < 1000; ++i) {
    auto r = parse_request_routes("{\"routes\":[\"POST /f" + std::to_string(i) + "/{key}\"]}");
    REQUIRE(r.ok());
    REQUIRE(table.add(r->at(0)).ok());
  }
  for (int i = 0; i < 1000; i += 37) {
    auto m = table.match("POST", "/f" + std::to_string(i) + "/k" + std::to_string(i));
    REQUIRE(m);
    CHECK(m->matched->path == "/f" + std::to_string(i) + "/{key}");
    CHECK(m->key == "k" + std::to_string(i));
  }
  CHECK(!table.match("POST", "/f1000/k"));
  CHECK(!table.match("POST", "/f1/k/x"));
}

TEST_CASE("a bad method or a path without a slash is refused") {
  CHECK(!parse_request_routes(R"({"method":"FETCH","path":"/a"})").ok());
  CHECK(!parse_request_routes(R"({"method":"GET","path":"a"})").ok());
  CHECK(!parse_request_routes(R"({"method":"GET"})").ok());
}

TEST_CASE("a route timeout is read in ms, s or m, and a malformed or huge one is refused with what came") {
  auto timeout_of = [](const std::string& t) {
    auto r = parse_request_routes(R"({"path":"/a","timeout":)" + t + "}");
    return r ? std::optional<uint32_t>(r->at(0).timeout_ms) : std::nullopt;
  };
  CHECK(timeout_of(R"("500ms")") == 500u);
  CHECK(timeout_of(R"("2s")") == 2000u);
  CHECK(timeout_of(R"("1m")") == 60000u);
  CHECK(timeout_of("250") == 250u);
  for (std::string bad : {R"("99999999999999999999999s")", R"("18446744073709551616ms")", R"("4294968s")", R"("0s")",
                          R"("2 s")", R"("s")", "-5", "4294967296", "true"}) {
    CAPTURE(bad);
    auto r = parse_request_routes(R"({"path":"/a","timeout":)" + bad + "}");
    REQUIRE(!r.ok());
    CHECK(r.error().find("timeout: expected a duration like 2s") != std::string::npos);
    CHECK(r.error().find(bad.substr(0, 10)) != std::string::npos);
  }
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

TEST_CASE("a body is JSON by its media type, in any case, and a refusal says why") {
  auto routes = parse_request_routes(R"({"path":"/c/{key}"})");
  route_table table;
  REQUIRE(table.add(routes->at(0)).ok());
  auto m = table.match("POST", "/c/k1");
  request req;
  req.method = "POST";
  req.target = "/c/k1";
  req.body = "{oops";
  for (const char* declared : {"Application/JSON", "application/json; charset=utf-8", "application/merge-patch+json"}) {
    req.headers = {{"Content-Type", declared}};
    CHECK_MESSAGE(!build_request_message(req, *m).ok(), declared);
  }
  req.headers = {{"Content-Type", "text/plain; profile=nonjson"}};
  auto text = build_request_message(req, *m);
  REQUIRE(text.ok());
  CHECK(text->find(R"("body":"{oops")") != std::string::npos);
  req.headers = {{"Content-Type", "application/json"}};
  req.body = R"({"orderId":123456789012345678901234})";
  auto big = build_request_message(req, *m);
  REQUIRE(!big.ok());
  CHECK(big.error().find("holds a number this node cannot read") != std::string::npos);
  req.body = std::string(2000, '[') + std::string(2000, ']');
  auto deep = build_request_message(req, *m);
  REQUIRE(!deep.ok());
  CHECK(deep.error().find("nests deeper than 1024 levels") != std::string::npos);
}

TEST_CASE("a plus sign in a path segment is a plus, in a query it is a space") {
  auto routes = parse_request_routes(R"({"path":"/c/{key}"})");
  route_table table;
  REQUIRE(table.add(routes->at(0)).ok());
  auto m = table.match("POST", "/c/a+b%2Bc");
  REQUIRE(m);
  CHECK(m->key == "a+b+c");
  request req;
  req.method = "POST";
  req.target = "/c/a+b%2Bc?q=x+y%2Bz";
  auto msg = build_request_message(req, *m);
  REQUIRE(msg.ok());
  CHECK(msg->find(R"("params":{"key":"a+b+c"})") != std::string::npos);
  CHECK(msg->find(R"("query":{"q":"x y+z"})") != std::string::npos);
}

TEST_CASE("repeated headers are joined and a repeated query name keeps its last value") {
  auto routes = parse_request_routes(R"({"path":"/c/{key}"})");
  route_table table;
  REQUIRE(table.add(routes->at(0)).ok());
  request req;
  req.method = "POST";
  req.target = "/c/k?tag=a&other=1&tag=b";
  req.headers = {
      {"Accept", "text/html"}, {"X-Tag", "1"}, {"accept", "application/json"}, {"Cookie", "a=1"}, {"cookie", "b=2"}};
  auto m = table.match("POST", "/c/k");
  auto msg = build_request_message(req, *m);
  REQUIRE(msg.ok());
  CHECK(msg->find(R"("query":{"tag":"b","other":"1"})") != std::string::npos);
  CHECK(msg->find(R"("headers":{"accept":"text/html, application/json","x-tag":"1","cookie":"a=1; b=2"})") !=
        std::string::npos);
}

TEST_CASE("text that is not UTF-8 is refused, naming the part it was in") {
  auto routes = parse_request_routes(R"({"path":"/c/{key}"})");
  route_table table;
  REQUIRE(table.add(routes->at(0)).ok());
  auto refused = [&](std::string target, header_list headers = {}, std::string body = {}) -> std::string {
    request req;
    req.method = "POST";
    req.target = std::move(target);
    req.headers = std::move(headers);
    req.body = std::move(body);
    auto [path, query] = split_target(req.target);
    auto m = table.match("POST", path);
    REQUIRE(m);
    auto msg = build_request_message(req, *m);
    return msg.ok() ? std::string() : msg.error();
  };
  CHECK(refused("/c/%FF%FE").find("the path") != std::string::npos);
  CHECK(refused("/c/ok?name=%C3%28").find("the query parameter \"name\"") != std::string::npos);
  CHECK(refused("/c/ok?%ED%A0%80=1").find("a query parameter name") != std::string::npos);
  CHECK(refused("/c/ok", {{"X-Name", "caf\xE9"}}).find("the header \"x-name\"") != std::string::npos);
  CHECK(refused("/c/ok", {}, "text \xC0\xAF").find("the request body") != std::string::npos);
  CHECK(refused("/c/%C3%A9t%C3%A9?q=%E2%82%AC", {{"X-Name", "caf\xC3\xA9"}}, "\xF0\x9F\x98\x80").empty());
}

TEST_CASE("a misspelt, mistyped or contradictory http.Request setting is refused, naming it") {
  // These were ignored: `methdo: GET` made a POST route, `timout:` no timeout.
  auto has = [](const std::string& error, const char* text) { return error.find(text) != std::string::npos; };
  CHECK(has(parse_request_routes(R"({"kind":"http.Request","methdo":"GET","path":"/count/{key}"})").error(),
            R"(unknown key "methdo")"));
  CHECK(has(parse_request_routes(R"({"method":["GET"],"path":"/count/{key}"})").error(), "method: expected a string"));
  CHECK(has(parse_request_routes(R"({"routes":"GET /x","path":"/count/{key}"})").error(), "routes: expected a list"));
  CHECK(has(parse_request_routes(R"({"routes":["GET /x"],"path":"/count/{key}"})").error(), "leave them out"));
}

TEST_CASE("a path naming one parameter twice is refused") {
  CHECK(
      parse_request_routes(R"({"routes":["POST /a/{key}/{key}"]})").error().find("the parameter {key} appears twice") !=
      std::string::npos);
}
