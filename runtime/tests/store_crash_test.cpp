// kill -9 tests: a child process (this test binary re-executed with a filter)
// commits numbered batches and reports each acknowledgement through a pipe;
// the parent kills it (or a fault point does) and checks the reopened store.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <semaphore>
#include <set>
#include <string>
#include <vector>

#include "flowstate/runtime/store.hpp"
#include "store_test_util.hpp"

using namespace flowstate;
using flowstate::test::temp_dir;
using flowstate::test::value_of;

extern char** environ;

namespace {

std::string batch_key(uint32_t i) {
  return state_key(1, 1, key_group_of(std::to_string(i)), "flow", "block", std::to_string(i));
}
std::string batch_value(uint32_t i) { return "value-" + std::to_string(i); }

commit_batch numbered_batch(uint32_t i) {
  commit_batch b;
  b.put(column::state, batch_key(i), batch_value(i));
  b.add_count(executions_key(1, 1, 0), 1);
  return b;
}

void report(int fd, uint32_t i) {
  // 4 bytes <= PIPE_BUF: atomic, and write() is safe from any thread.
  [[maybe_unused]] auto n = ::write(fd, &i, sizeof i);
}

struct child_process {
  pid_t pid = -1;
  int acks_fd = -1;
};

// Re-executes this binary as a crash child (flowstate_test_child_main below),
// with the settings passed in the environment.
child_process spawn_child(const std::string& mode, const std::string& dir, const char* fault) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.starts_with("FLOWSTATE_FAULT=") || entry.starts_with("FLOWSTATE_CRASH_")) continue;
    env_strings.emplace_back(entry);
  }
  env_strings.push_back("FLOWSTATE_CRASH_MODE=" + mode);
  env_strings.push_back("FLOWSTATE_CRASH_DIR=" + dir);
  env_strings.push_back("FLOWSTATE_CRASH_FD=" + std::to_string(fds[1]));
  if (fault != nullptr) env_strings.push_back(std::string("FLOWSTATE_FAULT=") + fault);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::string exe(4096, '\0');
  auto len = ::readlink("/proc/self/exe", exe.data(), exe.size() - 1);
  REQUIRE(len > 0);
  exe.resize(static_cast<size_t>(len));
  char* argv[] = {exe.data(), nullptr};

  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::execve(exe.c_str(), argv, envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  return {pid, fds[0]};
}

// Next acknowledged index, or nullopt at end of file (the child is gone).
std::optional<uint32_t> read_ack(int fd) {
  uint32_t i = 0;
  size_t got = 0;
  while (got < sizeof i) {
    auto n = ::read(fd, reinterpret_cast<char*>(&i) + got, sizeof i - got);
    if (n == 0) return std::nullopt;
    if (n < 0) {
      if (errno == EINTR) continue;
      return std::nullopt;
    }
    got += static_cast<size_t>(n);
  }
  return i;
}

// Returns the wait status.
int reap(pid_t pid) {
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return st;
}

std::unique_ptr<store> reopen(const std::string& dir) {
  store_options options;
  options.path = dir;
  auto s = store::open(options);
  INFO((s.ok() ? std::string() : s.error()));
  REQUIRE(s.ok());
  return std::move(*s);
}

// stream: sync commits 0, 1, 2, ... with up to 64 in flight, forever.
void child_stream(store& db, int fd) {
  std::counting_semaphore<64> window(64);
  for (uint32_t i = 0;; ++i) {
    window.acquire();
    db.commit(numbered_batch(i), durability_mode::sync, [fd, i, &window] {
      report(fd, i);
      window.release();
    });
  }
}

// relaxed_then_sync: relaxed commits 0..9 one at a time, then sync commit 10.
void child_relaxed_then_sync(store& db, int fd) {
  for (uint32_t i = 0; i < 10; ++i) {
    std::promise<void> acked;
    auto f = acked.get_future();
    db.commit(numbered_batch(i), durability_mode::relaxed, [&, i] {
      report(fd, i);
      acked.set_value();
    });
    f.wait();
  }
  db.commit(numbered_batch(10), durability_mode::sync, [fd] { report(fd, 10); });
}

}  // namespace

// The child body of the crash tests (cmake/doctest_main.cpp calls it first):
// -1 unless spawned by one. Not a test case, so it never counts as a pass.
extern "C" int flowstate_test_child_main(int, char**) {
  const char* mode = std::getenv("FLOWSTATE_CRASH_MODE");
  if (mode == nullptr) return -1;
  int fd = std::atoi(std::getenv("FLOWSTATE_CRASH_FD"));
  store_options options;
  options.path = std::getenv("FLOWSTATE_CRASH_DIR");
  auto db = store::open(options);
  if (!db.ok()) {
    std::fprintf(stderr, "crash child: %s\n", db.error().c_str());
    return 2;
  }
  if (std::string(mode) == "stream") child_stream(**db, fd);
  if (std::string(mode) == "relaxed_then_sync") child_relaxed_then_sync(**db, fd);
  // Wait to be killed: a clean exit would not test anything.
  for (;;) ::pause();
}

TEST_CASE("every acknowledged sync commit survives a kill -9 in the middle of a stream") {
  temp_dir dir;
  auto child = spawn_child("stream", dir.path(), nullptr);
  std::set<uint32_t> acked;
  while (acked.size() < 300) {
    auto i = read_ack(child.acks_fd);
    REQUIRE(i.has_value());  // the child died on its own
    acked.insert(*i);
  }
  ::kill(child.pid, SIGKILL);
  int st = reap(child.pid);
  // Acknowledgements written before the kill are still in the pipe.
  while (auto i = read_ack(child.acks_fd)) acked.insert(*i);
  ::close(child.acks_fd);
  CHECK(WIFSIGNALED(st));
  CHECK(WTERMSIG(st) == SIGKILL);

  auto db = reopen(dir.path());
  uint32_t highest = *acked.rbegin();
  // Commits apply in order, so everything up to the highest acknowledged
  // batch is there, acknowledged or not.
  uint32_t missing = 0;
  for (uint32_t i = 0; i <= highest; ++i)
    if (value_of(*db, column::state, batch_key(i)) != std::optional<std::string>(batch_value(i))) ++missing;
  CHECK(missing == 0);
  for (auto i : acked) CHECK(value_of(*db, column::state, batch_key(i)).has_value());
  auto count = value_of(*db, column::metering, executions_key(1, 1, 0));
  REQUIRE(count.has_value());
  CHECK(decode_count(*count) >= highest + 1);
}

#if defined(FLOWSTATE_FAULT_INJECTION)
TEST_CASE("a kill at each store fault point loses nothing that was written") {
  struct scenario {
    const char* fault;
    std::set<uint32_t> expected_acks;
    uint32_t expected_present;  // batches 0..expected_present-1 must be readable
  };
  std::set<uint32_t> first_ten{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<scenario> scenarios = {
      {"store.before_write", {}, 0},
      // Written to the OS but not fsynced: a process crash keeps it.
      {"store.after_write_before_sync", first_ten, 11},
      {"store.after_sync_before_ack", first_ten, 11},
  };
  for (const auto& sc : scenarios) {
    CAPTURE(sc.fault);
    temp_dir dir;
    auto child = spawn_child("relaxed_then_sync", dir.path(), sc.fault);
    std::set<uint32_t> acked;
    while (auto i = read_ack(child.acks_fd)) acked.insert(*i);
    ::close(child.acks_fd);
    int st = reap(child.pid);
    CHECK(WIFSIGNALED(st));
    CHECK(WTERMSIG(st) == SIGKILL);
    CHECK(acked == sc.expected_acks);

    auto db = reopen(dir.path());
    for (uint32_t i = 0; i < sc.expected_present; ++i)
      CHECK(value_of(*db, column::state, batch_key(i)) == std::optional<std::string>(batch_value(i)));
    CHECK_FALSE(value_of(*db, column::state, batch_key(sc.expected_present)).has_value());
  }
}
#endif
