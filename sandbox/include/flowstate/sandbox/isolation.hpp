#pragma once
// The sandbox every worker process runs in (docs/security.md), at one of two
// levels:
// - namespaces: new user, mount, PID, network, IPC, UTS and cgroup
//   namespaces; an empty read-only root holding only the worker binary, its
//   shared libraries and its interpreter's files; a private /proc; no network
//   interface up; no capabilities;
// - landlock (where namespaces are refused, e.g. in a chroot or a container):
//   a uid of its own per worker (2^30 + its pid; the node must be root or
//   hold CAP_SETUID/CAP_SETGID), Landlock letting it read only the binary,
//   its libraries and its interpreter's files, no capabilities;
// and at both: no_new_privs, PR_SET_PDEATHSIG, rlimits, a memory cgroup
// where one is available, an environment with nothing of the node's, and
// the same seccomp allow-list (no sockets, no new processes, no path exec).
//
// The level is chosen once per process (isolation_status) from
// FLOWSTATE_SANDBOX and what this machine allows. Where no level can be set
// up the sandbox fails closed: workers do not start, and the reason says
// why. Only FLOWSTATE_SANDBOX=off runs them unisolated.
//
// Everything that allocates is prepared in the parent (prepare_isolation);
// the forked child only makes system calls (enter_isolation_and_exec).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate::sandbox {

// What workers run in. `none`: no level can be set up here, workers do not
// start (fail closed); `off`: the operator's explicit opt-out.
enum class sandbox_level { none, off, landlock, namespaces };

// "none", "off", "landlock", "namespaces".
const char* level_name(sandbox_level level);

// The process's sandbox, decided once.
struct isolation_report {
  sandbox_level level = sandbox_level::none;
  std::string requested = "auto";  // FLOWSTATE_SANDBOX as given, or "auto" when unset
  // Why the levels above `level` (or the requested one) cannot be used
  // here; for `off` the opt-out; empty for namespaces.
  std::string reason;
  // Layers left out within the level (no memory cgroup, no fresh /proc).
  std::vector<std::string> degradations;
  // One line for the node's log and /readyz.
  std::string summary() const;
};

// What this machine allows, as found by trying it in throwaway children:
// empty, or why the level cannot be set up.
struct machine_levels {
  std::string namespaces_error;
  std::string landlock_error;
};

// The choice, given FLOWSTATE_SANDBOX's value (nullptr: unset) and what the
// machine allows: unset or "auto" takes namespaces, else landlock, else
// none; "namespaces" or "landlock" takes that level or none (never the
// other); "off" is off; any other spelling is none.
isolation_report choose_isolation_level(const char* requested, const machine_levels& machine);

// The process's report: probes the machine on the first call and writes the
// choice once to stderr ("flowstate: sandbox: ..."), loudly for off and none.
const isolation_report& isolation_status();

struct isolation_options {
  // Off only for measuring what the sandbox costs (and to show what it
  // prevents); FLOWSTATE_SANDBOX=off is the operator's switch.
  bool enabled = true;
  // For tests: this level instead of the process's (isolation_status);
  // starting fails if the machine cannot provide it.
  std::optional<sandbox_level> level;
  // A CPython worker: /usr/lib/python3.11 and the libraries its extension
  // modules load are made visible, and its stderr goes to /dev/null (Python
  // code could write to fd 2; V8 code cannot).
  bool python = false;
  // The worker's memory limit (limits::memory_mb); the memory cgroup is set
  // to 2 x this + 64 MiB, a backstop for what the interpreter's own limit does
  // not see. 0: no cgroup.
  uint32_t memory_mb = 0;
  // A driver process (docs/drivers.md "Custom drivers"): the seccomp list
  // also lets its event loop use the sockets the node hands it (still no
  // socket creation, connect or accept).
  bool driver = false;
  // Further files or directories made visible read-only at the same path.
  std::vector<std::string> read_only_paths;
};

// What the child does, computed once per (binary, options) in the parent.
class isolation_plan;

// A null plan when isolation is off (FLOWSTATE_SANDBOX=off or
// options.enabled false). Fails when no level can be set up here (the
// report's reason), when the binary or a path cannot be resolved, or when the
// seccomp filter cannot be built. A layer missing within a level (memory
// cgroup, fresh /proc) is left out and listed in the report's degradations.
result<std::shared_ptr<const isolation_plan>> prepare_isolation(const isolation_options& options,
                                                                const std::string& binary);

// In the forked child, once the worker's socket is fd 3 and other fds are
// closed: enters the sandbox and execs `argv` with a clean environment. Only
// system calls (async-signal-safe). Never returns: on failure it writes the
// step that failed to fd 2 and exits with status 126.
[[noreturn]] void enter_isolation_and_exec(const isolation_plan& plan, char* const argv[]);

// What this machine could not provide within the chosen level, e.g. "memory
// cgroup: ..."; empty when the level is complete.
std::vector<std::string> isolation_degradations();

// The seccomp policy, for tests: the syscall numbers allowed without
// conditions, and those allowed only with certain arguments (clone without
// namespace flags, execveat of an fd, prctl of a few options); everything
// else fails with EPERM, except clone3 (ENOSYS) and ioctl (ENOTTY).
std::vector<int> seccomp_allowed_syscalls();
std::vector<int> seccomp_conditional_syscalls();
// Installs the worker filter (and no_new_privs) on the calling thread.
status install_worker_seccomp_filter();

}  // namespace flowstate::sandbox
