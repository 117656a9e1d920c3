#include <doctest/doctest.h>
#include <simdjson.h>

#include <set>
#include <string>

#include "../src/admin_routes.hpp"
#include "flowstate/ui_server/admin_api.hpp"

using namespace flowstate::admin;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Every "$ref" value anywhere under `e`.
void collect_refs(simdjson::dom::element e, std::set<std::string>& out) {
  if (simdjson::dom::object o; !e.get_object().get(o)) {
    for (auto [k, v] : o) {
      std::string_view ref;
      if (k == "$ref" && !v.get_string().get(ref)) out.emplace(ref);
      collect_refs(v, out);
    }
  } else if (simdjson::dom::array a; !e.get_array().get(a)) {
    for (auto v : a) collect_refs(v, out);
  }
}

}  // namespace

TEST_CASE("every route of the table is an operation of the OpenAPI description") {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE_MESSAGE(!parser.parse(openapi_json()).get(doc), "the description is JSON");
  CHECK(std::string_view(doc["openapi"]) == "3.1.0");
  std::size_t operations = 0;
  for (auto& r : admin_routes()) {
    simdjson::dom::element op;
    CHECK_MESSAGE(!doc["paths"][r.path][lower(r.method)].get(op), r.method, " ", r.path);
    ++operations;
  }
  std::size_t described = 0;
  for (auto [path, item] : simdjson::dom::object(doc["paths"])) described += simdjson::dom::object(item).size();
  CHECK(described == operations);
  CHECK(admin_route_list().size() == operations);
}

TEST_CASE("every parameter, request and response in the description has a schema") {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(openapi_json());
  for (auto [path, item] : simdjson::dom::object(doc["paths"])) {
    for (auto [method, op] : simdjson::dom::object(item)) {
      std::string at = std::string(method) + " " + std::string(path);
      if (simdjson::dom::array params; !op["parameters"].get(params))
        for (auto p : params) CHECK_MESSAGE(p["schema"].error() == simdjson::SUCCESS, at, " ", p["name"]);
      if (simdjson::dom::object content; !op["requestBody"]["content"].get(content))
        for (auto [type, media] : content) CHECK_MESSAGE(media["schema"].error() == simdjson::SUCCESS, at);
      simdjson::dom::object responses;
      REQUIRE_MESSAGE(!op["responses"].get(responses), at);
      for (auto [status, response] : responses) {
        simdjson::dom::object content;
        REQUIRE_MESSAGE(!response["content"].get(content), at, " ", status);
        for (auto [type, media] : content) CHECK_MESSAGE(media["schema"].error() == simdjson::SUCCESS, at, status);
      }
    }
  }
}

TEST_CASE("routes behind the token document 401, and blocking ones 503, as problem+json") {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(openapi_json());
  for (auto& r : admin_routes()) {
    auto op = doc["paths"][r.path][lower(r.method)];
    auto problem = [&](const char* status) {
      std::string_view ref;
      return !op["responses"][status]["content"]["application/problem+json"]["schema"]["$ref"].get(ref) &&
             ref == "#/components/schemas/Problem";
    };
    CHECK_MESSAGE(problem("401") == r.needs_token, r.path);
    CHECK_MESSAGE(problem("503") == (r.where == runs_on::pool), r.path);
    if (!r.needs_token) CHECK_MESSAGE(simdjson::dom::array(op["security"]).size() == 0, r.path);
  }
}

TEST_CASE("every $ref of the description names one of its component schemas") {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(openapi_json());
  std::set<std::string> refs;
  collect_refs(doc, refs);
  CHECK(refs.count("#/components/schemas/Problem") == 1);
  for (auto& ref : refs) {
    const std::string prefix = "#/components/schemas/";
    REQUIRE(ref.rfind(prefix, 0) == 0);
    CHECK_MESSAGE(doc["components"]["schemas"][ref.substr(prefix.size())].error() == simdjson::SUCCESS, ref);
  }
}
