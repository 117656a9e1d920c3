#pragma once
// Fault points for tests (like RocksDB's TEST_KILL_RANDOM and its fault
// injection file system). With FLOWSTATE_FAULT_INJECTION defined:
// - fault_point(name) SIGKILLs the process when the environment variable
//   FLOWSTATE_FAULT equals name (read once); fault_pause(name) makes the
//   calling thread wait 2 s then (a step that comes late);
// - disk faults: while armed, every write to a store file fails with "no
//   space left" (disk_full), every fsync of one fails with an I/O error
//   (sync_fails), or every read of a table file fails (read_fails). Armed
//   in-process by set_disk_fault(), or while the file named by
//   FLOWSTATE_FAULT_DISK_FULL (FLOWSTATE_FAULT_SYNC_FAILS,
//   FLOWSTATE_FAULT_READ_FAILS) exists, so that a system test can fill and
//   free the "disk" of a running node.
// Without the define all of it compiles to nothing.

namespace flowstate {

enum class disk_fault { disk_full, sync_fails, read_fails };

#if defined(FLOWSTATE_FAULT_INJECTION)
void fault_point(const char* name);
void fault_pause(const char* name);
void set_disk_fault(disk_fault fault, bool armed);
bool disk_fault_armed(disk_fault fault);
#else
inline void fault_point(const char*) {}
inline void fault_pause(const char*) {}
inline void set_disk_fault(disk_fault, bool) {}
inline bool disk_fault_armed(disk_fault) { return false; }
#endif

}  // namespace flowstate
