// flowstate test [--project DIR] [FUNCTION...]: runs the cases in
// tests/<function>/*.yaml against the working tree and prints a table.
//   input: {...}        the message
//   state: {...}        the key's state before (omitted: none)
//   key: K / ctx: {...} ctx fields (key, flow, block, messageId, time)
//   expect:             what must come out (or these keys at the top level):
//     output: v | outputs: [v...]   the messages (omitted: not checked)
//     state: s | state: null        the state after; null: none (omitted: not checked)
//     error: Exception              the call must fail with this type
#include <yaml-cpp/yaml.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "commands.hpp"
#include "flowstate/runtime/yaml_limits.hpp"
#include "function_runner.hpp"

namespace flowstate::cli {
namespace {

namespace fs = std::filesystem;

// A YAML scalar's JSON meaning: quoted is a string; plain may be null, a
// boolean or a number.
enum class scalar_kind { null, boolean, number, string };

scalar_kind kind_of(const YAML::Node& node, double* number, bool* boolean) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") return scalar_kind::string;
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") return scalar_kind::null;
  if (text == "true" || text == "True" || text == "TRUE") return *boolean = true, scalar_kind::boolean;
  if (text == "false" || text == "False" || text == "FALSE") return *boolean = false, scalar_kind::boolean;
  char* end = nullptr;
  *number = std::strtod(text.c_str(), &end);
  if (end && *end == '\0' && text.find_first_of("xXnN") == std::string::npos) return scalar_kind::number;
  return scalar_kind::string;
}

std::string to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return "null";
    case YAML::NodeType::Sequence: {
      std::string out = "[";
      for (size_t i = 0; i < node.size(); ++i) out += (i ? "," : "") + to_json(node[i]);
      return out + "]";
    }
    case YAML::NodeType::Map: {
      std::string out = "{";
      bool first = true;
      for (auto it = node.begin(); it != node.end(); ++it) {
        out += (first ? "" : ",") + json_quote(it->first.as<std::string>()) + ":" + to_json(it->second);
        first = false;
      }
      return out + "}";
    }
    case YAML::NodeType::Scalar: {
      double number;
      bool boolean;
      switch (kind_of(node, &number, &boolean)) {
        case scalar_kind::null:
          return "null";
        case scalar_kind::boolean:
          return boolean ? "true" : "false";
        case scalar_kind::number:
          return node.Scalar();
        case scalar_kind::string:
          return json_quote(node.Scalar());
      }
    }
  }
  return "null";
}

std::string describe(const YAML::Node& node) {
  std::string json = to_json(node);
  return json.size() > 60 ? json.substr(0, 57) + "..." : json;
}

// The first place where `got` differs from `expected`, or empty.
std::string first_difference(const YAML::Node& expected, const YAML::Node& got, const std::string& path) {
  auto mismatch = [&] { return path + ": expected " + describe(expected) + ", got " + describe(got); };
  const bool expected_null = !expected || expected.IsNull(), got_null = !got || got.IsNull();
  if (expected_null || got_null) {
    double n;
    bool b;
    bool e_null = expected_null || (expected.IsScalar() && kind_of(expected, &n, &b) == scalar_kind::null);
    bool g_null = got_null || (got.IsScalar() && kind_of(got, &n, &b) == scalar_kind::null);
    return e_null == g_null ? std::string() : mismatch();
  }
  if (expected.Type() != got.Type()) return mismatch();
  if (expected.IsSequence()) {
    if (expected.size() != got.size())
      return path + ": expected " + std::to_string(expected.size()) + " items, got " + std::to_string(got.size());
    for (size_t i = 0; i < expected.size(); ++i)
      if (auto d = first_difference(expected[i], got[i], path + "[" + std::to_string(i) + "]"); !d.empty()) return d;
    return {};
  }
  if (expected.IsMap()) {
    std::map<std::string, YAML::Node> want, have;
    for (auto it = expected.begin(); it != expected.end(); ++it) want[it->first.as<std::string>()] = it->second;
    for (auto it = got.begin(); it != got.end(); ++it) have[it->first.as<std::string>()] = it->second;
    for (auto& [key, value] : want) {
      auto found = have.find(key);
      if (found == have.end()) return path + "." + key + ": expected " + describe(value) + ", missing";
      if (auto d = first_difference(value, found->second, path + "." + key); !d.empty()) return d;
    }
    for (auto& [key, value] : have)
      if (!want.count(key)) return path + "." + key + ": not expected, got " + describe(value);
    return {};
  }
  double en = 0, gn = 0;
  bool eb = false, gb = false;
  auto ek = kind_of(expected, &en, &eb), gk = kind_of(got, &gn, &gb);
  if (ek != gk) return mismatch();
  if (ek == scalar_kind::number) return en == gn ? std::string() : mismatch();
  if (ek == scalar_kind::boolean) return eb == gb ? std::string() : mismatch();
  return expected.Scalar() == got.Scalar() ? std::string() : mismatch();
}

struct case_outcome {
  std::string file;
  bool passed = false;
  std::string difference;
};

// Empty, or the first key of `map` that is not in `allowed` (a typo would
// make the case check nothing).
std::string unknown_key(const YAML::Node& map, std::initializer_list<std::string_view> allowed,
                        const std::string& where) {
  if (!map.IsMap()) return {};
  for (const auto& entry : map) {
    const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "(a key that is not text)";
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      std::string expected;
      for (auto k : allowed) expected += (expected.empty() ? "" : ", ") + std::string(k);
      return "line " + std::to_string(entry.first.Mark().line + 1) + ": unknown key " + where + key +
             "; expected one of " + expected;
    }
  }
  return {};
}

case_outcome run_case_checked(function_runner& runner, const fs::path& file, const std::string& display,
                              const std::pair<std::string, std::string>& block);

// A case file's mistakes (a wrong type, an endless alias) fail that case,
// naming the line, instead of ending the command.
case_outcome run_case(function_runner& runner, const fs::path& file, const std::string& display,
                      const std::pair<std::string, std::string>& block) {
  try {
    return run_case_checked(runner, file, display, block);
  } catch (const YAML::Exception& e) {
    return {display, false, "line " + std::to_string(e.mark.line + 1) + ": " + e.msg};
  }
}

case_outcome run_case_checked(function_runner& runner, const fs::path& file, const std::string& display,
                              const std::pair<std::string, std::string>& block) {
  case_outcome outcome{display, false, {}};
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(file.string());
  } catch (const YAML::Exception& e) {
    outcome.difference = "not valid YAML: " + std::string(e.what());
    return outcome;
  }
  if (auto bad = yaml_limits_problem(doc)) {
    outcome.difference = "line " + std::to_string(bad->line) + ": " + bad->message;
    return outcome;
  }
  if (!doc.IsMap() || !doc["input"]) {
    outcome.difference = "expected a map with input:";
    return outcome;
  }
  outcome.difference = unknown_key(doc, {"input", "state", "key", "ctx", "expect", "output", "outputs", "error"}, "");
  if (outcome.difference.empty())
    outcome.difference = unknown_key(doc["expect"], {"output", "outputs", "state", "error"}, "expect.");
  if (outcome.difference.empty())
    outcome.difference = unknown_key(doc["ctx"], {"key", "flow", "block", "messageId", "time"}, "ctx.");
  if (!outcome.difference.empty()) return outcome;
  YAML::Node expect = doc["expect"] ? doc["expect"] : doc;
  sandbox::call_request request;
  request.input_json = to_json(doc["input"]);
  // At the top level `state:` is the state before; under expect: the state after.
  if (doc["state"] && !doc["state"].IsNull()) request.state_json = to_json(doc["state"]);
  YAML::Node ctx = doc["ctx"];
  auto text = [&](const char* name, const std::string& fallback) {
    return ctx && ctx[name] ? ctx[name].as<std::string>() : fallback;
  };
  request.ctx.key = doc["key"] ? doc["key"].as<std::string>() : text("key", "test-key");
  request.ctx.flow = text("flow", block.first);
  request.ctx.block = text("block", block.second);
  request.ctx.revision = "worktree";
  request.ctx.message_id = text("messageId", "test-" + file.stem().string());
  request.ctx.time_ms = ctx && ctx["time"] ? ctx["time"].as<int64_t>() : 1700000000000;
  const std::optional<std::string> state_before = request.state_json;
  auto result = runner.call(std::move(request));

  if (expect["error"]) {
    const std::string want = expect["error"].as<std::string>();
    if (want != "Exception" && want != "Timeout" && want != "ResourceExhausted") {
      outcome.difference = "line " + std::to_string(expect["error"].Mark().line + 1) + ": error: " + want +
                           " is not an error a function call ends in; expected Exception, Timeout or "
                           "ResourceExhausted";
      return outcome;
    }
    if (result.status == sandbox::call_status::ok)
      outcome.difference = "expected a " + want + " error, the call succeeded";
    else if (want != error_type(result.status))
      outcome.difference =
          std::string("expected a ") + want + " error, got " + error_type(result.status) + ": " + result.error_message;
    outcome.passed = outcome.difference.empty();
    return outcome;
  }
  if (result.status != sandbox::call_status::ok) {
    outcome.difference = std::string(error_type(result.status)) + ": " + result.error_message;
    return outcome;
  }
  YAML::Node got_outputs = YAML::Load("[" + [&] {
    std::string joined;
    for (size_t i = 0; i < result.outputs.size(); ++i) joined += (i ? "," : "") + result.outputs[i];
    return joined;
  }() + "]");
  if (expect["output"]) {
    if (result.outputs.size() != 1)
      outcome.difference = "output: expected one message, got " + std::to_string(result.outputs.size());
    else
      outcome.difference = first_difference(expect["output"], got_outputs[0], "output");
  } else if (expect["outputs"]) {
    outcome.difference = first_difference(expect["outputs"], got_outputs, "outputs");
  }
  // expect.state, or a top-level state only when the case has an expect: map.
  if (outcome.difference.empty() && doc["expect"] && expect["state"]) {
    YAML::Node want = expect["state"];
    if (want.IsNull()) {  // no state after: deleted, or none before and left unchanged
      const bool none = result.state == sandbox::state_change::erase ||
                        (result.state == sandbox::state_change::unchanged && !state_before);
      if (!none)
        outcome.difference = "state: expected deleted, got " +
                             std::string(result.state == sandbox::state_change::set ? result.state_json : "unchanged");
    } else {
      std::string after = result.state == sandbox::state_change::set     ? result.state_json
                          : result.state == sandbox::state_change::erase ? "null"
                                                                         : state_before.value_or("null");
      outcome.difference = first_difference(want, YAML::Load(after), "state");
    }
  }
  outcome.passed = outcome.difference.empty();
  return outcome;
}

struct test_options {
  std::string project = ".";
  std::vector<std::string> functions;
};

int run_tests(const test_options& o) {
  std::error_code ec;
  const std::string dir = fs::weakly_canonical(fs::absolute(o.project), ec).string();
  auto revision = load_worktree(dir);
  if (!revision) {
    std::fprintf(stderr, "test: the project has problems:\n%s\n", revision.error().c_str());
    return 2;
  }
  std::vector<std::string> functions = o.functions;
  if (functions.empty()) {
    for (auto& entry : fs::directory_iterator(fs::path(dir) / "tests", ec))
      if (entry.is_directory()) functions.push_back(entry.path().filename().string());
    std::sort(functions.begin(), functions.end());
  }
  if (functions.empty()) {
    std::fprintf(stderr, "test: no cases: add tests/<function>/*.yaml\n");
    return 2;
  }
  std::vector<case_outcome> outcomes;
  for (const std::string& name : functions) {
    auto function = revision->functions.find(name);
    if (function == revision->functions.end()) {
      outcomes.push_back({"tests/" + name + "/", false, "no function \"" + name + "\" in functions/"});
      continue;
    }
    std::vector<fs::path> files;
    for (auto& entry : fs::directory_iterator(fs::path(dir) / "tests" / name, ec)) {
      auto ext = entry.path().extension();
      if (entry.is_regular_file() && (ext == ".yaml" || ext == ".yml")) files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      outcomes.push_back({"tests/" + name + "/", false, "no *.yaml cases"});
      continue;
    }
    auto runner = function_runner::start(dir, *revision, function->second);
    if (!runner) {
      for (auto& file : files)
        outcomes.push_back({"tests/" + name + "/" + file.filename().string(), false, runner.error()});
      continue;
    }
    auto block = block_of_function(*revision, name);
    for (auto& file : files)
      outcomes.push_back(run_case(**runner, file, "tests/" + name + "/" + file.filename().string(), block));
  }
  size_t width = 4;
  for (auto& outcome : outcomes) width = std::max(width, outcome.file.size());
  std::printf("%-*s  %-6s  %s\n", static_cast<int>(width), "case", "result", "first difference");
  int failed = 0;
  for (auto& outcome : outcomes) {
    failed += outcome.passed ? 0 : 1;
    std::printf("%-*s  %-6s  %s\n", static_cast<int>(width), outcome.file.c_str(), outcome.passed ? "pass" : "FAIL",
                outcome.difference.c_str());
  }
  std::printf("%zu passed, %d failed\n", outcomes.size() - static_cast<size_t>(failed), failed);
  return failed ? 1 : 0;
}

}  // namespace

void register_test_command(CLI::App& app) {
  auto o = std::make_shared<test_options>();
  auto* cmd = app.add_subcommand("test", "Run the function cases in tests/<function>/*.yaml against the working tree");
  cmd->add_option("FUNCTION", o->functions, "only these functions (default: every folder in tests/)");
  cmd->add_option("--project", o->project, "the project directory (default: .)");
  cmd->callback([o] {
    int rc = run_tests(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace flowstate::cli
