#pragma once
// The seccomp allow-list of worker processes (see isolation.hpp), compiled
// once with libseccomp into a classic BPF program that a forked child can
// install with one prctl.
#include <linux/filter.h>

#include <string>
#include <vector>

namespace flowstate::sandbox::detail {

struct seccomp_program {
  std::vector<sock_filter> instructions;
  std::string error;  // why it could not be built; instructions empty then
};

const seccomp_program& worker_seccomp_program();
// The workers' list plus what a driver's event loop needs (no socket
// creation, connect or accept).
const seccomp_program& driver_seccomp_program();

}  // namespace flowstate::sandbox::detail
