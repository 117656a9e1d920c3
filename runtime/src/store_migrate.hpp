#pragma once
// Private to the store: upgrading a format-1 store to format 2.
#include <rocksdb/write_batch.h>

#include <cstdint>
#include <string_view>

#include "store_impl.hpp"

namespace flowstate {

// format_version while the upgrade from format 1 is under way.
inline constexpr std::string_view meta_format1_upgrading = "1-upgrading-to-2";

// The meta record saying when a format-1 store was upgraded (decimal ms).
inline constexpr std::string_view meta_upgraded_from_format1_at = "upgraded_from_format1_at_ms";

struct migration_report {
  uint64_t errors_moved = 0;
  uint64_t counters_moved = 0;
};

// Moves what format 2 keeps under key groups (store_migrate.cpp). Steps are
// written as they go; the last one (recounted error counters and the
// upgrade's time) is added to `finish`, which the caller writes together
// with the new format record. Safe to run again after a crash at any point.
result<migration_report> migrate_format1_to_format2(store::impl& s, uint32_t groups, int64_t now_ms,
                                                    rocksdb::WriteBatch& finish);

}  // namespace flowstate
