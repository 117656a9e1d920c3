// The sandbox's levels: which one a process takes (fail closed where none
// can be set up), and that a worker at each level, Python and JavaScript,
// is held: no file outside, no socket, no new process.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <future>
#include <string>

#include "flowstate/sandbox/isolation.hpp"
#include "flowstate/sandbox/limits.hpp"
#include "flowstate/sandbox/worker_client.hpp"

using namespace flowstate::sandbox;

namespace {

const machine_levels both{"", ""};
const machine_levels no_namespaces{"unshare failed: EPERM", ""};
const machine_levels neither{"unshare failed: EPERM", "Landlock is not available: ENOSYS"};

std::unique_ptr<worker_client> start(sandbox_level level, bool python) {
  limits lim;
  lim.cpu_ms_per_call = 5000;
  worker_options options;
  options.worker_binary = python ? FLOWSTATE_PYWORKER_BINARY : FLOWSTATE_WORKER_BINARY;
  options.default_timeout_ms = lim.cpu_ms_per_call;
  options.extra_args = lim.worker_args();
  options.isolation.python = python;
  options.isolation.memory_mb = lim.memory_mb;
  options.isolation.level = level;
  auto client = worker_client::start(options);
  REQUIRE_MESSAGE(client.ok(), (client.ok() ? "" : client.error()));
  return std::move(*client);
}

call_result run(worker_client& client, const std::string& file, const std::string& source, std::string input) {
  std::promise<std::string> loaded;
  client.load(1, "f", file, source, [&](bool ok, std::string error) { loaded.set_value(ok ? "" : error); });
  std::string error = loaded.get_future().get();
  REQUIRE_MESSAGE(error.empty(), error);
  call_request request;
  request.function_id = 1;
  request.input_json = std::move(input);
  request.ctx = {"k1", "flow", "block", "rev1", "msg-1", 1700000000000};
  std::promise<call_result> done;
  client.call(std::move(request), [&](call_result&& r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

// What a Python function can reach: errno of each attempt, or "done".
const char* const escape_attempts = R"(import os, socket
def attempt(action):
    try:
        action()
        return 'done'
    except OSError as e:
        return e.errno
def fork():
    if os.fork() == 0:
        os._exit(0)
def entrypoint(input, state):
    return {'output': {'read': attempt(lambda: open(input['path']).read()),
                       'list': attempt(lambda: os.listdir(input['dir'])),
                       'socket': attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
                       'fork': attempt(fork),
                       'uid': os.getuid()}}
)";

// A file any user may read, in a folder any user may list: only the
// sandbox stands between it and a function.
struct outside_file {
  std::string dir, path;
  outside_file() {
    char templ[] = "/tmp/flowstate-isolation-XXXXXX";
    REQUIRE(::mkdtemp(templ) != nullptr);
    dir = templ;
    ::chmod(dir.c_str(), 0755);
    path = dir + "/secret";
    std::ofstream(path) << "the node's secret";
    ::chmod(path.c_str(), 0644);
  }
  ~outside_file() {
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
};

void check_python_is_held(sandbox_level level) {
  outside_file file;
  auto client = start(level, true);
  auto r =
      run(*client, "functions/f.py", escape_attempts, "{\"path\":\"" + file.path + "\",\"dir\":\"" + file.dir + "\"}");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  REQUIRE(r.outputs.size() == 1);
  // No private root at the landlock level: the file is there, Landlock
  // refuses it (EACCES); in the namespaces it does not exist (ENOENT).
  const std::string denied = level == sandbox_level::namespaces ? "2" : "13";
  const std::string uid = level == sandbox_level::namespaces ? "0" : "";
  CHECK(r.outputs[0].find("\"read\":" + denied + ",") != std::string::npos);
  CHECK(r.outputs[0].find("\"list\":" + denied + ",") != std::string::npos);
  CHECK(r.outputs[0].find("\"socket\":1,") != std::string::npos);
  CHECK(r.outputs[0].find("\"fork\":1,") != std::string::npos);
  INFO(r.outputs[0]);
  auto at = r.outputs[0].find("\"uid\":");
  REQUIRE(at != std::string::npos);
  unsigned long worker_uid = std::stoul(r.outputs[0].substr(at + 6));
  if (level == sandbox_level::namespaces)
    CHECK(worker_uid == 0);  // root of its own user namespace, nobody outside
  else
    CHECK(worker_uid >= (1ul << 30));  // a uid of its own, not the node's
}

void check_javascript_runs(sandbox_level level) {
  auto client = start(level, false);
  auto r = run(*client, "functions/f.js",
               "export default function (input) { return {output: [typeof require, input.n + 1]}; }\n", "{\"n\":41}");
  REQUIRE_MESSAGE(r.status == call_status::ok, r.error_message);
  REQUIRE(r.outputs.size() == 1);
  CHECK(r.outputs[0] == "[\"undefined\",42]");
}

}  // namespace

TEST_CASE("unset or auto takes namespaces, else landlock, else no level at all") {
  CHECK(choose_isolation_level(nullptr, both).level == sandbox_level::namespaces);
  CHECK(choose_isolation_level("auto", both).level == sandbox_level::namespaces);
  auto fallback = choose_isolation_level(nullptr, no_namespaces);
  CHECK(fallback.level == sandbox_level::landlock);
  CHECK(fallback.reason.find("unshare failed: EPERM") != std::string::npos);
  auto closed = choose_isolation_level(nullptr, neither);
  CHECK(closed.level == sandbox_level::none);
  CHECK(closed.reason.find("namespaces: unshare failed: EPERM") != std::string::npos);
  CHECK(closed.reason.find("landlock: Landlock is not available: ENOSYS") != std::string::npos);
  CHECK(closed.summary().find("functions will not run") != std::string::npos);
  CHECK(closed.summary().find("FLOWSTATE_SANDBOX=off") != std::string::npos);
}

TEST_CASE("a level asked for by name is never replaced by another") {
  CHECK(choose_isolation_level("landlock", both).level == sandbox_level::landlock);
  CHECK(choose_isolation_level("namespaces", both).level == sandbox_level::namespaces);
  auto refused = choose_isolation_level("namespaces", no_namespaces);
  CHECK(refused.level == sandbox_level::none);
  CHECK(refused.reason == "FLOWSTATE_SANDBOX=namespaces, but namespaces: unshare failed: EPERM");
  CHECK(choose_isolation_level("landlock", neither).level == sandbox_level::none);
}

TEST_CASE("only FLOWSTATE_SANDBOX=off turns the sandbox off; another spelling runs nothing") {
  auto off = choose_isolation_level("off", neither);
  CHECK(off.level == sandbox_level::off);
  CHECK(off.summary().find("UNISOLATED") != std::string::npos);
  for (const char* spelling : {"OFF", "0", "false", "none", "disabled", ""}) {
    auto r = choose_isolation_level(spelling, both);
    CHECK_MESSAGE(r.level == sandbox_level::none, spelling);
    CHECK(r.reason.find("expected namespaces, landlock or off") != std::string::npos);
  }
}

TEST_CASE("at the namespaces level a Python worker reaches no file, socket or process, and JavaScript runs") {
  if (isolation_status().level == sandbox_level::landlock) {
    // This machine refuses namespaces (a chroot, a container): what holds
    // here is that a worker asked for them does not start (fail closed).
    for (bool python : {true, false}) {
      worker_options options;
      options.worker_binary = python ? FLOWSTATE_PYWORKER_BINARY : FLOWSTATE_WORKER_BINARY;
      options.isolation.python = python;
      options.isolation.level = sandbox_level::namespaces;
      auto client = worker_client::start(options);
      CHECK_FALSE(client.ok());
    }
    return;
  }
  check_python_is_held(sandbox_level::namespaces);
  check_javascript_runs(sandbox_level::namespaces);
}

TEST_CASE("at the landlock level a Python worker reaches no file, socket or process, and JavaScript runs") {
  check_python_is_held(sandbox_level::landlock);
  check_javascript_runs(sandbox_level::landlock);
}

TEST_CASE("a worker at no level does not start, and says why") {
  worker_options options;
  options.worker_binary = FLOWSTATE_PYWORKER_BINARY;
  options.isolation.python = true;
  options.isolation.level = sandbox_level::none;
  auto client = worker_client::start(options);
  REQUIRE_FALSE(client.ok());
  CHECK(client.error().find("sandbox") != std::string::npos);
}

TEST_CASE("at the landlock level a file under a folder others cannot enter is refused, naming that folder") {
  char folder[] = "/tmp/flowstate-private-XXXXXX";
  REQUIRE(::mkdtemp(folder) != nullptr);
  std::string file = std::string(folder) + "/data.txt";
  std::ofstream(file) << "secret";
  ::chmod(folder, 0700);
  worker_options options;
  options.worker_binary = FLOWSTATE_PYWORKER_BINARY;
  options.isolation.python = true;
  options.isolation.level = sandbox_level::landlock;
  options.isolation.read_only_paths = {file};
  auto client = worker_client::start(options);
  ::unlink(file.c_str());
  ::rmdir(folder);
  REQUIRE_FALSE(client.ok());
  CHECK(client.error().find("the folder " + std::string(folder) + " (mode 0700) cannot be entered by others") !=
        std::string::npos);
}
