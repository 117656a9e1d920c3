#pragma once
// Crash points for kill -9 tests (like RocksDB's TEST_KILL_RANDOM): with
// FLOWSTATE_FAULT_INJECTION defined, fault_point(name) SIGKILLs the process
// when the environment variable FLOWSTATE_FAULT equals name (read once).
// Without the define it compiles to nothing.

namespace flowstate {

#if defined(FLOWSTATE_FAULT_INJECTION)
void fault_point(const char* name);
#else
inline void fault_point(const char*) {}
#endif

}  // namespace flowstate
