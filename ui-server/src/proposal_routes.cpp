#include "proposal_routes.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <simdjson.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "flowstate/actors/engine.hpp"
#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/file_source.hpp"
#include "flowstate/runtime/git_repo.hpp"

extern char** environ;

namespace flowstate::admin {

void proposal_checks::record(const std::string& commit, outcome o) {
  std::lock_guard lock(mu_);
  if (by_commit_.size() > 1000) by_commit_.clear();
  by_commit_[commit] = std::move(o);
}

bool proposal_checks::find(const std::string& commit, outcome& out) const {
  std::lock_guard lock(mu_);
  auto it = by_commit_.find(commit);
  if (it == by_commit_.end()) return false;
  out = it->second;
  return true;
}

namespace {

namespace fs = std::filesystem;
constexpr int test_timeout_s = 120;
constexpr std::size_t max_output = 64 * 1024;

// The proposal named in the path: its commit, or the answer sent.
bool named_proposal(admin_services& s, const admin_call& call, project_info& project, std::string& revision,
                    const http::responder_ptr& reply) {
  if (!find_project_or_404(s, call.param("project"), project, reply)) return false;
  auto rev = proposal_revision(project.dir, call.param("name"));
  if (!rev) return reply->send(http::problem(400, "bad request", rev.error())), false;
  if (rev->empty()) return reply->send(http::problem(404, "not found", "no proposal " + call.param("name"))), false;
  revision = std::move(*rev);
  return true;
}

std::string tests_json(admin_services& s, const std::string& commit) {
  proposal_checks::outcome o;
  if (!s.checks || !s.checks->find(commit, o)) return "{\"status\":\"not run\"}";
  std::string out = std::string("{\"status\":\"") + (o.passed ? "passed" : "failed") + "\",\"output\":";
  http::append_json_string(out, o.output);
  return out + "}";
}

// Writes `commit`'s files under `dir`.
status export_tree(const std::string& repo_dir, const std::string& commit, const fs::path& dir) {
  auto source = open_git_commit(repo_dir, commit);
  if (!source) return fail(source.error());
  for (auto& path : (*source)->list_tree("")) {
    auto text = (*source)->read(path);
    if (!text) continue;
    const fs::path to = dir / path;
    std::error_code ec;
    fs::create_directories(to.parent_path(), ec);
    std::ofstream out(to, std::ios::binary);
    out.write(text->data(), static_cast<std::streamsize>(text->size()));
    if (!out) return fail("cannot write " + to.string());
  }
  return status::success();
}

// Runs this binary's `flowstate test --project DIR`: (exit status 0, its
// output), within test_timeout_s.
result<proposal_checks::outcome> run_tests(const fs::path& dir) {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return fail("cannot find this program: " + ec.message());
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return fail("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  const std::string exe_text = exe.string(), project = dir.string();
  std::vector<char*> argv{const_cast<char*>(exe_text.c_str()), const_cast<char*>("test"),
                          const_cast<char*>("--project"), const_cast<char*>(project.c_str()), nullptr};
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, exe_text.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_fds[1]);
  if (spawned != 0) {
    ::close(pipe_fds[0]);
    return fail("cannot start flowstate test");
  }
  proposal_checks::outcome out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(test_timeout_s);
  bool timed_out = false;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n <= 0) break;
    if (out.output.size() < max_output) out.output.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  if (timed_out) out.output += "\n(stopped after " + std::to_string(test_timeout_s) + " s)";
  out.passed = !timed_out && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
  return out;
}

}  // namespace

void get_proposals(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  project_info project;
  if (!find_project_or_404(s, call.param("project"), project, reply)) return;
  auto list = list_proposals(project.dir);
  if (!list) return reply->send(http::problem(500, "internal error", list.error()));
  std::string out = "[";
  for (auto& p : *list) {
    auto h = history(project.dir, p.revision, 1);
    if (out.size() > 1) out += ',';
    out += "{\"name\":";
    http::append_json_string(out, p.name);
    out += ",\"revision\":";
    http::append_json_string(out, p.revision);
    if (h && !h->empty()) {
      out += ",\"message\":";
      http::append_json_string(out, h->front().message);
      out += ",\"author\":";
      http::append_json_string(out, h->front().author);
      out += ",\"timeMs\":" + std::to_string(h->front().time_ms);
    }
    auto holds = contains(project.dir, p.revision, project.revision);
    out += std::string(",\"onRunning\":") + (holds && *holds ? "true" : "false");
    out += ",\"tests\":" + tests_json(s, p.revision) + "}";
  }
  reply->send(json_answer(200, out + "]"));
}

void post_proposal(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view name, base, message;
  simdjson::dom::object files;
  if (parser.parse(call.req.body).get(doc) || doc["name"].get_string().get(name) ||
      doc["base"].get_string().get(base) || doc["files"].get_object().get(files) ||
      doc["message"].get_string().get(message) || message.empty())
    return reply->send(http::problem(400, "bad request",
                                     "expected a JSON body {\"name\": NAME, \"base\": COMMIT, \"files\": {PATH: TEXT "
                                     "or null}, \"message\": TEXT}"));
  std::map<std::string, std::optional<std::string>> edits;
  if (!read_file_edits(files, edits, reply)) return;
  project_info project;
  if (!find_project_or_404(s, call.param("project"), project, reply)) return;
  auto commit = commit_edits(project.dir, std::string(base), edits, std::string(message), s.edit_author_name,
                             s.edit_author_email);
  if (!commit) return reply->send(http::problem(422, "proposal refused", commit.error()));
  if (auto st = set_proposal(project.dir, std::string(name), *commit); !st)
    return reply->send(http::problem(400, "bad request", st.error()));
  std::string out = "{\"name\":";
  http::append_json_string(out, name);
  out += ",\"revision\":";
  http::append_json_string(out, *commit);
  reply->send(json_answer(201, out + "}"));
}

void get_proposal_diff(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  project_info project;
  std::string revision;
  if (!named_proposal(s, call, project, revision, reply)) return;
  auto text = diff(project.dir, project.revision, revision);
  if (!text) return reply->send(http::problem(500, "internal error", text.error()));
  http::response r;
  r.content_type = "text/x-diff; charset=utf-8";
  r.body = std::move(*text);
  reply->send(std::move(r));
}

void post_proposal_test(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  project_info project;
  std::string revision;
  if (!named_proposal(s, call, project, revision, reply)) return;
  std::error_code ec;
  const fs::path dir =
      fs::temp_directory_path() / ("flowstate-proposal-" + revision.substr(0, 12) + "-" + std::to_string(::getpid()) +
                                   "-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  fs::create_directories(dir, ec);
  if (ec) return reply->send(http::problem(500, "internal error", "cannot make " + dir.string() + ": " + ec.message()));
  auto exported = export_tree(project.dir, revision, dir);
  auto ran = exported ? run_tests(dir) : result<proposal_checks::outcome>(fail(exported.error()));
  fs::remove_all(dir, ec);
  if (!ran) return reply->send(http::problem(500, "internal error", ran.error()));
  if (s.checks) s.checks->record(revision, *ran);
  std::string out = "{\"revision\":";
  http::append_json_string(out, revision);
  out += ",\"tests\":" + tests_json(s, revision) + "}";
  reply->send(json_answer(200, out));
}

void post_proposal_merge(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view expected;
  if (parser.parse(call.req.body).get(doc) || doc["expected"].get_string().get(expected))
    return reply->send(http::problem(400, "bad request", "expected a JSON body {\"expected\": RUNNING REVISION}"));
  project_info project;
  std::string revision;
  if (!named_proposal(s, call, project, revision, reply)) return;
  if (expected != project.revision)
    return reply->send(http::problem(409, "conflict",
                                     "the project changed since " + std::string(expected.substr(0, 12)) + ": it runs " +
                                         project.revision.substr(0, 12) + " now"));
  proposal_checks::outcome o;
  if (!s.checks || !s.checks->find(revision, o))
    return reply->send(http::problem(409, "tests not run", "run the proposal's tests first (POST .../test)"));
  if (!o.passed) return reply->send(http::problem(409, "tests failed", "the proposal's tests failed:\n" + o.output));
  const std::string name = call.param("name");
  auto h = history(project.dir, revision, 1);
  std::string message = "Merge proposal " + name;
  if (h && !h->empty()) message += ": " + h->front().message.substr(0, h->front().message.find('\n'));
  auto merged = merge_onto(project.dir, project.revision, revision, message, s.edit_author_name, s.edit_author_email);
  if (!merged) return reply->send(http::problem(500, "internal error", merged.error()));
  if (!merged->conflicts.empty()) {
    std::string paths;
    for (auto& p : merged->conflicts) paths += (paths.empty() ? "" : ", ") + p;
    return reply->send(http::problem(409, "merge conflict",
                                     "the proposal and the running revision both changed " + paths +
                                         ": edit the proposal on top of the running revision and propose again"));
  }
  if (auto kept = keep_commit(project.dir, merged->commit); !kept)
    return reply->send(http::problem(500, "internal error", kept.error()));
  auto out = s.e.deploy(project.name, merged->commit, project.revision);
  if (out.http_status == 200) (void)delete_proposal(project.dir, name);
  send_deploy_answer(out, reply);
}

void delete_proposal_route(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  project_info project;
  std::string revision;
  if (!named_proposal(s, call, project, revision, reply)) return;
  if (auto st = delete_proposal(project.dir, call.param("name")); !st)
    return reply->send(http::problem(500, "internal error", st.error()));
  std::string out = "{\"deleted\":";
  http::append_json_string(out, call.param("name"));
  reply->send(json_answer(200, out + "}"));
}

}  // namespace flowstate::admin
