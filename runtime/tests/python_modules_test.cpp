// Which files of a project Python functions may import, and under which names.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "flowstate/runtime/python_modules.hpp"

namespace fs = std::filesystem;
using namespace flowstate;

namespace {

struct temp_tree {
  fs::path dir;
  temp_tree() {
    std::string pattern = (fs::temp_directory_path() / "flowstate-pymodules-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    dir = pattern;
  }
  ~temp_tree() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel) << text;
  }
  // name -> "filename|package?|source"
  std::map<std::string, std::string> collect(const std::set<std::string>& skip = {}) const {
    auto files = open_worktree(dir.string());
    auto set = collect_python_modules(*files, skip);
    REQUIRE(set);
    std::map<std::string, std::string> out;
    for (auto& m : set->modules) out[m.name] = m.filename + "|" + (m.is_package ? "p" : "m") + "|" + m.source;
    return out;
  }
};

}  // namespace

TEST_CASE("modules are named by their path under functions/ and vendor/") {
  temp_tree t;
  t.write("functions/helpers.py", "A = 1\n");
  t.write("functions/lib/deep.py", "B = 2\n");
  t.write("vendor/attr/__init__.py", "from . import _make\n");
  t.write("vendor/attr/_make.py", "C = 3\n");
  t.write("flows/x.yaml", "blocks: []\n");
  auto modules = t.collect();
  CHECK(modules == std::map<std::string, std::string>{{"helpers", "functions/helpers.py|m|A = 1\n"},
                                                      {"lib", "functions/lib|p|"},
                                                      {"lib.deep", "functions/lib/deep.py|m|B = 2\n"},
                                                      {"attr", "vendor/attr/__init__.py|p|from . import _make\n"},
                                                      {"attr._make", "vendor/attr/_make.py|m|C = 3\n"}});
}

TEST_CASE("functions/ wins over vendor/ and a package over a module of the same name") {
  temp_tree t;
  t.write("functions/shared.py", "mine\n");
  t.write("vendor/shared.py", "theirs\n");
  t.write("vendor/pkg.py", "module\n");
  t.write("vendor/pkg/__init__.py", "package\n");
  auto modules = t.collect();
  CHECK(modules["shared"] == "functions/shared.py|m|mine\n");
  CHECK(modules["pkg"] == "vendor/pkg/__init__.py|p|package\n");
}

TEST_CASE("metadata folders, caches, compiled files and skipped files are not modules") {
  temp_tree t;
  t.write("vendor/attrs-23.1.0.dist-info/METADATA", "x\n");
  t.write("vendor/attrs-23.1.0.dist-info/entry.py", "x\n");
  t.write("vendor/attr/__pycache__/_make.cpython-311.py", "x\n");
  t.write("vendor/attr/_make.pyc", "x\n");
  t.write("vendor/fast/_speedups.cpython-311-x86_64-linux-gnu.so", "x\n");
  t.write("vendor/fast/__init__.py", "ok\n");
  t.write("vendor/1bad.py", "x\n");
  t.write("functions/counter.py", "def entrypoint(i, s): pass\n");
  auto modules = t.collect({"functions/counter.py"});
  CHECK(modules == std::map<std::string, std::string>{{"fast", "vendor/fast/__init__.py|p|ok\n"}});
}

TEST_CASE("the hash changes with any source and not otherwise") {
  temp_tree t;
  t.write("functions/helpers.py", "A = 1\n");
  auto hash = [&] {
    auto files = open_worktree(t.dir.string());
    return collect_python_modules(*files, std::set<std::string>{})->hash;
  };
  std::string first = hash();
  CHECK(first.size() == 16);
  CHECK(hash() == first);
  t.write("functions/helpers.py", "A = 2\n");
  CHECK(hash() != first);
}

TEST_CASE("modules over the size limit are refused naming the limit") {
  temp_tree t;
  t.write("vendor/big.py", std::string(3 << 20, '#'));
  auto files = open_worktree(t.dir.string());
  auto set = collect_python_modules(*files, {}, size_t{2} << 20);
  REQUIRE(!set);
  CHECK(set.error().find("more than 2 MiB") != std::string::npos);
}

TEST_CASE("the files py.Function blocks run are not modules") {
  temp_tree t;
  t.write("functions/counter.py", "def entrypoint(i, s): pass\n");
  t.write("functions/helpers.py", "A = 1\n");
  project_revision revision;
  revision.functions["counter"] = function_def{"counter", "py", "functions/counter.py", ""};
  block_def block;
  block.kind = "py.Function";
  block.name = "counter";
  revision.flows["f"].blocks.push_back(block);
  auto files = open_worktree(t.dir.string());
  auto set = collect_python_modules(*files, revision);
  REQUIRE(set);
  REQUIRE(set->modules.size() == 1);
  CHECK(set->modules[0].name == "helpers");
}
