#include "seccomp_policy.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include "flowstate/sandbox/isolation.hpp"

namespace flowstate::sandbox {
namespace {

// What V8 and CPython use while serving calls, found with strace -f on both
// workers loading functions and answering calls (including timeouts, memory
// exhaustion and the hostile suite). Files: only opening and reading (the
// root is read-only and RLIMIT_FSIZE is 0). No sockets, no process creation,
// no namespaces, no mounts, no ptrace, no io_uring, no bpf, no keyrings.
const int allowed[] = {
    // memory
    SYS_brk, SYS_mmap, SYS_munmap, SYS_mremap, SYS_mprotect, SYS_madvise, SYS_membarrier,
    // the worker's socket (fd 3) and reading files of the read-only root
    SYS_read, SYS_write, SYS_readv, SYS_writev, SYS_recvfrom, SYS_sendto, SYS_recvmsg, SYS_sendmsg, SYS_pread64,
    SYS_close, SYS_lseek, SYS_openat, SYS_newfstatat, SYS_fstat, SYS_statx, SYS_stat, SYS_lstat, SYS_access,
    SYS_faccessat, SYS_faccessat2, SYS_readlink, SYS_readlinkat, SYS_getdents64, SYS_getcwd, SYS_fcntl, SYS_dup,
    SYS_dup3, SYS_poll, SYS_ppoll,
    // threads (clone itself is conditional), signals, time
    SYS_futex, SYS_set_robust_list, SYS_set_tid_address, SYS_rseq, SYS_sched_yield, SYS_sched_getaffinity,
    SYS_rt_sigaction, SYS_rt_sigprocmask, SYS_rt_sigreturn, SYS_sigaltstack, SYS_tgkill, SYS_gettid, SYS_getpid,
    SYS_clock_gettime, SYS_clock_getres, SYS_clock_nanosleep, SYS_nanosleep, SYS_gettimeofday,
    // identity and limits (all inside the namespaces)
    SYS_getuid, SYS_geteuid, SYS_getgid, SYS_getegid, SYS_getppid, SYS_uname, SYS_getrandom, SYS_prlimit64,
    SYS_getrlimit, SYS_getrusage, SYS_sysinfo, SYS_arch_prctl, SYS_exit, SYS_exit_group};

// prctl options glibc, V8 and CPython use.
const int allowed_prctl[] = {PR_SET_NAME, PR_GET_NAME, PR_SET_VMA, PR_GET_DUMPABLE};

// A driver process (docs/drivers.md "Custom drivers") also runs an event
// loop over sockets the node connected and handed to it (SCM_RIGHTS on fd
// 4): it may poll, configure and close them, but still not create an
// Internet socket, connect one or accept one. Found with strace -f on Node.js
// and CPython drivers.
const int driver_allowed[] = {SYS_epoll_create1,
                              SYS_epoll_ctl,
                              SYS_epoll_wait,
                              SYS_epoll_pwait,
                              SYS_epoll_pwait2,
                              SYS_eventfd2,
                              SYS_pipe2,
                              SYS_getsockopt,
                              SYS_setsockopt,
                              SYS_getsockname,
                              SYS_getpeername,
                              SYS_shutdown,
                              SYS_select,
                              SYS_pselect6,
                              SYS_dup2,
                              SYS_sched_getparam,
                              SYS_sched_getscheduler,
                              SYS_statfs,
                              SYS_fstatfs,
                              SYS_capget,
                              SYS_getpgrp,
                              SYS_getpgid,
                              SYS_getsid};

// ioctls a driver's event loop uses on its own fds.
const unsigned long driver_ioctls[] = {FIONBIO, FIOCLEX, FIONCLEX, FIONREAD};

constexpr uint64_t namespace_flags = CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                                     CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_NEWTIME;

detail::seccomp_program build(bool driver) {
  detail::seccomp_program program;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (!ctx) {
    program.error = "seccomp_init failed";
    return program;
  }
  auto check = [&](int rc, const char* what) {
    if (rc < 0 && program.error.empty()) program.error = std::string(what) + ": " + std::strerror(-rc);
  };
  for (int nr : allowed) check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0), "seccomp_rule_add");
  for (int option : allowed_prctl)
    check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
                           SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(option))),
          "prctl rule");
  // A worker may restrict itself further (the Python worker refuses new
  // threads once its watchdog runs): no_new_privs on, another filter added.
  check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2, SCMP_A0(SCMP_CMP_EQ, PR_SET_NO_NEW_PRIVS),
                         SCMP_A1(SCMP_CMP_EQ, 1)),
        "prctl no_new_privs rule");
  check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2, SCMP_A0(SCMP_CMP_EQ, PR_SET_SECCOMP),
                         SCMP_A1(SCMP_CMP_EQ, SECCOMP_MODE_FILTER)),
        "prctl seccomp rule");
  // Threads only: CLONE_THREAD set, no namespace flag. A new process (fork,
  // vfork, posix_spawn) fails with EPERM.
  check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                         SCMP_A0(SCMP_CMP_MASKED_EQ, namespace_flags | CLONE_THREAD, CLONE_THREAD)),
        "clone rule");
  // clone3 passes its flags in memory seccomp cannot read: ENOSYS makes
  // glibc fall back to clone, whose flags are checked above.
  check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3 rule");
  if (driver) {
    for (int nr : driver_allowed) check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0), "seccomp_rule_add");
    for (unsigned long request : driver_ioctls)
      check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, request)), "ioctl rule");
    // A self-pipe (Python's asyncio): a Unix socket pair, never an Internet socket.
    check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX)),
          "socketpair rule");
  }
  // isatty() and the like: "not a terminal". A driver's other ioctls fail
  // with EPERM (an unconditional rule would override the allowed ones).
  if (!driver) check(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 0), "ioctl rule");
  // The sandbox starts the worker with execveat(fd, "", AT_EMPTY_PATH); a
  // path-based execve is refused, and the read-only root holds nothing but
  // the worker binary and libraries.
  check(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(execveat), 2, SCMP_A1(SCMP_CMP_NE, 0),
                         SCMP_A4(SCMP_CMP_EQ, AT_EMPTY_PATH)),
        "execveat rule");
  if (program.error.empty()) {
    int fd = static_cast<int>(::syscall(SYS_memfd_create, "seccomp", MFD_CLOEXEC));
    if (fd < 0) {
      program.error = std::string("memfd_create: ") + std::strerror(errno);
    } else {
      check(seccomp_export_bpf(ctx, fd), "seccomp_export_bpf");
      off_t size = ::lseek(fd, 0, SEEK_END);
      if (program.error.empty() && size > 0 && size % sizeof(sock_filter) == 0) {
        program.instructions.resize(static_cast<size_t>(size) / sizeof(sock_filter));
        if (::pread(fd, program.instructions.data(), static_cast<size_t>(size), 0) != size) {
          program.instructions.clear();
          program.error = "reading the exported filter failed";
        }
      } else if (program.error.empty()) {
        program.error = "the exported filter has an unexpected size";
      }
      ::close(fd);
    }
  }
  seccomp_release(ctx);
  if (!program.error.empty()) program.instructions.clear();
  return program;
}

}  // namespace

const detail::seccomp_program& detail::worker_seccomp_program() {
  static const seccomp_program program = build(false);
  return program;
}

const detail::seccomp_program& detail::driver_seccomp_program() {
  static const seccomp_program program = build(true);
  return program;
}

std::vector<int> seccomp_allowed_syscalls() { return {std::begin(allowed), std::end(allowed)}; }

std::vector<int> seccomp_conditional_syscalls() { return {SYS_clone, SYS_execveat, SYS_prctl, SYS_clone3, SYS_ioctl}; }

status install_worker_seccomp_filter() {
  const auto& program = detail::worker_seccomp_program();
  if (program.instructions.empty()) return fail("seccomp filter: " + program.error);
  sock_fprog prog{static_cast<unsigned short>(program.instructions.size()),
                  const_cast<sock_filter*>(program.instructions.data())};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail(std::string("no_new_privs: ") + std::strerror(errno));
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
    return fail(std::string("PR_SET_SECCOMP: ") + std::strerror(errno));
  return status::success();
}

}  // namespace flowstate::sandbox
