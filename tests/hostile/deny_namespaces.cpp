// Runs a command where the kernel refuses what a chroot or a locked-down
// container refuses, to test that the node never runs a function
// unisolated there (tests/hostile/run_hostile_node.py --deny ...).
//   deny_namespaces [--landlock-too] -- COMMAND ARGS...
// A seccomp filter inherited by the command and everything it starts makes
// unshare and clone with CLONE_NEWUSER fail with EPERM (clone3: ENOSYS, so
// glibc falls back to clone), and with --landlock-too the Landlock system
// calls fail with ENOSYS as on a kernel without it. Everything else is allowed.
#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char** argv) {
  bool landlock_too = false;
  int at = 1;
  for (; at < argc; ++at) {
    std::string arg = argv[at];
    if (arg == "--landlock-too") {
      landlock_too = true;
    } else if (arg == "--") {
      ++at;
      break;
    } else {
      std::fprintf(stderr, "deny_namespaces: unknown option %s; usage: deny_namespaces [--landlock-too] -- CMD...\n",
                   argv[at]);
      return 2;
    }
  }
  if (at >= argc) {
    std::fprintf(stderr, "deny_namespaces: no command; usage: deny_namespaces [--landlock-too] -- CMD...\n");
    return 2;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (!ctx) return 3;
  int rc = 0;
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_NEWUSER, CLONE_NEWUSER));
  rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (landlock_too)
    for (int nr : {SCMP_SYS(landlock_create_ruleset), SCMP_SYS(landlock_add_rule), SCMP_SYS(landlock_restrict_self)})
      rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
  if (rc != 0 || ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || seccomp_load(ctx) != 0) {
    std::fprintf(stderr, "deny_namespaces: cannot install the filter: %s\n", std::strerror(errno));
    return 3;
  }
  seccomp_release(ctx);
  ::execvp(argv[at], argv + at);
  std::fprintf(stderr, "deny_namespaces: %s: %s\n", argv[at], std::strerror(errno));
  return 127;
}
