// bundle_js: npm packages bundled at deploy, Node built-ins and missing
// packages refused with the file and the import.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "flowstate/sandbox/bundle.hpp"
#include "test_support.hpp"

using namespace flowstate::sandbox;
using namespace flowstate::sandbox::testing;

namespace {

// An absolute path from CMake: __FILE__ is relative when ccache rewrites paths.
const std::string project = std::string(FLOWSTATE_SANDBOX_FIXTURES) + "/npm_project";

std::string read(const std::string& file) {
  std::ifstream in(project + "/" + file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

call_result run_bundled(const std::string& file, const std::string& input) {
  auto bundled = bundle_js(project, file, read(file));
  REQUIRE_MESSAGE(bundled.ok(), (bundled.ok() ? "" : bundled.error()));
  CHECK(bundled->bundled);
  auto client = start_worker();
  std::string error = load(*client, 1, bundled->source, file);
  REQUIRE_MESSAGE(error.empty(), error);
  return call(*client, request(1, input));
}

}  // namespace

TEST_CASE("a source without imports comes back unchanged, without running esbuild") {
  const std::string source =
      "// we never import anything here\nexport default function (input) { return {output: input}; }\n";
  auto bundled = bundle_js(project, "functions/plain.js", source);
  REQUIRE(bundled.ok());
  CHECK_FALSE(bundled->bundled);
  CHECK(bundled->source == source);
}

TEST_CASE("a function importing a package from node_modules is bundled and runs") {
  auto r = run_bundled("functions/pad.js", R"({"n": 42})");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == "\"00042\"");
}

TEST_CASE("a global entrypoint using require() is bundled and runs") {
  auto r = run_bundled("functions/legacy.js", R"({"n": 7})");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  CHECK(r.outputs[0] == "\"  7\"");
}

TEST_CASE("importing fs is refused naming the file and the import") {
  auto bundled = bundle_js(project, "functions/reads_files.js", read("functions/reads_files.js"));
  REQUIRE_FALSE(bundled.ok());
  CHECK(bundled.error() ==
        "functions/reads_files.js: cannot import \"fs\": Node built-ins are not available to functions");
}

TEST_CASE("node: imports and require of built-ins are refused") {
  auto a = bundle_js(project, "functions/a.js", "import path from 'node:path';\nexport default function () {}\n");
  REQUIRE_FALSE(a.ok());
  CHECK(a.error() == "functions/a.js: cannot import \"node:path\": Node built-ins are not available to functions");
  auto b = bundle_js(project, "functions/b.js", "const cp = require(\"child_process\");\nfunction entrypoint() {}\n");
  REQUIRE_FALSE(b.ok());
  CHECK(b.error() == "functions/b.js: cannot import \"child_process\": Node built-ins are not available to functions");
}

TEST_CASE("a package missing from node_modules is refused") {
  auto bundled =
      bundle_js(project, "functions/x.js", "import leftPad from 'left-pad';\nexport default function () {}\n");
  REQUIRE_FALSE(bundled.ok());
  CHECK(bundled.error() == "functions/x.js: package \"left-pad\" not found in node_modules");
}
