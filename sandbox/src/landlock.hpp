#pragma once
// Landlock through raw system calls (glibc 2.36 has no wrappers; Debian 12's
// headers know ABI 2): the file-system layer of the landlock sandbox level.
#include <string>
#include <vector>

namespace flowstate::sandbox::detail {

// The kernel's Landlock ABI version (>= 1), or -errno: -ENOSYS without
// Landlock, -EOPNOTSUPP when it is built but not enabled (lsm=).
int landlock_abi_version();

struct landlock_rule {
  std::string path;
  bool directory = false;  // read and list beneath it; a file: read it
  bool optional = false;   // skipped when it cannot be opened
};

// In the forked child, after no_new_privs: from now on this process and
// what it execs may only read (and execute) `rules`; writes, creation,
// removal and (ABI >= 4) TCP bind and connect are refused everywhere, and
// (ABI >= 6) signals and abstract Unix sockets stay inside the domain.
// System calls only. Returns 0, or the errno of the step it names.
int restrict_with_landlock(int abi, const std::vector<landlock_rule>& rules, const char** failed_step);

}  // namespace flowstate::sandbox::detail
