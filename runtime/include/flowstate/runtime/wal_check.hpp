#pragma once
// A check of a store's write-ahead log files, read with RocksDB's log format
// (32 KiB blocks of records: masked CRC32C, length, type, payload) before
// RocksDB opens them. RocksDB's point-in-time recovery stops silently at the
// first bad record; this check tells a torn tail (the unsynced end of the
// last file: nothing intact follows it, tolerated) from damage in the middle
// (intact records follow it: a disk fault, refused) and says what a recovery
// to the last intact record would drop.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "flowstate/runtime/result.hpp"

namespace flowstate {

struct wal_damage {
  std::string file;     // the WAL file holding the first bad record
  uint64_t offset = 0;  // its byte offset in that file
  std::string what;     // "checksum mismatch", "record longer than its block", ...
  // The last write batch intact before the damage (0: none in the scanned files).
  uint64_t last_good_sequence = 0;
  // What a point-in-time recovery drops: the damaged record and every intact
  // record after it, in this file and the later ones.
  uint64_t dropped_bytes = 0;
  uint64_t dropped_batches = 0;                                    // intact write batches (commits) after the damage
  uint64_t dropped_updates = 0;                                    // the updates (puts, deletes, merges) in them
  uint64_t first_dropped_sequence = 0, last_dropped_sequence = 0;  // 0 when none
};

struct wal_check_result {
  std::vector<std::string> files;  // the WAL files read, oldest first
  uint64_t batches = 0;            // intact write batches before any damage
  // Damage followed by intact records: refuse to open without a recovery.
  std::optional<wal_damage> damage;
  // A bad or incomplete record with nothing intact after it, at the end of
  // the last file: the unsynced end of a crash, which recovery drops.
  std::optional<wal_damage> torn_tail;
};

// Reads every *.log file of the RocksDB directory `store_dir`.
result<wal_check_result> check_wal(const std::string& store_dir);

// One paragraph for an operator: where the damage is, what recovery drops.
std::string describe(const wal_damage& d);

}  // namespace flowstate
