// The project loader (runtime/project_loader.hpp) on an in-memory project:
// the input is a set of files, each introduced by a line "=== PATH". After
// a load, what the node does at deploy with the result runs too: the
// Python modules are collected, and every http.Request driver's
// configuration is parsed into routes (drivers/http_routes.hpp) and added to
// one route table. Properties: a failed load names at least one problem,
// and every driver's configuration is valid JSON.
#include <simdjson.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "flowstate/drivers/http_routes.hpp"
#include "flowstate/runtime/project_loader.hpp"
#include "flowstate/runtime/python_modules.hpp"

using namespace flowstate;

namespace {

// A project tree held in memory: paths like "flows/counter.yaml".
class memory_source final : public file_source {
 public:
  explicit memory_source(std::map<std::string, std::string> files) : files_(std::move(files)) {}

  std::optional<std::string> read(const std::string& path) override {
    auto found = files_.find(path);
    if (found == files_.end()) return std::nullopt;
    return found->second;
  }
  std::vector<std::string> list(const std::string& dir) override { return entries(dir, false); }
  std::vector<std::string> list_dirs(const std::string& dir) override { return entries(dir, true); }
  std::string revision() const override { return "0123456789abcdef0123456789abcdef01234567"; }

 private:
  std::vector<std::string> entries(const std::string& dir, bool folders) {
    std::set<std::string> names;
    const std::string prefix = dir.empty() ? "" : dir + "/";
    for (const auto& [path, text] : files_) {
      if (path.compare(0, prefix.size(), prefix) != 0) continue;
      std::string_view rest = std::string_view(path).substr(prefix.size());
      auto slash = rest.find('/');
      if (rest.empty() || slash == 0) continue;
      if (folders && slash != std::string_view::npos) names.emplace(rest.substr(0, slash));
      if (!folders && slash == std::string_view::npos) names.emplace(rest);
    }
    return {names.begin(), names.end()};
  }

  std::map<std::string, std::string> files_;
};

std::map<std::string, std::string> split_files(std::string_view input) {
  std::map<std::string, std::string> files;
  std::string* current = nullptr;
  std::size_t at = 0;
  while (at < input.size()) {
    auto end = input.find('\n', at);
    std::string_view line = input.substr(at, end == std::string_view::npos ? std::string_view::npos : end - at);
    at = end == std::string_view::npos ? input.size() : end + 1;
    if (line.substr(0, 4) == "=== ") {
      current = &files[std::string(line.substr(4))];
      continue;
    }
    if (current) {
      current->append(line);
      if (end != std::string_view::npos) current->push_back('\n');
    }
  }
  return files;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  memory_source files(split_files(std::string_view(reinterpret_cast<const char*>(data), size)));
  std::vector<project_problem> problems;
  auto loaded = load_project(files, kind_catalog::defaults(), &problems);
  if (!loaded) {
    if (problems.empty() || loaded.error().empty()) {
      std::fprintf(stderr, "a failed load names no problem\n");
      std::abort();
    }
    return 0;
  }
  (void)collect_python_modules(files, *loaded);
  http::route_table table;
  simdjson::dom::parser parser;
  for (const auto& [name, driver] : loaded->drivers) {
    simdjson::dom::element config;
    auto error = parser.parse(driver.config_json).get(config);
    // The loader keeps a YAML integer of any length as a JSON number (valid
    // JSON), which simdjson refuses: known, see docs/fuzzing.md.
    if (error == simdjson::NUMBER_ERROR || error == simdjson::NUMBER_OUT_OF_RANGE) continue;
    if (error) {
      std::fprintf(stderr, "%s: the configuration is not valid JSON: %s\n", driver.file.c_str(),
                   driver.config_json.c_str());
      std::abort();
    }
    if (driver.kind != "http.Request") continue;
    auto routes = http::parse_request_routes(driver.config_json);
    if (!routes) continue;
    for (auto& r : *routes) (void)table.add(std::move(r));
  }
  return 0;
}
