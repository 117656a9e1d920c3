// Git operations and the git-commit file source, against real repositories.
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "flowstate/runtime/file_source.hpp"
#include "flowstate/runtime/git_repo.hpp"
#include "flowstate/runtime/project_loader.hpp"

namespace fs = std::filesystem;
using namespace flowstate;

namespace {

// A fresh `git init` in a temporary directory, removed at the end.
struct temp_repo {
  fs::path dir;
  explicit temp_repo(const std::string& branch = "main") {
    std::string pattern = (fs::temp_directory_path() / "flowstate-git-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    dir = pattern;
    git("init -q -b " + branch);
  }
  ~temp_repo() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  std::string path() const { return dir.string(); }
  void write(const std::string& rel, const std::string& text) const {
    fs::create_directories((dir / rel).parent_path());
    std::ofstream(dir / rel, std::ios::binary) << text;
  }
  // Runs git in the repository; returns its stdout without the final newline.
  std::string git(const std::string& args) const {
    std::string command = "git -C '" + dir.string() + "' -c user.name=t -c user.email=t@t " + args + " 2>/dev/null";
    FILE* pipe = popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string out;
    char buffer[256];
    while (size_t n = fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
    pclose(pipe);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }
  // Commits the working tree with the git command line (another writer).
  std::string cli_commit(const std::string& message) const {
    git("add -A");
    git("commit -q -m '" + message + "'");
    return git("rev-parse HEAD");
  }
};

// create_commit_from_worktree + update_head + stage_commit, as a deploy does.
std::string deploy(const temp_repo& repo, const std::string& message) {
  auto before = head_commit(repo.path());
  REQUIRE(before.ok());
  auto commit = create_commit_from_worktree(repo.path(), message);
  REQUIRE_MESSAGE(commit.ok(), commit.error());
  auto moved = update_head(repo.path(), *commit, *before);
  REQUIRE_MESSAGE(moved.ok(), moved.error());
  auto staged = stage_commit(repo.path(), *commit);
  REQUIRE_MESSAGE(staged.ok(), staged.error());
  return *commit;
}

}  // namespace

TEST_CASE("a repository without commits has an empty head commit") {
  temp_repo repo;
  auto head = head_commit(repo.path());
  REQUIRE(head.ok());
  CHECK(*head == "");
}

TEST_CASE("opening a folder that is not a repository is an error naming it") {
  auto head = head_commit("/nonexistent/flowstate-repo");
  REQUIRE_FALSE(head.ok());
  CHECK(head.error().find("/nonexistent/flowstate-repo") != std::string::npos);
}

TEST_CASE("create_commit does not move HEAD until update_head") {
  temp_repo repo;
  repo.write("flowstate.yaml", "name: demo\n");
  const std::string first = repo.cli_commit("first");

  repo.write("flows/a.yaml", "blocks: []\n");
  auto commit = create_commit_from_worktree(repo.path(), "second");
  REQUIRE_MESSAGE(commit.ok(), commit.error());
  CHECK(commit->size() == 40);
  // Nothing staged yet: a deploy the node refuses leaves the index as it was.
  CHECK(repo.git("status --porcelain") == "?? flows/");
  CHECK(*head_commit(repo.path()) == first);
  CHECK(repo.git("rev-parse HEAD") == first);
  CHECK(repo.git("rev-parse " + *commit + "^") == first);

  auto moved = update_head(repo.path(), *commit, first);
  REQUIRE_MESSAGE(moved.ok(), moved.error());
  CHECK(*head_commit(repo.path()) == *commit);
  CHECK(repo.git("rev-parse refs/heads/main") == *commit);
  CHECK(repo.git("symbolic-ref HEAD") == "refs/heads/main");
  // Then the index matches the new commit: nothing left to stage or commit.
  REQUIRE(stage_commit(repo.path(), *commit).ok());
  CHECK(repo.git("status --porcelain") == "");
}

TEST_CASE("the first commit of an unborn branch has no parent and creates the branch") {
  temp_repo repo("trunk");
  repo.write("flowstate.yaml", "name: demo\n");
  auto commit = create_commit_from_worktree(repo.path(), "initial");
  REQUIRE_MESSAGE(commit.ok(), commit.error());
  CHECK(*head_commit(repo.path()) == "");
  CHECK(repo.git("rev-list --count " + *commit) == "1");

  REQUIRE(update_head(repo.path(), *commit, "").ok());
  CHECK(repo.git("rev-parse refs/heads/trunk") == *commit);

  SUBCASE("a second creation of the branch is refused") {
    auto again = update_head(repo.path(), *commit, "");
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().find("refs/heads/trunk") != std::string::npos);
    CHECK(again.error().find(*commit) != std::string::npos);
  }
}

TEST_CASE("update_head refuses when HEAD moved since the deploy began") {
  temp_repo repo;
  repo.write("flowstate.yaml", "name: demo\n");
  const std::string base = repo.cli_commit("base");

  repo.write("functions/a.js", "export default function () {}\n");
  auto ours = create_commit_from_worktree(repo.path(), "ours");
  REQUIRE(ours.ok());
  // Another writer commits first.
  repo.write("functions/b.js", "export default function () {}\n");
  const std::string theirs = repo.cli_commit("theirs");

  auto moved = update_head(repo.path(), *ours, base);
  REQUIRE_FALSE(moved.ok());
  CHECK(moved.error().find("moved") != std::string::npos);
  CHECK(moved.error().find(base) != std::string::npos);
  CHECK(moved.error().find(theirs) != std::string::npos);
  CHECK(*head_commit(repo.path()) == theirs);
}

TEST_CASE("update_head refuses a commit that does not exist") {
  temp_repo repo;
  repo.write("flowstate.yaml", "name: demo\n");
  const std::string base = repo.cli_commit("base");
  auto moved = update_head(repo.path(), std::string(40, 'a'), base);
  REQUIRE_FALSE(moved.ok());
  CHECK(*head_commit(repo.path()) == base);
}

TEST_CASE("commit_message round-trips the message byte for byte") {
  temp_repo repo;
  repo.write("flowstate.yaml", "name: demo\n");
  for (std::string message : {std::string("one line"), std::string("subject\n\nbody line 1\nbody line 2\n"),
                              std::string("unicode: caf\xc3\xa9")}) {
    auto commit = create_commit_from_worktree(repo.path(), message);
    REQUIRE(commit.ok());
    auto read = commit_message(repo.path(), *commit);
    REQUIRE(read.ok());
    CHECK(*read == message);
  }
}

TEST_CASE("the author comes from the repository's config") {
  temp_repo repo;
  repo.git("config user.name 'Ada Lovelace'");
  repo.git("config user.email ada@example.com");
  repo.write("flowstate.yaml", "name: demo\n");
  std::string commit = deploy(repo, "by ada");
  CHECK(repo.git("log -1 --format=%an%x20%ae " + commit) == "Ada Lovelace ada@example.com");
  CHECK(repo.git("log -1 --format=%cn " + commit) == "Ada Lovelace");
}

TEST_CASE("create_commit stages like git add -A and honours .gitignore") {
  temp_repo repo;
  repo.write(".gitignore", "secret.txt\nbuild/\n");
  repo.write("flowstate.yaml", "name: demo\n");
  repo.write("secret.txt", "do not commit\n");
  repo.write("build/out.o", "binary\n");
  repo.write("functions/old.js", "old\n");
  std::string first = deploy(repo, "first");
  CHECK(repo.git("ls-tree -r --name-only " + first) == ".gitignore\nflowstate.yaml\nfunctions/old.js");

  fs::remove(repo.dir / "functions/old.js");
  repo.write("functions/new.js", "new\n");
  repo.write("flowstate.yaml", "name: renamed\n");
  std::string second = deploy(repo, "second");
  CHECK(repo.git("ls-tree -r --name-only " + second) == ".gitignore\nflowstate.yaml\nfunctions/new.js");
  CHECK(repo.git("show " + second + ":flowstate.yaml") == "name: renamed");
}

TEST_CASE("commit_exists tells commits from missing or non-commit objects") {
  temp_repo repo;
  repo.write("flowstate.yaml", "name: demo\n");
  std::string commit = repo.cli_commit("c");
  CHECK(*commit_exists(repo.path(), commit) == true);
  CHECK(*commit_exists(repo.path(), std::string(40, '0')) == false);
  std::string blob = repo.git("rev-parse " + commit + ":flowstate.yaml");
  CHECK(*commit_exists(repo.path(), blob) == false);
  auto bad = commit_exists(repo.path(), "not-hex");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().find("40-hex") != std::string::npos);
}

TEST_CASE("resolve turns HEAD, full and abbreviated ids into full commit ids") {
  temp_repo repo;
  auto unborn = resolve(repo.path(), "HEAD");
  REQUIRE_FALSE(unborn.ok());
  CHECK(unborn.error().find("unborn") != std::string::npos);

  repo.write("flowstate.yaml", "name: demo\n");
  std::string commit = repo.cli_commit("c");
  CHECK(*resolve(repo.path(), "HEAD") == commit);
  CHECK(*resolve(repo.path(), commit) == commit);
  CHECK(*resolve(repo.path(), commit.substr(0, 8)) == commit);
  CHECK_FALSE(resolve(repo.path(), "0000000").ok());
}

TEST_CASE("the git source reads the committed version, not later edits of the working tree") {
  temp_repo repo;
  repo.write("flowstate.yaml", "name: committed\n");
  repo.write("functions/counter.js", "// v1\n");
  std::string commit = deploy(repo, "v1");

  repo.write("flowstate.yaml", "name: edited\n");
  repo.write("functions/counter.js", "// v2\n");
  repo.write("functions/extra.js", "// not committed\n");
  fs::remove(repo.dir / "functions/counter.js");

  auto source = open_git_commit(repo.path(), commit);
  REQUIRE_MESSAGE(source.ok(), source.error());
  file_source& files = **source;
  CHECK(files.revision() == commit);
  CHECK(files.read("flowstate.yaml") == std::optional<std::string>("name: committed\n"));
  CHECK(files.read("functions/counter.js") == std::optional<std::string>("// v1\n"));
  CHECK(files.list("functions") == std::vector<std::string>{"counter.js"});
  CHECK(files.list("") == std::vector<std::string>{"flowstate.yaml"});
  CHECK_FALSE(files.read("functions").has_value());
  CHECK_FALSE(files.read("missing.yaml").has_value());
  CHECK(files.list("missing").empty());

  auto worktree = open_worktree(repo.path());
  CHECK(worktree->read("flowstate.yaml") == std::optional<std::string>("name: edited\n"));
  CHECK(worktree->revision() == "");

  auto project = load_project(files, kind_catalog::defaults());
  REQUIRE_MESSAGE(project.ok(), project.error());
  CHECK(project->commit == commit);
  CHECK(project->manifest_.name == "committed");
  CHECK(project->functions.at("counter").source == "// v1\n");
}

TEST_CASE("opening a commit that does not exist is an error naming it") {
  temp_repo repo;
  repo.write("flowstate.yaml", "name: demo\n");
  repo.cli_commit("c");
  auto source = open_git_commit(repo.path(), "deadbeef");
  REQUIRE_FALSE(source.ok());
  CHECK(source.error().find("deadbeef") != std::string::npos);
}
