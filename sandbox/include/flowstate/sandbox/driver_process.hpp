#pragma once
// A custom driver's process (docs/drivers.md "Custom drivers"): Node.js
// (flowstate-driver-js, libnode) or CPython (/usr/bin/python3.11) running
// the driver host, in the workers' sandbox with the driver seccomp list. It
// has no network of its own: the node connects for it and hands the socket
// over. fd 3 is the control channel (JSON lines), fd 4 carries handed-over
// sockets (SCM_RIGHTS).
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "flowstate/runtime/result.hpp"
#include "flowstate/sandbox/isolation.hpp"

namespace flowstate::sandbox {

enum class driver_language { js, python };

struct driver_launch {
  driver_language language = driver_language::js;
  std::string js_binary;               // flowstate-driver-js
  uint32_t memory_mb = 256;            // the interpreter's heap limit; the memory cgroup is set from it
  bool isolated = true;                // false only for tests measuring the sandbox
  std::optional<sandbox_level> level;  // tests: this level instead of the process's
};

struct driver_child {
  pid_t pid = -1;
  int control = -1;  // our end of fd 3: non-blocking, close-on-exec
  int handoff = -1;  // our end of fd 4
};

// Starts the host. Call it from a thread that outlives the process
// (PR_SET_PDEATHSIG fires when the forking thread exits).
result<driver_child> spawn_driver(const driver_launch& launch);

// SIGKILL, reap, close both ends.
void kill_driver(driver_child& child);

// Hands `fd` to the driver on the handoff channel, with `tag` (the connect
// request's reference) as the message's bytes. The caller still owns `fd`.
status hand_over(const driver_child& child, int fd, const std::string& tag);

}  // namespace flowstate::sandbox
