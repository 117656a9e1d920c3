// Runs the official JSON-Schema-Test-Suite (drafts 2020-12 and 07) against
// the validator. Fails when a required test (a top-level file) fails; prints
// optional/ and optional/format/ counts without failing on them. Fails when a
// draft's folder is in none of the suite folders given: never a silent pass.
//
//   schema_conformance SUITE_DIR [FALLBACK_SUITE_DIR] [--verbose]
#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "flowstate/schema/schema.hpp"

namespace fs = std::filesystem;
using namespace flowstate::schema;

namespace {

struct counts {
  int passed = 0;
  int failed = 0;
};

bool verbose = false;

void run_file(const fs::path& file, draft d, const resolver& resolve, bool format_assertion, counts& c,
              bool print_failures) {
  simdjson::dom::parser parser;
  simdjson::dom::element groups;
  if (parser.load(file.string()).get(groups) != simdjson::SUCCESS) {
    std::printf("  cannot parse %s\n", file.c_str());
    ++c.failed;
    return;
  }
  simdjson::dom::array group_list;
  if (groups.get_array().get(group_list) != simdjson::SUCCESS) return;
  for (simdjson::dom::element group : group_list) {
    std::string_view description = group["description"].get_string().value_unsafe();
    std::string schema_text = simdjson::minify(group["schema"].value_unsafe());
    compile_options options;
    options.default_draft = d;
    options.format_assertion = format_assertion;
    options.resolve = resolve;
    auto compiled = validator::compile(schema_text, options);
    simdjson::dom::array tests;
    if (group["tests"].get_array().get(tests) != simdjson::SUCCESS) continue;
    for (simdjson::dom::element test : tests) {
      std::string_view test_description = test["description"].get_string().value_unsafe();
      bool expected_valid = test["valid"].get_bool().value_unsafe();
      bool ok;
      std::string detail;
      if (!compiled) {
        ok = false;
        detail = "schema refused: " + compiled.error().to_string();
      } else {
        simdjson::dom::element data = test["data"].value_unsafe();
        bool fast = compiled->is_valid(data);
        std::vector<validation_error> errors;
        bool full = compiled->validate(data, errors);
        ok = fast == expected_valid && full == expected_valid && full == errors.empty();
        if (!ok) {
          detail = "expected " + std::string(expected_valid ? "valid" : "invalid") +
                   ", is_valid=" + (fast ? "true" : "false") + ", validate=" + (full ? "true" : "false") + " with " +
                   std::to_string(errors.size()) + " errors";
          if (!errors.empty()) detail += " (first: " + errors[0].keyword_location + ": " + errors[0].message + ")";
        }
      }
      if (ok) {
        ++c.passed;
      } else {
        ++c.failed;
        if (print_failures || verbose)
          std::printf("  FAIL %s: %.*s / %.*s: %s\n", file.filename().c_str(), int(description.size()),
                      description.data(), int(test_description.size()), test_description.data(), detail.c_str());
      }
    }
  }
}

std::vector<fs::path> json_files(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".json") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<fs::path> suites;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--verbose" || arg == "-v")
      verbose = true;
    else
      suites.emplace_back(arg);
  }
  struct draft_dir {
    const char* name;
    draft d;
  };
  bool required_failed = false;
  for (auto dd : {draft_dir{"draft2020-12", draft::draft2020_12}, draft_dir{"draft7", draft::draft7}}) {
    fs::path suite;
    for (const auto& s : suites)
      if (fs::is_directory(s / "tests" / dd.name)) {
        suite = s;
        break;
      }
    if (suite.empty()) {
      // A missing draft is a failure, never a skip: a test that runs nothing
      // must not pass.
      std::printf("%s: FAILED, no tests/%s in any of the suite folders given:", dd.name, dd.name);
      for (const auto& s : suites) std::printf(" %s", s.c_str());
      std::printf("\n");
      required_failed = true;
      continue;
    }
    resolver resolve = directory_resolver({{"http://localhost:1234/", (suite / "remotes").string()}});
    fs::path dir = suite / "tests" / dd.name;
    counts required, optional, format;
    for (const auto& f : json_files(dir)) run_file(f, dd.d, resolve, false, required, true);
    for (const auto& f : json_files(dir / "optional")) run_file(f, dd.d, resolve, false, optional, false);
    for (const auto& f : json_files(dir / "optional" / "format")) run_file(f, dd.d, resolve, true, format, false);
    std::printf("%s (%s): required %d/%d passed; optional %d/%d; optional/format %d/%d\n", dd.name, suite.c_str(),
                required.passed, required.passed + required.failed, optional.passed, optional.passed + optional.failed,
                format.passed, format.passed + format.failed);
    if (required.passed + required.failed == 0)
      std::printf("%s: FAILED, %s holds no test files\n", dd.name, dir.c_str());
    required_failed |= required.failed > 0 || required.passed == 0;
  }
  return required_failed ? 1 : 0;
}
