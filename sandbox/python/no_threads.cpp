#include "no_threads.hpp"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace flowstate::pyworker {
namespace {

#if defined(__x86_64__)
constexpr uint32_t native_arch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t native_arch = AUDIT_ARCH_AARCH64;
#else
#error "no_threads.cpp: add this architecture's AUDIT_ARCH_ value"
#endif

// x32 system calls share x86_64's audit arch with this bit in their number.
constexpr uint32_t x32_bit = 0x40000000;

constexpr sock_filter load(uint32_t offset) { return BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset); }
constexpr sock_filter ret(uint32_t action) { return BPF_STMT(BPF_RET | BPF_K, action); }
constexpr sock_filter jump_if(uint16_t op, uint32_t k, uint8_t if_true, uint8_t if_false) {
  return BPF_JUMP(BPF_JMP | op | BPF_K, k, if_true, if_false);
}

}  // namespace

std::string forbid_new_threads() {
  // Jump offsets count the instructions skipped. clone3 gets ENOSYS (its
  // flags are in memory a filter cannot read), so glibc falls back to clone,
  // whose flags are read here; a new process is the sandbox filter's matter.
  const sock_filter program[] = {
      /* 0 */ load(offsetof(seccomp_data, arch)),
      /* 1 */ jump_if(BPF_JEQ, native_arch, 1, 0),
      /* 2 */ ret(SECCOMP_RET_ERRNO | EPERM),
      /* 3 */ load(offsetof(seccomp_data, nr)),
      /* 4 */ jump_if(BPF_JGE, x32_bit, 0, 1),
      /* 5 */ ret(SECCOMP_RET_ERRNO | EPERM),
      /* 6 */ jump_if(BPF_JEQ, SYS_clone3, 0, 1),
      /* 7 */ ret(SECCOMP_RET_ERRNO | ENOSYS),
      /* 8 */ jump_if(BPF_JEQ, SYS_clone, 0, 3),
      // The low half of the flags (args[0]) on a little-endian machine.
      /* 9 */ load(offsetof(seccomp_data, args[0])),
      /* 10 */ jump_if(BPF_JSET, CLONE_THREAD, 0, 1),
      /* 11 */ ret(SECCOMP_RET_ERRNO | EAGAIN),
      /* 12 */ ret(SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof program / sizeof program[0]), const_cast<sock_filter*>(program)};
  // Already set in a sandbox; needed where isolation is off.
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return std::string("no_new_privs: ") + std::strerror(errno);
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
    return std::string("a filter refusing threads: ") + std::strerror(errno);
  return {};
}

}  // namespace flowstate::pyworker
