#pragma once
// The sandbox every worker process runs in (docs/security.md): new user,
// mount, PID, network, IPC, UTS and cgroup namespaces; an empty read-only
// root holding only the worker binary, its shared libraries and its
// interpreter's files; a private /proc; no network interface up;
// no_new_privs; no capabilities; PR_SET_PDEATHSIG; rlimits; a memory cgroup
// where one is available; an environment with nothing of the node's; and a
// seccomp allow-list. See docs/security.md.
//
// Everything that allocates is prepared in the parent (prepare_isolation);
// the forked child only makes system calls (enter_isolation_and_exec).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate::sandbox {

struct isolation_options {
  // Off only for measuring what the sandbox costs; FLOWSTATE_SANDBOX=off in
  // the node's environment turns it off for every worker as well.
  bool enabled = true;
  // A CPython worker: /usr/lib/python3.11 and the libraries its extension
  // modules load are made visible, and its stderr goes to /dev/null (Python
  // code could write to fd 2; V8 code cannot).
  bool python = false;
  // The worker's memory limit (limits::memory_mb); the memory cgroup is set
  // to 2 x this + 64 MiB, a backstop for what the interpreter's own limit does
  // not see. 0: no cgroup.
  uint32_t memory_mb = 0;
  // Further files or directories made visible read-only at the same path.
  std::vector<std::string> read_only_paths;
};

// What the child does, computed once per (binary, options) in the parent.
class isolation_plan;

// Never fails for lack of kernel support: a missing feature (user namespaces,
// a memory cgroup, a fresh /proc) is left out with a reason written once to
// stderr and listed by isolation_degradations(). Fails when the binary or a
// path cannot be resolved, or the seccomp filter cannot be built.
result<std::shared_ptr<const isolation_plan>> prepare_isolation(const isolation_options& options,
                                                                const std::string& binary);

// In the forked child, once the worker's socket is fd 3 and other fds are
// closed: enters the sandbox and execs `argv` with a clean environment. Only
// system calls (async-signal-safe). Never returns: on failure it writes the
// step that failed to fd 2 and exits with status 126.
[[noreturn]] void enter_isolation_and_exec(const isolation_plan& plan, char* const argv[]);

// What this machine could not provide, e.g. "memory cgroup: /sys/fs/cgroup/
// memory is not writable"; empty when the sandbox is complete.
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
