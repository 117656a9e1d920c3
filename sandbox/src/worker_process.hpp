#pragma once
// Spawning one flowstate-worker process with its socket as fd 3.
#include <sys/types.h>

#include <string>
#include <vector>

#include "flowstate/runtime/result.hpp"
#include "flowstate/sandbox/isolation.hpp"

namespace flowstate::sandbox::detail {

struct spawned_worker {
  pid_t pid = -1;
  int socket = -1;  // our end, non-blocking, close-on-exec
};

// Must be called from a thread that outlives the worker: PR_SET_PDEATHSIG
// fires when the forking thread exits.
// `isolation`: the sandbox the worker runs in (isolation.hpp).
result<spawned_worker> spawn_worker(const std::string& binary, const std::vector<std::string>& args,
                                    const isolation_options& isolation = {});

// A process with `sockets` socket pairs (their far ends as fds 3, 4, ...):
// `argv` is the whole command line. Our ends come back in `ends`.
struct spawned_process {
  pid_t pid = -1;
  std::vector<int> ends;
};
result<spawned_process> spawn_process(std::vector<std::string> argv, const isolation_options& isolation, int sockets);

// SIGKILL and reap; closes the socket.
void kill_worker(spawned_worker& worker);

}  // namespace flowstate::sandbox::detail
