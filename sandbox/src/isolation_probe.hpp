#pragma once
// What this machine allows the sandbox to do, probed once in throwaway
// children (isolation_level.cpp), and the constants the parent's plan and the
// child's set-up share (isolation.cpp, landlock.cpp).
#include <sched.h>
#include <sys/types.h>

#include "flowstate/sandbox/isolation.hpp"

namespace flowstate::sandbox::detail {

constexpr uid_t nobody = 65534;
constexpr const char* cgroup_base = "/sys/fs/cgroup/memory/flowstate";
constexpr int namespace_flags =
    CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;

// The landlock level's worker runs as uid and gid 2^30 + its pid: unique
// among live workers, and far above the ranges distributions give to users
// and to containers' subordinate ids.
constexpr uid_t worker_uid_base = uid_t{1} << 30;
inline uid_t worker_uid(pid_t pid) { return worker_uid_base + static_cast<uid_t>(pid); }

struct machine_support {
  machine_levels levels;
  bool fresh_proc = false;     // namespaces: a fresh proc can be mounted in them
  bool memory_cgroup = false;  // a child group of cgroup_base takes memory.limit_in_bytes
  int landlock_abi = 0;        // the kernel's Landlock ABI version; 0: none
  std::vector<std::string> namespaces_degradations, common_degradations;
};

// Probed on the first call.
const machine_support& machine();

}  // namespace flowstate::sandbox::detail
