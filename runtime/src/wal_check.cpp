// Reads RocksDB write-ahead log files (db/log_format.h of RocksDB: 32 KiB
// blocks; each record a 7-byte header, checksum (masked CRC32C of type and
// payload), length (2 bytes), type, or 11 bytes with the log number for the
// recyclable types; a write batch's payload starts with its sequence number
// (8 bytes) and update count (4 bytes), little-endian).
#include "flowstate/runtime/wal_check.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace flowstate {
namespace {

namespace fs = std::filesystem;

constexpr size_t block_size = 32768;
constexpr size_t header_size = 7;
constexpr size_t recyclable_header_size = 11;

enum record_type : uint8_t {
  zero = 0,
  full = 1,
  first = 2,
  middle = 3,
  last = 4,
  recyclable_full = 5,
  recyclable_first = 6,
  recyclable_middle = 7,
  recyclable_last = 8,
  set_compression = 9,
  timestamp_size = 10,
  recyclable_timestamp_size = 11,
};

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;  // Castagnoli, reflected
      t[i] = c;
    }
    return t;
  }();
  return table;
}

uint32_t crc32c(const unsigned char* p, size_t n, uint32_t crc = 0) {
  const auto& t = crc_table();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = t[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

// RocksDB stores CRCs masked (a CRC of data that contains CRCs is weak).
uint32_t masked(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

uint32_t fixed32(const unsigned char* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint64_t fixed64(const unsigned char* p) { return uint64_t(fixed32(p)) | uint64_t(fixed32(p + 4)) << 32; }

bool recyclable(uint8_t type) {
  return (type >= recyclable_full && type <= recyclable_last) || type == recyclable_timestamp_size;
}
bool known(uint8_t type) { return type >= full && type <= recyclable_timestamp_size; }
bool starts_batch(uint8_t type) {
  return type == full || type == first || type == recyclable_full || type == recyclable_first;
}

struct scanner {
  wal_check_result out;
  std::optional<wal_damage> bad;  // the first bad record, until we know what follows it

  // An intact record: before any damage it counts as kept; after, as dropped.
  void intact(uint8_t type, const unsigned char* payload, size_t length) {
    if (!starts_batch(type) || length < 12) return;
    const uint64_t seq = fixed64(payload);
    const uint32_t count = fixed32(payload + 8);
    if (!bad) {
      ++out.batches;
      last_good = count ? seq + count - 1 : seq;
      return;
    }
    ++bad->dropped_batches;
    bad->dropped_updates += count;
    if (!bad->first_dropped_sequence) bad->first_dropped_sequence = seq;
    bad->last_dropped_sequence = count ? seq + count - 1 : seq;
    intact_after_damage = true;
  }

  void damaged(const std::string& file, uint64_t offset, std::string what) {
    if (bad) return;
    bad = wal_damage{};
    bad->file = file;
    bad->offset = offset;
    bad->what = std::move(what);
    bad->last_good_sequence = last_good;
  }

  // Scans one block; stops early where the rest of it cannot be trusted
  // (the scan goes on at the next block).
  void block(const std::string& file, uint64_t block_offset, const unsigned char* p, size_t n, bool last_block) {
    size_t pos = 0;
    while (pos + header_size <= n) {
      const unsigned char* h = p + pos;
      const uint8_t type = h[6];
      const size_t length = size_t(h[4]) | size_t(h[5]) << 8;
      if (type == zero && length == 0) return;  // preallocated or padding: the rest of the block is empty
      const size_t hsize = recyclable(type) ? recyclable_header_size : header_size;
      if (!known(type)) return damaged(file, block_offset + pos, "unknown record type " + std::to_string(type));
      if (pos + hsize + length > n)
        return damaged(file, block_offset + pos,
                       last_block ? "incomplete record at the end of the file" : "record longer than its block");
      const uint32_t expected = fixed32(h);
      // The CRC covers the type byte, the log number (recyclable) and the payload.
      uint32_t crc = crc32c(h + 6, 1);
      if (hsize == recyclable_header_size) crc = crc32c(h + 7, 4, crc);
      crc = crc32c(h + hsize, length, crc);
      if (masked(crc) == expected)
        intact(type, h + hsize, length);
      else
        damaged(file, block_offset + pos, "checksum mismatch");
      // After a mismatch the length may still be right: the records after it
      // in this block are then found intact (a wrong length lands on bytes
      // whose checksum does not match either).
      pos += hsize + length;
    }
    // Fewer than a header's bytes left: the writer pads them with zeros.
  }

  uint64_t last_good = 0;
  bool intact_after_damage = false;
};

}  // namespace

result<wal_check_result> check_wal(const std::string& store_dir) {
  std::vector<std::pair<uint64_t, std::string>> logs;
  std::error_code ec;
  for (auto it = fs::directory_iterator(store_dir, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name.size() <= 4 || name.substr(name.size() - 4) != ".log") continue;
    const auto stem = name.substr(0, name.size() - 4);
    if (stem.empty() || !std::all_of(stem.begin(), stem.end(), [](char c) { return c >= '0' && c <= '9'; })) continue;
    logs.emplace_back(std::stoull(stem), it->path().string());
  }
  if (ec && ec != std::errc::no_such_file_or_directory)
    return fail(store_dir + ": cannot list the write-ahead log files: " + ec.message());
  std::sort(logs.begin(), logs.end());

  scanner s;
  std::vector<unsigned char> buffer(block_size);
  for (size_t f = 0; f < logs.size(); ++f) {
    const auto& path = logs[f].second;
    s.out.files.push_back(path);
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(path + ": cannot open the write-ahead log file");
    const uint64_t size = fs::file_size(path, ec);
    if (ec) return fail(path + ": cannot read its size: " + ec.message());
    const bool last_file = f + 1 == logs.size();
    for (uint64_t offset = 0; offset < size; offset += block_size) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(block_size, size - offset));
      if (!in.read(reinterpret_cast<char*>(buffer.data()), static_cast<std::streamsize>(n)))
        return fail(path + ": cannot read " + std::to_string(n) + " bytes at offset " + std::to_string(offset));
      const bool had_damage = s.bad.has_value();
      s.block(path, offset, buffer.data(), n, last_file && offset + n == size);
      // Everything from the damage on is dropped by a recovery.
      if (s.bad && !had_damage) s.bad->dropped_bytes += size - s.bad->offset;
    }
    if (s.bad && s.bad->file != path) s.bad->dropped_bytes += size;
  }
  if (s.bad) {
    if (s.intact_after_damage)
      s.out.damage = std::move(s.bad);
    else
      s.out.torn_tail = std::move(s.bad);
  }
  return std::move(s.out);
}

std::string describe(const wal_damage& d) {
  std::string out =
      d.file + ": the write-ahead log is damaged at byte offset " + std::to_string(d.offset) + " (" + d.what + ")";
  if (d.dropped_batches) {
    out += ", and " + std::to_string(d.dropped_batches) + " intact write batch(es) follow it (sequence numbers " +
           std::to_string(d.first_dropped_sequence) + " to " + std::to_string(d.last_dropped_sequence) + ", " +
           std::to_string(d.dropped_updates) + " updates)";
  }
  out += ". Recovering to the last intact record before it";
  if (d.last_good_sequence) out += " (sequence " + std::to_string(d.last_good_sequence) + ")";
  out += " drops " + std::to_string(d.dropped_bytes) + " bytes of log";
  if (d.dropped_batches) out += ": the damaged record and those " + std::to_string(d.dropped_batches) + " batches";
  out += ".";
  return out;
}

}  // namespace flowstate
