// Names the calling thread (at most 15 characters), so that `top -H`, perf
// and the benchmarks' context-switch counts tell the node's threads apart.
#pragma once

#include <pthread.h>

namespace flowstate {

inline void name_this_thread(const char* name) { ::pthread_setname_np(::pthread_self(), name); }

}  // namespace flowstate
