#include "flowstate/runtime/fault.hpp"

#if defined(FLOWSTATE_FAULT_INJECTION)
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace flowstate {

namespace {

std::atomic<bool> armed_in_process[3];

// getenv is read once: it is not safe against concurrent setenv, and the
// value must not change under a running process.
const char* fault_file(disk_fault fault) {
  static const char* const full = std::getenv("FLOWSTATE_FAULT_DISK_FULL");
  static const char* const sync = std::getenv("FLOWSTATE_FAULT_SYNC_FAILS");
  static const char* const read = std::getenv("FLOWSTATE_FAULT_READ_FAILS");
  switch (fault) {
    case disk_fault::disk_full:
      return full;
    case disk_fault::sync_fails:
      return sync;
    case disk_fault::read_fails:
      return read;
  }
  return nullptr;
}

}  // namespace

void fault_point(const char* name) {
  static const char* const armed = std::getenv("FLOWSTATE_FAULT");
  if (armed == nullptr || std::strcmp(armed, name) != 0) return;
  ::kill(::getpid(), SIGKILL);
  ::_exit(137);  // not reached: SIGKILL cannot be caught
}

void fault_pause(const char* name) {
  static const char* const armed = std::getenv("FLOWSTATE_FAULT");
  if (armed == nullptr || std::strcmp(armed, name) != 0) return;
  ::sleep(2);
}

void set_disk_fault(disk_fault fault, bool armed) { armed_in_process[static_cast<int>(fault)].store(armed); }

bool disk_fault_armed(disk_fault fault) {
  if (armed_in_process[static_cast<int>(fault)].load()) return true;
  const char* file = fault_file(fault);
  struct stat st;
  return file != nullptr && *file != '\0' && ::stat(file, &st) == 0;
}

}  // namespace flowstate
#endif
