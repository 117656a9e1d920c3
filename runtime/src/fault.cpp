#include "flowstate/runtime/fault.hpp"

#if defined(FLOWSTATE_FAULT_INJECTION)
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace flowstate {

void fault_point(const char* name) {
  // Read once: getenv is not safe against concurrent setenv, and the value
  // must not change under a running process.
  static const char* const armed = std::getenv("FLOWSTATE_FAULT");
  if (armed == nullptr || std::strcmp(armed, name) != 0) return;
  ::kill(::getpid(), SIGKILL);
  ::_exit(137);  // not reached: SIGKILL cannot be caught
}

}  // namespace flowstate
#endif
