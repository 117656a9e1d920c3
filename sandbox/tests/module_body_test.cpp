// module_as_function_body: an ES module's source as a function body that
// returns its default export, with lines kept.
#include <doctest/doctest.h>

#include <algorithm>

#include "module_body.hpp"

using flowstate::worker::module_as_function_body;

namespace {

std::string body_of(const std::string& source) {
  auto body = module_as_function_body(source);
  REQUIRE_MESSAGE(body.has_value(), source);
  return *body;
}

long lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

}  // namespace

TEST_CASE("a named default function keeps its name and the body returns it") {
  auto body = body_of("export default function handle(input) {\n  return {output: input};\n}\n");
  CHECK(body.find("export") == std::string::npos);
  CHECK(body.find("function handle(input)") != std::string::npos);
  CHECK(body.find("return handle;") != std::string::npos);
  CHECK(body.starts_with("'use strict';"));
}

TEST_CASE("an anonymous default function becomes a method named default") {
  auto body = body_of("export default async function (input, state = {n: {m: 1}}) {\n  return {};\n}\nconst x = 1;\n");
  CHECK(body.find("const __flowstate_default = ({default:") != std::string::npos);
  CHECK(body.find("async function (input, state = {n: {m: 1}}) {") != std::string::npos);
  CHECK(body.find("}}).default;\nconst x = 1;") != std::string::npos);
}

TEST_CASE("a default expression, an export clause and exported declarations are rewritten") {
  auto expression = body_of("const k = 2;\nexport default (input) => ({output: input * k});\n");
  CHECK(expression.find("const __flowstate_default =") != std::string::npos);
  CHECK(expression.find("(input) => ({output: input * k});") != std::string::npos);
  auto clause = body_of("function run() {}\nexport const a = 1;\nexport { run as default, a };\n");
  CHECK(clause.find("return run;") != std::string::npos);
  CHECK(clause.find("export") == std::string::npos);
  CHECK(clause.find("const a = 1;") != std::string::npos);
}

TEST_CASE("export inside strings, templates, comments, regular expressions and objects is left alone") {
  const std::string source =
      "const s = 'export default 1';\n"
      "const t = `export ${ {export: 1}.export } default`;\n"
      "// export default 2\n"
      "/* export default 3 */\n"
      "const r = /export default [/]/g;\n"
      "const d = 4 / 2 / 1;\n"
      "const o = {export: 1, default: 2};\n"
      "export default function f() { return o.export; }\n";
  auto body = body_of(source);
  CHECK(lines(body) == lines(source) + 2);
  for (const char* kept : {"'export default 1'", "`export ${ {export: 1}.export } default`", "// export default 2",
                           "/* export default 3 */", "/export default [/]/g", "{export: 1, default: 2}"})
    CHECK_MESSAGE(body.find(kept) != std::string::npos, kept);
  CHECK(body.find("return f;") != std::string::npos);
}

TEST_CASE("what is not rewritten gives no body: no default export, re-exports") {
  CHECK_FALSE(module_as_function_body("export const a = 1;\n").has_value());
  CHECK_FALSE(module_as_function_body("export * from './x.js';\nexport default 1;\n").has_value());
  CHECK_FALSE(module_as_function_body("export { a as default } from './x.js';\n").has_value());
  CHECK_FALSE(module_as_function_body("export default function () {\n").has_value());
}
