#pragma once
// A function runs on the worker's main thread and nowhere else. Once the
// worker's own threads run (the watchdog), it installs a seccomp filter of
// its own that refuses new threads: `threading.Thread.start()` raises
// `RuntimeError: can't start new thread`. A thread left behind by a call
// would outlive it: it would hold the worker's memory, take the GIL from
// other functions' calls and escape the per-call CPU clock.
#include <string>

namespace flowstate::pyworker {

// Empty on success, else why the filter could not be installed.
std::string forbid_new_threads();

}  // namespace flowstate::pyworker
