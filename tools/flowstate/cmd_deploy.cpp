// flowstate deploy: validate the working tree, commit it, activate it on
// the running node, and only then move the branch.
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

#include "admin_client.hpp"
#include "commands.hpp"
#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/fault.hpp"
#include "flowstate/runtime/file_source.hpp"
#include "flowstate/runtime/git_repo.hpp"
#include "flowstate/runtime/project_loader.hpp"
#include "flowstate/runtime/python_modules.hpp"
#include "flowstate/sandbox/bundle.hpp"
#include "node_files.hpp"

namespace flowstate::cli {
namespace {

struct deploy_options {
  std::string message;
  std::string project = ".";
  std::string data_dir;
  std::string admin;
};

// Syntax of every function, by the worker of its language (`--check`), run
// in the project directory so that it names files as functions/NAME.js.
bool check_syntax_with(const std::string& dir, const std::string& worker, const std::vector<std::string>& files) {
  if (files.empty()) return true;
  pid_t pid = fork();
  if (pid == 0) {
    if (chdir(dir.c_str()) != 0) _exit(127);
    dup2(2, 1);  // the findings are part of the refusal, on stderr
    std::vector<char*> argv{const_cast<char*>(worker.c_str()), const_cast<char*>("--check")};
    for (auto& f : files) argv.push_back(const_cast<char*>(f.c_str()));
    argv.push_back(nullptr);
    execv(worker.c_str(), argv.data());
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFEXITED(st) && WEXITSTATUS(st) == 127) std::fprintf(stderr, "deploy: cannot run %s\n", worker.c_str());
  return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// Syntax of the functions and of the Python modules in functions/ that
// differ from the node's active revision (`active`, null: all of them), so
// that a deploy of one change to a big project starts no worker, or checks
// one file. vendor/ is not checked: a package may hold files for other
// Python versions that it never imports; a broken vendored import fails the
// function's load, as does anything the node finds that this missed.
bool check_functions(const std::string& dir, file_source& files, const project_revision& rev, file_source* active) {
  auto unchanged = [&](const std::string& file, const std::string& text) {
    if (!active) return false;
    auto before = active->read(file);
    return before && *before == text;
  };
  std::vector<std::string> js, py;
  bool ok = true;
  for (auto& [_, f] : rev.functions) {
    if (unchanged(f.file, f.source)) continue;
    if (f.language == "py") {
      py.push_back(f.file);
      continue;
    }
    js.push_back(f.file);
    // npm imports are bundled at deploy: a missing package or a Node
    // built-in is refused here, naming the import and the file.
    auto bundled = sandbox::bundle_js(dir, f.file, f.source);
    if (!bundled) {
      std::fprintf(stderr, "%s\n", bundled.error().c_str());
      ok = false;
    }
  }
  auto modules = collect_python_modules(files, rev);
  if (!modules) {
    std::fprintf(stderr, "%s\n", modules.error().c_str());
    ok = false;
  } else {
    std::set<std::string> checked(py.begin(), py.end());
    for (auto& m : modules->modules)
      if (m.filename.rfind("functions/", 0) == 0 && !m.source.empty() && !checked.count(m.filename) &&
          !unchanged(m.filename, m.source))
        py.push_back(m.filename);
  }
  ok &= check_syntax_with(dir, executable_dir() + "/flowstate-worker", js);
  ok &= check_syntax_with(dir, executable_dir() + "/flowstate-pyworker", py);
  return ok;
}

// A deploy in progress from this repository (`.git/flowstate-deploying`: the
// commit sent to the node until the branch moves), so that the next deploy
// can tell a deploy interrupted after the node took it from a branch that
// is behind for another reason. "" when the repository has no .git folder.
std::string deploying_marker(const std::string& dir) {
  std::error_code ec;
  auto git = std::filesystem::path(dir) / ".git";
  return std::filesystem::is_directory(git, ec) ? (git / "flowstate-deploying").string() : std::string();
}

std::string read_marker(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return {};
  char id[64] = {};
  size_t n = std::fread(id, 1, 40, f);
  std::fclose(f);
  return std::string(id, n);
}

void write_marker(const std::string& path, const std::string& commit) {
  if (std::FILE* f = std::fopen(path.c_str(), "w")) {
    std::fwrite(commit.data(), 1, commit.size(), f);
    std::fclose(f);
  }
}

// "read 1.1, build 0.3, ..." from a deploy answer's timingsMs, and their sum.
std::string node_timings(const std::string& body, double& total_ms) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object timings;
  total_ms = 0;
  if (parser.parse(body).get(doc) || doc["timingsMs"].get_object().get(timings)) return {};
  std::string out;
  for (auto [phase, value] : timings) {
    double ms = 0;
    if (value.get_double().get(ms)) continue;
    char text[64];
    std::snprintf(text, sizeof text, "%s%.*s %.1f", out.empty() ? "" : ", ", static_cast<int>(phase.size()),
                  phase.data(), ms);
    out += text;
    total_ms += ms;
  }
  return out;
}

int deploy(const deploy_options& o) {
  const auto started = std::chrono::steady_clock::now();
  std::error_code ec;
  auto dir = std::filesystem::weakly_canonical(std::filesystem::absolute(o.project), ec).string();
  auto files = open_worktree(dir);
  std::vector<project_problem> problems;
  auto rev = load_project(*files, kind_catalog::defaults(), &problems);
  if (!rev) {
    std::fprintf(stderr, "deploy refused, nothing committed:\n");
    for (auto& p : problems) std::fprintf(stderr, "  %s\n", p.to_string().c_str());
    if (problems.empty()) std::fprintf(stderr, "  %s\n", rev.error().c_str());
    return 1;
  }
  // The node and its active revision first: only functions that changed
  // since then are checked here (the node's own errors come after).
  auto target = find_admin(o.data_dir.empty() ? default_data_dir() : o.data_dir, o.admin);
  auto listed = target ? admin_request(*target, "GET", "/api/v1/projects") : fail(target.error());
  std::string name, active;
  // Remote: the node does not serve this directory (its own copy of the
  // repository, elsewhere): the commit's objects go with the deploy, and a
  // project the node does not have yet is created by it (--admin only).
  bool remote = false;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (listed && listed->status == 200 && !parser.parse(listed->body).get(doc)) {
    std::string same_name, same_name_revision;
    bool found_name = false;
    for (auto p : doc.get_array()) {
      std::string_view pdir, pname, prev;
      if (p["name"].get_string().get(pname) || p["revision"].get_string().get(prev)) continue;
      if (p["dir"].get_string().get(pdir)) pdir = {};
      if (pdir == dir) {
        name = std::string(pname);
        active = std::string(prev);
      } else if (pname == rev->manifest_.name) {
        found_name = true;
        same_name_revision = std::string(prev);
      }
    }
    if (name.empty() && (found_name || !o.admin.empty())) {
      remote = true;
      name = rev->manifest_.name;
      active = same_name_revision;
    }
  }
  std::unique_ptr<file_source> active_files;
  if (!active.empty())
    if (auto opened = open_git_commit(dir, active)) active_files = std::move(*opened);
  if (!check_functions(dir, *files, *rev, active_files.get())) {
    std::fprintf(stderr, "deploy refused, nothing committed (see above)\n");
    return 1;
  }
  if (!target) {
    std::fprintf(stderr, "deploy: %s\n", target.error().c_str());
    return 1;
  }
  if (!listed) {
    std::fprintf(stderr, "deploy: %s\n", listed.error().c_str());
    return 1;
  }
  if (name.empty()) {
    std::fprintf(stderr,
                 "deploy: the node at %s does not serve %s (start it with `flowstate serve %s`, or name the node "
                 "with --admin HOST:PORT to create the project there)\n",
                 target->address.c_str(), dir.c_str(), o.project.c_str());
    return 1;
  }
  auto head = head_commit(dir);
  if (!head) {
    std::fprintf(stderr, "deploy: %s\n", head.error().c_str());
    return 1;
  }
  // The working tree must be based on what the node runs: a branch that
  // does not hold the active revision (deployed from elsewhere, or the
  // branch was reset) would silently undo it.
  const std::string marker = deploying_marker(dir);
  if (!active.empty() && *head != active && !marker.empty() && read_marker(marker) == active) {
    // The last deploy from here was taken by the node, and the CLI stopped
    // before it moved the branch: finish it.
    if (auto st = update_head(dir, active, *head); !st) {
      std::fprintf(stderr, "deploy: finishing the interrupted deploy of %s: %s\n", active.substr(0, 12).c_str(),
                   st.error().c_str());
      return 1;
    }
    std::printf("the node had taken the interrupted deploy of %s: the branch now points at it\n",
                active.substr(0, 12).c_str());
    *head = active;
  }
  if (remote && !active.empty()) {
    auto known = commit_exists(dir, active);
    if (!known || !*known) {
      std::fprintf(stderr,
                   "deploy refused, nothing committed: the node runs %s, which is not in this repository: it was "
                   "deployed from another one. Bring that repository's branch in first (`git fetch OTHER && git "
                   "merge %s`), then deploy again.\n",
                   active.substr(0, 12).c_str(), active.substr(0, 12).c_str());
      return 1;
    }
  }
  if (!active.empty() && *head != active) {
    auto holds = head->empty() ? result<bool>(false) : contains(dir, *head, active);
    if (!holds) {
      std::fprintf(stderr, "deploy: %s\n", holds.error().c_str());
      return 1;
    }
    if (!*holds) {
      const std::string a = active.substr(0, 12), h = head->empty() ? std::string("no commit") : head->substr(0, 12);
      std::fprintf(stderr,
                   "deploy refused, nothing committed: the node runs %s, which your branch (at %s) does not hold: it "
                   "was deployed from elsewhere, or the branch was reset since. Deploying would undo it. Bring it "
                   "in first: `git merge %s` (it is in this repository), then deploy again; or, to replace it on "
                   "purpose, `git reset --soft %s` first.\n",
                   a.c_str(), h.c_str(), a.c_str(), a.c_str());
      return 1;
    }
  }
  auto commit = create_commit_from_worktree(dir, o.message);
  if (!commit) {
    std::fprintf(stderr, "deploy: %s\n", commit.error().c_str());
    return 1;
  }
  // Until the branch moves: names the commit the node may already run.
  if (!marker.empty()) write_marker(marker, *commit);
  fault_point("cli.deploy.after_commit");
  result<admin_reply> reply = fail("not sent");
  std::size_t sent_bytes = 0;
  if (remote) {
    auto pack = pack_commit(dir, *commit, active);
    if (!pack) {
      std::fprintf(stderr, "deploy: %s\n", pack.error().c_str());
      return 1;
    }
    sent_bytes = pack->size();
    reply =
        admin_request(*target, "POST", "/api/v1/projects/" + name + "/push?revision=" + *commit + "&expected=" + active,
                      *pack, {{"Content-Type", "application/x-git-packed-objects"}});
  } else {
    std::string body = "{\"revision\":";
    http::append_json_string(body, *commit);
    body += ",\"expected\":";
    http::append_json_string(body, active);
    body += "}";
    reply = admin_request(*target, "POST", "/api/v1/projects/" + name + "/deploy", body);
  }
  if (!reply) {
    std::fprintf(stderr, "deploy: %s\n", reply.error().c_str());
    return 1;
  }
  if (reply->status != 200) {
    std::fprintf(stderr, "deploy refused (%d), %s stays active:\n%s\n", reply->status, active.substr(0, 12).c_str(),
                 problem_detail(reply->body).c_str());
    // A 4xx is the node's refusal: it runs nothing of this commit.
    if (reply->status < 500 && !marker.empty()) std::remove(marker.c_str());
    return 1;
  }
  if (auto st = update_head(dir, *commit, *head); !st) {
    std::fprintf(stderr, "deploy: %s is active on the node, but the branch did not move: %s\n",
                 commit->substr(0, 12).c_str(), st.error().c_str());
    return 1;
  }
  if (auto st = stage_commit(dir, *commit); !st)
    std::fprintf(stderr,
                 "deploy: warning: the index was not updated (`git status` may show the deploy's changes "
                 "as staged): %s\n",
                 st.error().c_str());
  if (!marker.empty()) std::remove(marker.c_str());
  if (active.empty())
    std::printf("deployed %s (a new project, %s): %s\n", commit->substr(0, 12).c_str(), name.c_str(),
                o.message.c_str());
  else
    std::printf("deployed %s (replaces %s): %s\n", commit->substr(0, 12).c_str(), active.substr(0, 12).c_str(),
                o.message.c_str());
  double node_ms = 0;
  std::string phases = node_timings(reply->body, node_ms);
  const double total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  if (!phases.empty()) std::printf("  in %.1f ms, of which the node %.1f ms (%s)\n", total_ms, node_ms, phases.c_str());
  if (remote) std::printf("  sent %zu bytes of git objects (what the node did not have)\n", sent_bytes);
  return 0;
}

}  // namespace

void register_deploy_command(CLI::App& app) {
  auto o = std::make_shared<deploy_options>();
  auto* cmd =
      app.add_subcommand("deploy", "Validate the project, commit it, and activate the commit on the running node");
  cmd->add_option("-m,--message", o->message, "Commit message")
      ->required()
      ->check(
          [](const std::string& m) {
            return m.find_first_not_of(" \t\r\n") == std::string::npos ? std::string("the commit message is empty")
                                                                       : std::string();
          },
          "a commit message");
  cmd->add_option("--project", o->project, "Project directory (a git repository)")->capture_default_str();
  cmd->add_option("--data", o->data_dir, "The node's data directory (for its admin token and address)");
  cmd->add_option("--admin", o->admin, "The node's admin address HOST:PORT (default: from the data directory)");
  cmd->callback([o] {
    int rc = deploy(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace flowstate::cli
