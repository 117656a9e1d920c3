// flowstate init: a new project from a template embedded at build time
// (examples/<template>/, see examples/embed.cmake), made a git repository
// with one commit, ready for `flowstate serve`.
#include <git2.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "commands.hpp"
#include "flowstate/runtime/git_repo.hpp"
#include "flowstate/runtime/project_loader.hpp"

namespace flowstate::cli {

// Defined in the generated flowstate_templates.cpp.
struct template_file {
  const char* template_name;
  const char* path;
  const unsigned char* data;
  std::size_t size;
};
extern const template_file embedded_template_files[];
extern const std::size_t embedded_template_file_count;

namespace {

namespace fs = std::filesystem;

struct init_options {
  std::string template_name = "todomvc";
  std::string dir;
  std::string name;
  bool skip_npm = false;
};

std::set<std::string> template_names() {
  std::set<std::string> names;
  for (std::size_t i = 0; i < embedded_template_file_count; ++i) names.insert(embedded_template_files[i].template_name);
  return names;
}

// Runs `program args...` in `cwd`, its output on ours; returns the exit code
// (127 when it cannot be started).
int run_in(const std::string& cwd, const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid < 0) return 127;
  if (pid == 0) {
    if (chdir(cwd.c_str()) != 0) _exit(127);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

// `git init` with main as the first branch, through libgit2.
status init_repository(const std::string& dir) {
  git_libgit2_init();
  git_repository_init_options opts = GIT_REPOSITORY_INIT_OPTIONS_INIT;
  opts.flags = GIT_REPOSITORY_INIT_MKPATH;
  opts.initial_head = "main";
  git_repository* repo = nullptr;
  int rc = git_repository_init_ext(&repo, dir.c_str(), &opts);
  std::string why;
  if (rc < 0) {
    const git_error* e = git_error_last();
    why = e && e->message ? e->message : "unknown libgit2 error";
  }
  git_repository_free(repo);
  git_libgit2_shutdown();
  if (rc < 0) return fail("git init " + dir + ": " + why);
  return status::success();
}

// Writes the template's files; `name` (if given) replaces the manifest's name.
status write_template(const init_options& o, const fs::path& root) {
  for (std::size_t i = 0; i < embedded_template_file_count; ++i) {
    const auto& f = embedded_template_files[i];
    if (o.template_name != f.template_name) continue;
    std::string content(reinterpret_cast<const char*>(f.data), f.size);
    if (!o.name.empty() && std::string_view(f.path) == "flowstate.yaml") {
      std::size_t at = std::string::npos;
      if (content.rfind("name:", 0) == 0)
        at = 0;
      else if (auto nl = content.find("\nname:"); nl != std::string::npos)
        at = nl + 1;
      if (at != std::string::npos) {
        auto end = content.find('\n', at);
        content.replace(at, end == std::string::npos ? std::string::npos : end - at, "name: " + o.name);
      }
    }
    fs::path path = root / f.path;
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    std::ofstream out(path, std::ios::binary);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) return fail("cannot write " + path.string());
    out.close();
    // A script (examples/iot/simulate) stays runnable: the embedding keeps
    // bytes, not modes.
    if (content.rfind("#!", 0) == 0)
      fs::permissions(path, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec,
                      fs::perm_options::add, ec);
  }
  return status::success();
}

int init(const init_options& o) {
  auto names = template_names();
  if (!names.count(o.template_name)) {
    std::string known;
    for (auto& n : names) known += (known.empty() ? "" : ", ") + n;
    std::fprintf(stderr, "flowstate init: unknown template \"%s\"; expected one of %s\n", o.template_name.c_str(),
                 known.c_str());
    return 1;
  }
  if (auto bad = project_name_problem(o.name); !o.name.empty() && !bad.empty()) {
    std::fprintf(stderr, "flowstate init: --name: %s\n", bad.c_str());
    return 1;
  }
  std::error_code ec;
  fs::path root = fs::absolute(o.dir, ec);
  if (fs::exists(root, ec)) {
    if (!fs::is_directory(root, ec)) {
      std::fprintf(stderr, "flowstate init: %s exists and is not a directory\n", o.dir.c_str());
      return 1;
    }
    if (!fs::is_empty(root, ec)) {
      std::fprintf(stderr, "flowstate init: %s is not empty; expected a new or empty directory (nothing was written)\n",
                   o.dir.c_str());
      return 1;
    }
  }
  fs::create_directories(root, ec);
  if (ec) {
    std::fprintf(stderr, "flowstate init: cannot create %s: %s\n", o.dir.c_str(), ec.message().c_str());
    return 1;
  }
  if (auto st = write_template(o, root); !st) {
    std::fprintf(stderr, "flowstate init: %s\n", st.error().c_str());
    return 1;
  }

  // The page's CSS comes from npm into public/node_modules/ (git-ignored;
  // the node serves it from the project directory).
  bool npm_missing = false;
  if (fs::exists(root / "public" / "package.json")) {
    if (o.skip_npm) {
      npm_missing = true;
    } else {
      std::printf("flowstate init: npm install in %s\n", (root / "public").c_str());
      std::fflush(stdout);
      int rc = run_in((root / "public").string(),
                      {"npm", "install", "--prefer-offline", "--no-audit", "--no-fund", "--loglevel=error"});
      if (rc != 0) {
        std::fprintf(stderr, "flowstate init: npm install failed (exit %d); the page has no styles until it is run\n",
                     rc);
        npm_missing = true;
      }
    }
  }

  if (auto st = init_repository(root.string()); !st) {
    std::fprintf(stderr, "flowstate init: %s\n", st.error().c_str());
    return 1;
  }
  auto commit = create_commit_from_worktree(root.string(), "New project from the " + o.template_name + " template");
  if (!commit) {
    std::fprintf(stderr, "flowstate init: %s\n", commit.error().c_str());
    return 1;
  }
  if (auto st = update_head(root.string(), *commit, ""); !st) {
    std::fprintf(stderr, "flowstate init: %s\n", st.error().c_str());
    return 1;
  }
  if (auto st = stage_commit(root.string(), *commit); !st) {
    std::fprintf(stderr, "flowstate init: %s\n", st.error().c_str());
    return 1;
  }

  std::printf("Created %s from the %s template (git commit %.12s).\n\nNext:\n", o.dir.c_str(), o.template_name.c_str(),
              commit->c_str());
  if (npm_missing) std::printf("  (cd %s/public && npm install)   # the page's CSS\n", o.dir.c_str());
  std::printf("  flowstate serve %s\n", o.dir.c_str());
  if (o.template_name == "todomvc")
    std::printf("  open http://127.0.0.1:8080/\n");
  else if (o.template_name == "counter")
    std::printf("  curl -X POST 127.0.0.1:8080/count/k1 -H 'content-type: application/json' -d '{\"by\":2}'\n");
  else if (o.template_name == "sensors")
    std::printf(
        "  curl -X POST 127.0.0.1:8080/devices/d1/readings -H 'content-type: application/json' -d "
        "'{\"celsius\":21.5}'\n");
  std::printf("  # edit a file under %s/functions/, then:\n", o.dir.c_str());
  std::printf("  flowstate deploy -m \"my change\" --project %s\n", o.dir.c_str());
  return 0;
}

}  // namespace

void register_init_command(CLI::App& app) {
  auto o = std::make_shared<init_options>();
  auto* cmd = app.add_subcommand("init", "Create a project from a template in a new directory, as a git repository");
  cmd->add_option("--template", o->template_name, "Template: todomvc, counter or sensors (Python)")
      ->capture_default_str();
  cmd->add_option("--name", o->name, "Project name written to flowstate.yaml (default: the template's)");
  cmd->add_flag("--skip-npm", o->skip_npm, "Do not run npm install for the front-end assets in public/");
  cmd->add_option("DIR", o->dir, "The new project's directory (must not exist or be empty)")->required();
  cmd->callback([o] {
    int rc = init(*o);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace flowstate::cli
