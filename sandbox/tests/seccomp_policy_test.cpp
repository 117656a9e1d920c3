// In the spirit of Firecracker's seccomp tests: a process under the worker
// filter tries every system call number outside the allow-list (with
// harmless arguments) and each must be refused; the conditional rules are
// checked on both sides.
#include <doctest/doctest.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

#include "flowstate/sandbox/isolation.hpp"

using namespace flowstate::sandbox;

namespace {

// Runs `body` in a child under the worker filter; returns what the child
// wrote (one line per unexpected result), or why it could not run.
template <class Body>
std::string under_filter(Body body) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    if (auto installed = install_worker_seccomp_filter(); !installed) {
      std::string line = installed.error() + "\n";
      [[maybe_unused]] auto n = ::write(fds[1], line.data(), line.size());
      ::_exit(2);
    }
    body(fds[1]);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string report;
  char buffer[4096];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) report.append(buffer, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    report += "the child ended with status " + std::to_string(status) + "\n";
  return report;
}

// Writes "what: rc=.. errno=.." when the call did not fail with `expected`.
void expect_errno(int out, const char* what, long rc, int expected) {
  if (rc == -1 && errno == expected) return;
  char line[160];
  int n = std::snprintf(line, sizeof line, "%s: rc=%ld errno=%d, expected errno %d\n", what, rc, errno, expected);
  [[maybe_unused]] auto w = ::write(out, line, static_cast<size_t>(n));
}

}  // namespace

TEST_CASE("every system call outside the allow-list fails with EPERM under the worker filter") {
  std::vector<int> skip = seccomp_allowed_syscalls();
  for (int nr : seccomp_conditional_syscalls()) skip.push_back(nr);
  // uretprobe (335) and uprobe (336): since Linux 6.11/6.16 the kernel lets
  // them through every seccomp filter; outside a probe trampoline they only
  // kill the caller (SIGILL/SIGSEGV), which is harmless.
  skip.push_back(335);
  skip.push_back(336);
  std::string report = under_filter([&](int out) {
    for (int nr = 0; nr <= 450; ++nr) {
      if (std::find(skip.begin(), skip.end(), nr) != skip.end()) continue;
      errno = 0;
      long rc = ::syscall(nr, 0, 0, 0, 0, 0, 0);
      char what[32];
      std::snprintf(what, sizeof what, "syscall %d", nr);
      expect_errno(out, what, rc, EPERM);
    }
  });
  CHECK_MESSAGE(report.empty(), report);
}

TEST_CASE("the filter's conditional rules allow threads only and answer clone3 and ioctl as designed") {
  std::string report = under_filter([](int out) {
    expect_errno(out, "clone3", ::syscall(SYS_clone3, nullptr, 0), ENOSYS);
    expect_errno(out, "ioctl TCGETS", ::syscall(SYS_ioctl, 0, TCGETS, nullptr), ENOTTY);
    expect_errno(out, "fork (clone without CLONE_THREAD)", ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0), EPERM);
    expect_errno(out, "vfork-style clone", ::syscall(SYS_clone, CLONE_VM | CLONE_VFORK | SIGCHLD, 0, 0, 0, 0), EPERM);
    expect_errno(out, "clone of a thread into a new user namespace",
                 ::syscall(SYS_clone, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWUSER, 0, 0, 0, 0), EPERM);
    expect_errno(out, "clone of a thread into a new network namespace",
                 ::syscall(SYS_clone, CLONE_THREAD | CLONE_SIGHAND | CLONE_VM | CLONE_NEWNET, 0, 0, 0, 0), EPERM);
    char* const argv[] = {const_cast<char*>("true"), nullptr};
    expect_errno(out, "execve by path", ::syscall(SYS_execve, "/bin/true", argv, nullptr), EPERM);
    expect_errno(out, "execveat by path", ::syscall(SYS_execveat, AT_FDCWD, "/bin/true", argv, nullptr, 0), EPERM);
    expect_errno(out, "prctl(PR_SET_DUMPABLE)", ::syscall(SYS_prctl, PR_SET_DUMPABLE, 1, 0, 0, 0), EPERM);
    expect_errno(out, "prctl(PR_SET_SECCOMP, disabled)", ::syscall(SYS_prctl, PR_SET_SECCOMP, 0, 0, 0, 0), EPERM);
    expect_errno(out, "prctl(PR_SET_NO_NEW_PRIVS, 0)", ::syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0), EPERM);
    // What must keep working: reading, time, naming a thread.
    char name[16] = "probe";
    if (::syscall(SYS_prctl, PR_SET_NAME, name, 0, 0, 0) != 0) expect_errno(out, "prctl(PR_SET_NAME)", -1, 0);
    if (::getpid() <= 0) expect_errno(out, "getpid", -1, 0);
  });
  CHECK_MESSAGE(report.empty(), report);
}

TEST_CASE("a worker under the filter may add a filter of its own, which only restricts it further") {
  std::string report = under_filter([](int out) {
    if (::syscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) expect_errno(out, "prctl(NO_NEW_PRIVS, 1)", -1, 0);
    // getppid answers EACCES; everything else goes on to the worker filter.
    sock_filter program[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EACCES),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{4, program};
    if (::syscall(SYS_prctl, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) != 0)
      expect_errno(out, "prctl(PR_SET_SECCOMP, filter)", -1, 0);
    expect_errno(out, "getppid under the added filter", ::syscall(SYS_getppid), EACCES);
    expect_errno(out, "fork under both filters", ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0), EPERM);
  });
  CHECK_MESSAGE(report.empty(), report);
}

TEST_CASE("this machine isolates workers, and the report names every layer it could not provide") {
  // CTest runs this with FLOWSTATE_SANDBOX unset: the best level the
  // machine allows. Neither level available is a failure here, never a skip.
  const auto& report = isolation_status();
  INFO(report.summary());
  CHECK(report.requested == "auto");
  CHECK((report.level == sandbox_level::namespaces || report.level == sandbox_level::landlock));
  CHECK(report.summary().rfind(std::string(level_name(report.level)) + ":", 0) == 0);
  CHECK(isolation_degradations() == report.degradations);
  for (const auto& degradation : report.degradations)
    CHECK(report.summary().find("degraded: " + degradation) != std::string::npos);
}
