// Loading and validating projects from a working tree on disk.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "flowstate/runtime/project_loader.hpp"

namespace fs = std::filesystem;
using namespace flowstate;

namespace {

// A project folder in a temporary directory, removed at the end. Starts as
// a small valid project; tests overwrite or remove files to break it.
struct temp_project {
  fs::path dir;
  temp_project() {
    std::string pattern = (fs::temp_directory_path() / "flowstate-project-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    dir = pattern;
    write("flowstate.yaml", "name: counter-demo\n");
    write("flows/counter.yaml",
          "blocks:\n"
          "  - http.Request: api\n"
          "  - js.Function: counter\n"
          "    key: /params/key\n"
          "  - http.Response: reply\n");
    write("functions/counter.js", "export default function (input, state) { return {}; }\n");
    write("drivers/api.yaml", "kind: http.Request\nmethod: POST\npath: /count/{key}\n");
    write("drivers/reply.yaml", "kind: http.Response\n");
  }
  ~temp_project() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel, std::ios::binary) << text;
  }
  void remove(const std::string& rel) const { fs::remove(dir / rel); }

  result<project_revision> load(std::vector<project_problem>* problems = nullptr, parse_cache* cache = nullptr) const {
    auto files = open_worktree(dir.string());
    return load_project(*files, kind_catalog::defaults(), problems, cache);
  }
  // The problems of a load that must fail.
  std::vector<project_problem> problems() const {
    std::vector<project_problem> found;
    auto loaded = load(&found);
    REQUIRE_FALSE(loaded.ok());
    REQUIRE_FALSE(found.empty());
    return found;
  }
};

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The one problem of a failed load, checked for file, line and message parts.
void check_single_problem(const temp_project& project, const std::string& file, int line,
                          std::initializer_list<std::string> parts) {
  auto found = project.problems();
  REQUIRE_MESSAGE(found.size() == 1, project.load().error());
  INFO(found[0].to_string());
  CHECK(found[0].file == file);
  CHECK(found[0].line == line);
  for (const auto& part : parts) CHECK(contains(found[0].message, part));
  CHECK(project.load().error() == found[0].to_string());
}

}  // namespace

TEST_CASE("a valid project loads into the expected model") {
  temp_project p;
  p.write("flowstate.yaml",
          "name: counter-demo\n"
          "durability: relaxed\n"
          "timeout: 500ms\n"
          "trace: {full: 2h, keep: 7d, quota: 200MiB}\n");
  p.write("flows/counter.yaml",
          "blocks:\n"
          "  - http.Request: api\n"
          "  - js.Function: counter\n"
          "    id: count\n"
          "    key: /params/key\n"
          "    input: std:HttpRequest\n"
          "    output: std:HttpResponse\n"
          "    state: Counter\n"
          "  - py.Function: audit\n"
          "  - http.Response: reply\n"
          "on_error: errors\n");
  p.write("flows/errors.yaml", "blocks:\n  - py.Function: audit\n");
  p.write("functions/audit.py", "def entrypoint(input, state):\n    return None\n");
  p.write("functions/README.md", "not a function\n");
  p.write("drivers/api.yaml",
          "kind: http.Request\n"
          "routes: [\"GET /lists/{key}\", 'POST /lists/{key}/todos']\n"
          "timeout: 5s\n"
          "max_body: 65536\n"
          "ratio: 0.25\n"
          "port: \"8080\"\n"
          "tls: false\n"
          "proxy: ~\n"
          "note: \"line\\nbreak \\\"quoted\\\"\"\n");

  std::vector<project_problem> problems{{"stale", 1, "cleared"}};
  auto loaded = p.load(&problems);
  REQUIRE_MESSAGE(loaded.ok(), loaded.error());
  CHECK(problems.empty());
  const project_revision& rev = *loaded;
  CHECK(rev.commit == "");
  CHECK(rev.manifest_.name == "counter-demo");
  CHECK(rev.manifest_.durability == durability_mode::relaxed);
  CHECK(rev.manifest_.timeout_ms == 500);
  CHECK(rev.manifest_.trace_full_ms == 2ull * 3600 * 1000);
  CHECK(rev.manifest_.trace_keep_ms == 7ull * 24 * 3600 * 1000);
  CHECK(rev.manifest_.trace_quota_bytes == 200ull << 20);

  REQUIRE(rev.flows.size() == 2);
  const flow_def& counter = rev.flows.at("counter");
  CHECK(counter.file == "flows/counter.yaml");
  CHECK(counter.on_error == std::optional<std::string>("errors"));
  REQUIRE(counter.blocks.size() == 4);
  const block_def& api = counter.blocks[0];
  CHECK(api.kind == "http.Request");
  CHECK(api.name == "api");
  CHECK(api.id == "api");
  CHECK_FALSE(api.is_function);
  CHECK(api.line == 2);
  const block_def& fn = counter.blocks[1];
  CHECK(fn.kind == "js.Function");
  CHECK(fn.name == "counter");
  CHECK(fn.id == "count");
  CHECK(fn.is_function);
  CHECK(fn.key_pointer == std::optional<std::string>("/params/key"));
  CHECK(fn.input_type == std::optional<std::string>("std:HttpRequest"));
  CHECK(fn.output_type == std::optional<std::string>("std:HttpResponse"));
  CHECK(fn.state_type == std::optional<std::string>("Counter"));
  CHECK(fn.line == 3);
  CHECK(counter.blocks[2].kind == "py.Function");
  CHECK(counter.blocks[3].line == 10);
  CHECK_FALSE(rev.flows.at("errors").on_error.has_value());

  REQUIRE(rev.functions.size() == 2);
  CHECK(rev.functions.at("counter").language == "js");
  CHECK(rev.functions.at("counter").file == "functions/counter.js");
  CHECK(rev.functions.at("counter").source == "export default function (input, state) { return {}; }\n");
  CHECK(rev.functions.at("audit").language == "py");

  REQUIRE(rev.drivers.size() == 2);
  const driver_def& d = rev.drivers.at("api");
  CHECK(d.kind == "http.Request");
  CHECK(d.file == "drivers/api.yaml");
  CHECK(d.config_json ==
        R"({"kind":"http.Request","routes":["GET /lists/{key}","POST /lists/{key}/todos"],"timeout":"5s",)"
        R"("max_body":65536,"ratio":0.25,"port":"8080","tls":false,"proxy":null,"note":"line\nbreak \"quoted\""})");
  CHECK(rev.drivers.at("reply").config_json == R"({"kind":"http.Response"})");
}

TEST_CASE("timeout_ms sets the function timeout and the default is 5 seconds") {
  temp_project p;
  CHECK(p.load()->manifest_.timeout_ms == 5000);
  CHECK(p.load()->manifest_.durability == durability_mode::sync);
  p.write("flowstate.yaml", "name: x\ntimeout_ms: 250\n");
  CHECK(p.load()->manifest_.timeout_ms == 250);
  p.write("flowstate.yaml", "name: x\ntimeout: 2s\n");
  CHECK(p.load()->manifest_.timeout_ms == 2000);
}

TEST_CASE("YAML scalars convert to JSON numbers, bools and null unless quoted") {
  temp_project p;
  p.write("drivers/reply.yaml",
          "kind: http.Response\n"
          "a: 007\nb: -12\nc: 0x1F\nd: 1e3\ne: .5\nf: 'true'\ng: True\nh: .inf\ni: !!str 42\nj:\n"
          "k: {nested: [1, [2, {x: null}]]}\nl: 12345678901234567890123\n");
  auto loaded = p.load();
  REQUIRE_MESSAGE(loaded.ok(), loaded.error());
  CHECK(loaded->drivers.at("reply").config_json ==
        R"({"kind":"http.Response","a":7,"b":-12,"c":31,"d":1000,"e":0.5,"f":"true","g":true,)"
        R"("h":".inf","i":"42","j":null,"k":{"nested":[1,[2,{"x":null}]]},"l":12345678901234567890123})");
}

TEST_CASE("a YAML syntax error names the file and line") {
  temp_project p;
  p.write("flows/counter.yaml",
          "blocks:\n"
          "  - http.Request: api\n"
          "  - js.Function: [counter\n");
  auto found = p.problems();
  REQUIRE(found.size() == 1);
  CHECK(found[0].file == "flows/counter.yaml");
  CHECK(found[0].line >= 3);
  CHECK(contains(found[0].message, "invalid YAML"));
}

TEST_CASE("an alias inside the node it names, or aliases expanding past the limit, are refused with a line") {
  // A self-referencing alias crashed the loader (endless recursion); nested
  // aliases expanded to tens of megabytes.
  temp_project p;
  p.write("drivers/api.yaml", "kind: http.Request\nmethod: POST\npath: /count/{key}\nx: &a [*a]\n");
  check_single_problem(p, "drivers/api.yaml", 4, {"nests deeper than 64 levels"});

  temp_project q;
  std::string laughs = "kind: http.Request\nmethod: POST\npath: /count/{key}\nl0: &l0 [a, a, a, a, a, a, a, a, a, a]\n";
  for (int i = 1; i <= 6; ++i) {
    std::string items;
    for (int j = 0; j < 10; ++j) items += (j ? ", *l" : "*l") + std::to_string(i - 1);
    laughs += "l" + std::to_string(i) + ": &l" + std::to_string(i) + " [" + items + "]\n";
  }
  q.write("drivers/api.yaml", laughs);
  auto expanded = q.problems();
  REQUIRE(expanded.size() == 1);
  CHECK(contains(expanded[0].message, "expands to more than 100000 values"));
}

TEST_CASE("a project name that cannot go into a URL or a folder name is refused at its line") {
  for (const char* good : {"todomvc", "acme.shop", "my_app-2", "A1"}) CHECK(project_name_problem(good).empty());
  for (const char* bad : {"my proj", "a/b", ".hidden", "-x", "a..b", "caf\xc3\xa9", ""})
    CHECK_MESSAGE(!project_name_problem(bad).empty(), bad);
  CHECK(!project_name_problem(std::string(65, 'a')).empty());
  temp_project p;
  p.write("flowstate.yaml", "durability: sync\nname: my proj\n");
  check_single_problem(p, "flowstate.yaml", 2, {R"("my proj" is not a project name)"});
}

TEST_CASE("a second YAML document in a project file is refused, not ignored") {
  temp_project p;
  p.write("flows/counter.yaml",
          "blocks:\n  - http.Request: api\n  - js.Function: counter\n---\nblocks:\n  - http.Response: reply\n");
  check_single_problem(p, "flows/counter.yaml", 5, {"a second YAML document"});
}

TEST_CASE("a project file or function that is not UTF-8 is refused with its line and column") {
  temp_project p;
  p.write("drivers/api.yaml", "kind: http.Request\nmethod: POST\npath: /count/{key}\n# caf\xE9\n");
  check_single_problem(p, "drivers/api.yaml", 4, {"expected UTF-8 text, found byte 0xe9 at column 6"});

  temp_project q;
  q.write("functions/counter.js", "export default function () {\n  return '\xFF';\n}\n");
  auto found = q.problems();
  bool named = false;
  for (const auto& problem : found)
    named |= problem.file == "functions/counter.js" && problem.line == 2 &&
             contains(problem.message, "expected UTF-8 text, found byte 0xff at column 11");
  CHECK_MESSAGE(named, q.load().error());
}

TEST_CASE("an unknown kind is refused with a suggestion") {
  temp_project p;
  p.write("flows/counter.yaml",
          "blocks:\n"
          "  - http.Request: api\n"
          "  - js.Functoin: counter\n"
          "  - http.Response: reply\n");
  check_single_problem(p, "flows/counter.yaml", 3,
                       {"block 2", "unknown kind \"js.Functoin\"", "did you mean \"js.Function\"?"});
}

TEST_CASE("an unknown kind far from every known one lists the known kinds") {
  temp_project p;
  p.write("flows/counter.yaml", "blocks:\n  - opcua.Subscribe: sensors\n");
  check_single_problem(p, "flows/counter.yaml", 2,
                       {"unknown kind \"opcua.Subscribe\"", "expected one of", "js.Function"});
}

TEST_CASE("a block naming a missing function is refused with a suggestion") {
  temp_project p;
  p.write("flows/counter.yaml", "blocks:\n  - http.Request: api\n  - js.Function: countr\n");
  check_single_problem(p, "flows/counter.yaml", 3,
                       {"expected function file functions/countr.js", "no such file", "did you mean \"counter\"?"});
}

TEST_CASE("a function of the other language is named in the refusal") {
  temp_project p;
  p.write("flows/counter.yaml", "blocks:\n  - py.Function: counter\n");
  check_single_problem(p, "flows/counter.yaml", 2,
                       {"expected functions/counter.py", "found functions/counter.js", "use js.Function"});
}

TEST_CASE("a block naming a missing driver is refused") {
  temp_project p;
  p.remove("drivers/reply.yaml");
  check_single_problem(p, "flows/counter.yaml", 5,
                       {"block 3 (http.Response reply)", "expected driver file drivers/reply.yaml", "no such file"});
}

TEST_CASE("a driver whose kind differs from the block's is refused") {
  temp_project p;
  p.write("drivers/reply.yaml", "# the reply\nkind: http.Request\n");
  check_single_problem(p, "flows/counter.yaml", 5,
                       {"kind mismatch", "http.Response", "drivers/reply.yaml:2 declares kind http.Request"});
}

TEST_CASE("an unknown driver kind in a driver file is refused there") {
  temp_project p;
  p.write("drivers/reply.yaml", "kind: http.Respons\n");
  auto found = p.problems();
  REQUIRE(found.size() == 2);
  CHECK(found[0].to_string() ==
        "drivers/reply.yaml:1: unknown driver kind \"http.Respons\" (did you mean \"http.Response\"?)");
  CHECK(found[1].file == "flows/counter.yaml");
  CHECK(contains(found[1].message, "kind mismatch"));
}

TEST_CASE("duplicate block ids in a flow are refused") {
  temp_project p;
  p.write("flows/counter.yaml",
          "blocks:\n"
          "  - js.Function: counter\n"
          "  - js.Function: counter\n");
  check_single_problem(p, "flows/counter.yaml", 3, {"duplicate block id \"counter\"", "first used on line 2"});
  p.write("flows/counter.yaml",
          "blocks:\n"
          "  - js.Function: counter\n"
          "  - js.Function: counter\n"
          "    id: second\n");
  CHECK(p.load().ok());
}

TEST_CASE("a key that is not a JSON pointer is refused") {
  temp_project p;
  p.write("flows/counter.yaml", "blocks:\n  - js.Function: counter\n    key: deviceId\n");
  check_single_problem(p, "flows/counter.yaml", 3, {"`key:`", "starting with \"/\"", "found \"deviceId\""});
  p.write("flows/counter.yaml", "blocks:\n  - js.Function: counter\n    key: /a~2b\n");
  check_single_problem(p, "flows/counter.yaml", 3, {"\"~\" to be followed by 0 or 1"});
}

TEST_CASE("a bad durability is refused with a suggestion") {
  temp_project p;
  p.write("flowstate.yaml", "name: demo\ndurability: relax\n");
  check_single_problem(
      p, "flowstate.yaml", 2,
      {"expected `durability:` to be sync or relaxed", "found \"relax\"", "did you mean \"relaxed\"?"});
}

TEST_CASE("a bad timeout is refused") {
  temp_project p;
  p.write("flowstate.yaml", "name: demo\ntimeout: 5 seconds\n");
  check_single_problem(p, "flowstate.yaml", 2, {"positive duration like 5s or 500ms", "found \"5 seconds\""});
}

TEST_CASE("a bad trace retention is refused naming its line") {
  temp_project p;
  p.write("flowstate.yaml", "name: demo\ntrace:\n  full: 1h\n  keep: forever\n");
  check_single_problem(p, "flowstate.yaml", 4,
                       {"expected `trace.keep:` to be a duration like 24h", "found \"forever\""});
}

TEST_CASE("limits in flowstate.yaml are read with their lines, sizes in binary or decimal units") {
  temp_project p;
  p.write("flowstate.yaml", "name: demo\ntimeout: 2s\nlimits:\n  memory: 64MiB\n  output: 1MB\n  logs: 2048\n");
  std::vector<project_problem> problems;
  auto loaded = p.load(&problems);
  REQUIRE_MESSAGE(loaded.ok(), loaded.error());
  const auto& l = loaded->manifest_.limits;
  CHECK(l.cpu_ms.value == 2000);
  CHECK(l.cpu_ms.line == 2);
  CHECK(l.memory_mb.value == 64);
  CHECK(l.memory_mb.line == 4);
  CHECK(l.output_bytes.value == 1000000);
  CHECK(l.log_bytes.value == 2048);
  CHECK(!l.state_bytes);
}

TEST_CASE("unknown keys in flowstate.yaml and in blocks are refused with suggestions") {
  temp_project p;
  p.write("flowstate.yaml", "name: demo\ndurabilty: sync\n");
  check_single_problem(p, "flowstate.yaml", 2, {"unknown key \"durabilty\"", "did you mean \"durability\"?"});

  p.write("flowstate.yaml", "name: demo\n");
  p.write("flows/counter.yaml", "blocks:\n  - js.Function: counter\n\n    inptu: Telemetry\n");
  check_single_problem(p, "flows/counter.yaml", 4,
                       {"block 1 (js.Function counter)", "unknown key \"inptu\"", "did you mean \"input\"?"});
}

TEST_CASE("a second kind in one block hints at a missing dash") {
  temp_project p;
  p.write("flows/counter.yaml", "blocks:\n  - http.Request: api\n    js.Function: counter\n");
  check_single_problem(p, "flows/counter.yaml", 3, {"unknown key \"js.Function\"", "is a \"- \" missing"});
}

TEST_CASE("a missing name and a missing manifest are refused") {
  temp_project p;
  p.write("flowstate.yaml", "durability: sync\n");
  check_single_problem(p, "flowstate.yaml", 1, {"expected `name:`"});
  p.remove("flowstate.yaml");
  auto found = p.problems();
  REQUIRE(found.size() == 1);
  CHECK(found[0].line == 0);
  CHECK(found[0].to_string().rfind("flowstate.yaml: expected a manifest", 0) == 0);
}

TEST_CASE("an empty flow is refused") {
  temp_project p;
  p.write("flows/counter.yaml", "blocks: []\n");
  check_single_problem(p, "flows/counter.yaml", 1, {"empty flow"});
  p.write("flows/counter.yaml", "# nothing yet\n");
  check_single_problem(p, "flows/counter.yaml", 1, {"empty flow"});
}

TEST_CASE("on_error naming a missing flow is refused with a suggestion") {
  temp_project p;
  p.write("flows/errors.yaml", "blocks:\n  - js.Function: counter\n");
  p.write("flows/counter.yaml", "blocks:\n  - js.Function: counter\non_error: erors\n");
  check_single_problem(p, "flows/counter.yaml", 3, {"flows/erors.yaml does not exist", "did you mean \"errors\"?"});
}

TEST_CASE("every problem is reported, sorted by file and line, and joined in the error") {
  temp_project p;
  p.write("flowstate.yaml", "name: demo\ndurability: fast\n");
  p.write("flows/counter.yaml",
          "blocks:\n"
          "  - js.Functoin: counter\n"
          "  - js.Function: nothere\n"
          "    key: nope\n"
          "on_error: missing\n");
  p.write("flows/broken.yaml", "blocks: [\n");
  std::vector<project_problem> found;
  auto loaded = p.load(&found);
  REQUIRE_FALSE(loaded.ok());
  REQUIRE(found.size() == 6);
  CHECK(found[0].file == "flowstate.yaml");
  CHECK(found[1].file == "flows/broken.yaml");
  CHECK(found[2].line == 2);
  CHECK(found[3].line == 3);
  CHECK(found[4].line == 4);
  CHECK(found[5].line == 5);
  std::string joined;
  for (const auto& problem : found) joined += (joined.empty() ? "" : "\n") + problem.to_string();
  CHECK(loaded.error() == joined);
}

TEST_CASE("a function defined in both languages is refused") {
  temp_project p;
  p.write("functions/counter.py", "def entrypoint(input, state):\n    return None\n");
  check_single_problem(p, "functions/counter.py", 0, {"also defined by functions/counter.js"});
}

TEST_CASE("a driver file without a kind is refused once, in the driver file") {
  temp_project p;
  p.write("drivers/api.yaml", "method: POST\npath: /x\n");
  check_single_problem(p, "drivers/api.yaml", 1, {"expected `kind:`"});
}

TEST_CASE("a load with the parse cache of the last load sees every change and the same model as a fresh load") {
  temp_project p;
  auto cache = make_parse_cache();
  auto load_cached = [&](std::vector<project_problem>* problems = nullptr) { return p.load(problems, cache.get()); };
  auto first = load_cached();
  REQUIRE(first.ok());
  CHECK(first->flows.at("counter").blocks.size() == 3);

  // A new flow and driver, and a changed one: the cached documents of the
  // unchanged files give the same model as parsing everything again.
  p.write("flows/other.yaml", "blocks:\n  - http.Request: other\n  - js.Function: counter\n  - http.Response: reply\n");
  p.write("drivers/other.yaml", "kind: http.Request\nmethod: GET\npath: /other/{key}\n");
  p.write("drivers/api.yaml", "kind: http.Request\nmethod: PUT\npath: /count/{key}\n");
  auto second = load_cached();
  auto fresh = p.load();
  REQUIRE(second.ok());
  REQUIRE(fresh.ok());
  CHECK(second->flows.size() == 2);
  CHECK(second->drivers.at("api").config_json == fresh->drivers.at("api").config_json);
  CHECK(second->drivers.at("other").config_json == fresh->drivers.at("other").config_json);
  CHECK(second->flows.at("other").blocks.at(1).line == fresh->flows.at("other").blocks.at(1).line);
  CHECK(contains(second->drivers.at("api").config_json, "PUT"));

  // A file broken after it was cached is reported, with its line.
  p.write("flows/counter.yaml", "blocks:\n  - http.Request: api\n  - js.Function: nosuch\n  - http.Response: reply\n");
  std::vector<project_problem> problems;
  CHECK_FALSE(load_cached(&problems).ok());
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].file == "flows/counter.yaml");
  CHECK(problems[0].line == 3);

  // Repaired: the same text as before loads again.
  p.write("flows/counter.yaml",
          "blocks:\n"
          "  - http.Request: api\n"
          "  - js.Function: counter\n"
          "    key: /params/key\n"
          "  - http.Response: reply\n");
  auto third = load_cached();
  REQUIRE(third.ok());
  CHECK(third->flows.at("counter").blocks.at(1).key_pointer == std::optional<std::string>("/params/key"));
}

TEST_CASE("with the parse cache, an unchanged flow is checked again against the functions and drivers it names") {
  temp_project p;
  auto cache = make_parse_cache();
  auto load_cached = [&](std::vector<project_problem>* problems = nullptr) { return p.load(problems, cache.get()); };
  REQUIRE(load_cached().ok());

  // The driver the unchanged flow names is broken: the load fails on the
  // driver, and once it is repaired the flow has all its blocks again.
  p.write("drivers/api.yaml", "kind: [http.Request\n");
  std::vector<project_problem> problems;
  CHECK_FALSE(load_cached(&problems).ok());
  REQUIRE_FALSE(problems.empty());
  CHECK(problems[0].file == "drivers/api.yaml");
  p.write("drivers/api.yaml", "kind: http.Request\nmethod: POST\npath: /count/{key}\n");
  auto repaired = load_cached();
  REQUIRE(repaired.ok());
  CHECK(repaired->flows.at("counter").blocks.size() == 3);

  // The driver changes kind, the flow does not: the mismatch is found.
  p.write("drivers/api.yaml", "kind: http.Response\n");
  CHECK_FALSE(load_cached(&problems).ok());
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].file == "flows/counter.yaml");
  CHECK(contains(problems[0].message, "kind mismatch"));
  p.write("drivers/api.yaml", "kind: http.Request\nmethod: POST\npath: /count/{key}\n");
  REQUIRE(load_cached().ok());

  // The function becomes a Python file: the unchanged js.Function block no longer resolves.
  p.remove("functions/counter.js");
  p.write("functions/counter.py", "def entrypoint(input, state):\n    return {}\n");
  CHECK_FALSE(load_cached(&problems).ok());
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].file == "flows/counter.yaml");
  CHECK(problems[0].line == 3);
}
