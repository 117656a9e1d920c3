// Which sandbox level this process's workers run in: what the machine
// allows, tried once in throwaway children, and FLOWSTATE_SANDBOX.
#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "flowstate/sandbox/isolation.hpp"
#include "isolation_probe.hpp"
#include "landlock.hpp"

namespace flowstate::sandbox {
namespace detail {
namespace {

// What a probe child reports: the step it stopped at (0: none) and errno.
struct probe_outcome {
  int step = -1;  // -1: the child did not report (killed, fork failed)
  int error = 0;
};

// Runs `body` in a forked child; `body` returns a step number (0 = all
// done) and leaves errno set. System calls only in `body`.
template <class Body>
probe_outcome run_probe(Body body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {-1, errno};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    int report[2] = {body(), errno};
    [[maybe_unused]] auto n = ::write(fds[1], report, sizeof report);
    ::_exit(0);
  }
  ::close(fds[1]);
  probe_outcome outcome;
  if (pid < 0) outcome.error = errno;
  int report[2];
  if (pid > 0 && ::read(fds[0], report, sizeof report) == sizeof report) outcome = {report[0], report[1]};
  ::close(fds[0]);
  if (pid > 0)
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  return outcome;
}

std::string errno_text(int error) {
  const char* name = strerrorname_np(error);
  return std::string(name ? name : "errno " + std::to_string(error)) + ": " + std::strerror(error);
}

// Raw system calls: glibc's wrappers would signal threads that the forked
// child does not have.
bool become(uid_t uid) {
  return ::syscall(SYS_setgroups, 0, nullptr) == 0 && ::syscall(SYS_setresgid, uid, uid, uid) == 0 &&
         ::syscall(SYS_setresuid, uid, uid, uid) == 0;
}

// What every namespaces-level worker's child will do.
void probe_namespaces(machine_support& support) {
  const bool root = ::geteuid() == 0;
  auto outcome = run_probe([&] {
    if (root && !become(nobody)) return 1;
    if (::unshare(namespace_flags) != 0) return 2;
    pid_t inner = ::fork();
    if (inner < 0) return 3;
    if (inner == 0) {
      if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(4);
      if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) ::_exit(5);
      ::_exit(0);
    }
    int status = 0;
    while (::waitpid(inner, &status, 0) < 0 && errno == EINTR) {
    }
    errno = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 6;
  });
  static const char* const steps[] = {"",
                                      "switching to nobody before unshare",
                                      "unshare of user, mount, PID, network, IPC, UTS and cgroup namespaces",
                                      "fork into the new PID namespace",
                                      "making mounts private in the new mount namespace",
                                      "mounting a fresh /proc",
                                      "the child in the new PID namespace"};
  if (outcome.step == 0 || outcome.step == 5) {
    support.fresh_proc = outcome.step == 0;
    if (!support.fresh_proc)
      support.namespaces_degradations.push_back(
          "/proc: a fresh proc cannot be mounted in the worker's namespaces; workers run with no /proc");
    return;
  }
  if (outcome.step < 0 || outcome.step > 6) {
    support.levels.namespaces_error = "the namespaces probe did not report (" + errno_text(outcome.error) + ")";
    return;
  }
  support.levels.namespaces_error = std::string(steps[outcome.step]) + " failed";
  if (outcome.step != 4 && outcome.step != 6) support.levels.namespaces_error += ": " + errno_text(outcome.error);
  if (outcome.step == 2)
    support.levels.namespaces_error += " (user namespaces are refused here, as in a chroot or many containers)";
}

// What every landlock-level worker's child will do: its own uid, then a
// Landlock domain.
void probe_landlock(machine_support& support) {
  int abi = landlock_abi_version();
  if (abi < 1) {
    support.levels.landlock_error =
        "Landlock is not available: " + errno_text(-abi) +
        (-abi == EOPNOTSUPP ? " (built into the kernel but not enabled: add landlock to the lsm= boot parameter)" : "");
    return;
  }
  support.landlock_abi = abi;
  auto outcome = run_probe([&] {
    if (!become(worker_uid(::getpid()))) return 1;
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return 2;
    const char* step = nullptr;
    std::vector<landlock_rule> none;
    if (int error = restrict_with_landlock(abi, none, &step); error != 0) {
      errno = error;
      return 3;
    }
    // The domain holds: nothing may be opened any more.
    if (::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC) >= 0) {
      errno = 0;
      return 4;
    }
    return 0;
  });
  switch (outcome.step) {
    case 0:
      return;
    case 1:
      support.levels.landlock_error = "switching to an unprivileged uid (" + std::to_string(worker_uid_base) +
                                      " + pid) failed: " + errno_text(outcome.error) +
                                      " (the node must run as root or hold CAP_SETUID and CAP_SETGID)";
      return;
    case 2:
      support.levels.landlock_error = "no_new_privs failed: " + errno_text(outcome.error);
      return;
    case 3:
      support.levels.landlock_error =
          "Landlock ABI " + std::to_string(abi) + " refused a domain: " + errno_text(outcome.error);
      return;
    case 4:
      support.levels.landlock_error = "Landlock ABI " + std::to_string(abi) + " did not restrict file access";
      return;
    default:
      support.levels.landlock_error = "the Landlock probe did not report (" + errno_text(outcome.error) + ")";
  }
}

void probe_memory_cgroup(machine_support& support) {
  if (::mkdir(cgroup_base, 0755) == 0 || errno == EEXIST) {
    std::string probe = std::string(cgroup_base) + "/probe-" + std::to_string(::getpid());
    if (::mkdir(probe.c_str(), 0755) == 0) {
      support.memory_cgroup = ::access((probe + "/memory.limit_in_bytes").c_str(), W_OK) == 0;
      ::rmdir(probe.c_str());
    }
  }
  if (!support.memory_cgroup)
    support.common_degradations.push_back(
        std::string("memory cgroup: ") + cgroup_base +
        " cannot hold a child group with memory.limit_in_bytes; worker memory is limited by the V8 heap limit "
        "and RLIMIT_AS (Python) only");
}

machine_support probe_machine() {
  machine_support support;
  probe_namespaces(support);
  probe_landlock(support);
  probe_memory_cgroup(support);
  return support;
}

}  // namespace

const machine_support& machine() {
  static const machine_support support = probe_machine();
  return support;
}

}  // namespace detail

const char* level_name(sandbox_level level) {
  switch (level) {
    case sandbox_level::none:
      return "none";
    case sandbox_level::off:
      return "off";
    case sandbox_level::landlock:
      return "landlock";
    case sandbox_level::namespaces:
      return "namespaces";
  }
  return "none";
}

isolation_report choose_isolation_level(const char* requested, const machine_levels& machine) {
  isolation_report report;
  report.requested = requested ? requested : "auto";
  const std::string& want = report.requested;
  const std::string no_namespaces = "namespaces: " + machine.namespaces_error;
  const std::string no_landlock = "landlock: " + machine.landlock_error;
  if (want == "off") {
    report.level = sandbox_level::off;
    report.reason = "FLOWSTATE_SANDBOX=off: the operator turned the sandbox off";
  } else if (want == "auto") {
    if (machine.namespaces_error.empty()) {
      report.level = sandbox_level::namespaces;
    } else if (machine.landlock_error.empty()) {
      report.level = sandbox_level::landlock;
      report.reason = no_namespaces;
    } else {
      report.reason = no_namespaces + "; " + no_landlock;
    }
  } else if (want == "namespaces") {
    if (machine.namespaces_error.empty())
      report.level = sandbox_level::namespaces;
    else
      report.reason = "FLOWSTATE_SANDBOX=namespaces, but " + no_namespaces;
  } else if (want == "landlock") {
    if (machine.landlock_error.empty())
      report.level = sandbox_level::landlock;
    else
      report.reason = "FLOWSTATE_SANDBOX=landlock, but " + no_landlock;
  } else {
    report.reason = "FLOWSTATE_SANDBOX=\"" + want +
                    "\": expected namespaces, landlock or off (or unset: the best level this machine allows)";
  }
  return report;
}

std::string isolation_report::summary() const {
  std::string text;
  switch (level) {
    case sandbox_level::namespaces:
      text =
          "namespaces: workers run in new user, mount, PID, network, IPC and UTS namespaces with a read-only "
          "root, no capabilities and a seccomp allow-list";
      break;
    case sandbox_level::landlock:
      text =
          "landlock: workers run without namespaces, each as a uid of its own, under Landlock (read-only access to "
          "their binary and libraries only) and a seccomp allow-list";
      if (!reason.empty()) text += " (" + reason + ")";
      break;
    case sandbox_level::off:
      text =
          "OFF (" + reason + "): functions run UNISOLATED, as the node's user, with its files, network and environment";
      break;
    case sandbox_level::none:
      text = "UNAVAILABLE: " + reason +
             "; functions will not run (set FLOWSTATE_SANDBOX=off to run them unisolated, which is unsafe)";
      break;
  }
  for (const auto& degradation : degradations) text += "; degraded: " + degradation;
  return text;
}

const isolation_report& isolation_status() {
  static const isolation_report report = [] {
    const auto& machine = detail::machine();
    isolation_report r = choose_isolation_level(std::getenv("FLOWSTATE_SANDBOX"), machine.levels);
    if (r.level == sandbox_level::namespaces) r.degradations = machine.namespaces_degradations;
    if (r.level == sandbox_level::namespaces || r.level == sandbox_level::landlock)
      r.degradations.insert(r.degradations.end(), machine.common_degradations.begin(),
                            machine.common_degradations.end());
    const char* prefix = r.level == sandbox_level::off    ? "flowstate: WARNING: sandbox "
                         : r.level == sandbox_level::none ? "flowstate: ERROR: sandbox "
                                                          : "flowstate: sandbox ";
    std::fprintf(stderr, "%s%s\n", prefix, r.summary().c_str());
    return r;
  }();
  return report;
}

std::vector<std::string> isolation_degradations() { return isolation_status().degradations; }

}  // namespace flowstate::sandbox
