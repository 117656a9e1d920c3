#pragma once
// Ordered binary tuple keys: memcmp order of the encoded bytes equals the
// element-wise order of the tuples, so RocksDB range scans follow tuples.
// Every storage key starts with (tenant u32, project u32); ids are numeric so
// renames never rewrite keys.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "flowstate/runtime/result.hpp"

namespace flowstate {

// Message keys hash into this many key groups; a shard owns a range of them.
// Recorded in the store at first open and checked at every later open.
constexpr uint32_t key_group_count = 4096;

// One tag byte precedes every element; the tag order is the order between
// elements of different types at the same position.
enum class key_tag : uint8_t { u32 = 0x10, u64 = 0x11, string = 0x20 };

// Appends elements: integers as big-endian, strings with 0x00 escaped as
// 0x00 0xFF and terminated by 0x00 0x01 (so "a" < "a\0" < "ab").
class key_builder {
 public:
  key_builder() = default;
  key_builder& u32(uint32_t value);
  key_builder& u64(uint64_t value);
  key_builder& str(std::string_view value);
  const std::string& bytes() const { return bytes_; }
  std::string take() { return std::move(bytes_); }

 private:
  std::string bytes_;
};

// Decodes what key_builder wrote, element by element; a malformed key gives
// an error naming the byte offset and what was expected.
class key_reader {
 public:
  explicit key_reader(std::string_view bytes) : all_(bytes), rest_(bytes) {}
  result<uint32_t> u32();
  result<uint64_t> u64();
  result<std::string> str();
  std::optional<key_tag> peek() const;
  bool at_end() const { return rest_.empty(); }
  std::string_view rest() const { return rest_; }

 private:
  failure error(std::string_view expected) const;
  bool take_tag(key_tag tag);
  std::string_view all_;
  std::string_view rest_;
};

// FNV-1a over the bytes with a final fold of the high half into the low half.
// Never change: key groups are persisted through the keys that embed them.
uint64_t stable_hash64(std::string_view bytes);
uint32_t key_group_of(std::string_view message_key);
uint32_t key_group_of(std::string_view message_key, uint32_t group_count);

// The smallest byte string greater than every string starting with prefix
// ("" when there is none, i.e. the prefix is all 0xFF): an exclusive bound.
std::string prefix_successor(std::string_view prefix);

// Layout. Column families separate the kinds, so the tuples need no kind tag.
std::string project_prefix(uint32_t tenant, uint32_t project);
std::string state_key(uint32_t tenant, uint32_t project, uint32_t key_group, std::string_view flow,
                      std::string_view block_id, std::string_view key);
std::string state_prefix(uint32_t tenant, uint32_t project, uint32_t key_group);
std::string queue_key(uint32_t tenant, uint32_t project, uint32_t key_group, uint64_t seq);
// All queue entries of one key group, in sequence order.
std::string queue_prefix(uint32_t tenant, uint32_t project, uint32_t key_group);
// [begin, end) covering the queue entries of key groups [first_group, end_group).
std::pair<std::string, std::string> queue_range(uint32_t tenant, uint32_t project, uint32_t first_group,
                                                uint32_t end_group);

// Every record that belongs to a message key lives under the key's group
// (format 2), so that a key-group range is a set of key spans that can be
// copied to another node whole: state, queue entries, errors, idempotency
// records and the counters of executions and errors. The trace stays with
// the node that ran the execution (it is history, queried cluster-wide).
std::string error_key(uint32_t tenant, uint32_t project, uint32_t key_group, uint64_t seq);
// An error's public id, "<key group>-<seq>", and back.
std::string error_id(uint32_t key_group, uint64_t seq);
std::optional<std::pair<uint32_t, uint64_t>> parse_error_id(std::string_view id);
// `metering` counters of one key group: executions and errors recorded.
std::string executions_key(uint32_t tenant, uint32_t project, uint32_t key_group);
std::string error_count_key(uint32_t tenant, uint32_t project, uint32_t key_group);
// The executions metered in one UTC month ("2026-12"): the count a hosted
// node reports to the control plane (docs/hosted.md "Metering").
std::string metered_key(uint32_t tenant, uint32_t project, uint32_t key_group, std::string_view month);
// The month of a metered_key's counter; nullopt for any other counter.
std::optional<std::string_view> metered_month(std::string_view counter_name);
// [begin, end) covering a project's per-key-group counters (and nothing of
// its trace counters, which follow as strings).
std::pair<std::string, std::string> key_group_counters_range(uint32_t tenant, uint32_t project);
// An HTTP Idempotency-Key's stored response, under the message key's group.
std::string idempotency_key(uint32_t tenant, uint32_t project, uint32_t key_group, std::string_view key);
// The outbox (cluster): a message produced under `source_group` for a key
// group owned by another node, numbered by the node's sequence; and, under
// a receiving key group, the highest sequence accepted from each source
// group (its de-duplication mark). Marks sort before entries in a group
// (u32 before u64), so both move with their groups like every other record.
//
// `source_group` with source_lane set: a lane of its own under the group
// (a string element after it), for source messages (MQTT, custom sources)
// a node accepted for another node's key. Only the group's shard writes
// its plain entries, so their sequence order is the order they are
// written in; the lane keeps the acceptances' order apart from it (a pair's
// receiver takes a sequence at or below its mark for a repeat).
inline constexpr uint32_t source_lane = 0x80000000u;
std::string outbox_key(uint32_t tenant, uint32_t project, uint32_t source_group, uint64_t seq);
std::string inbox_mark_key(uint32_t tenant, uint32_t project, uint32_t dest_group, uint32_t source_group);
// A sink's delivery (docs/drivers.md "Sinks"): an output waiting for its
// driver, under the message key's group in the outbox column, after the
// group's outbox entries and marks (a string sorts after integers).
std::string sink_entry_key(uint32_t tenant, uint32_t project, uint32_t key_group, uint64_t seq);
struct sink_entry_id {
  uint32_t tenant = 0, project = 0, key_group = 0;
  uint64_t seq = 0;
};
// The parts of a sink entry's key; nullopt for any other outbox key.
std::optional<sink_entry_id> parse_sink_entry_key(std::string_view key);
// Format 1's key of the same record (tenant, project, key): read only while
// records migrated from a format-1 store may still be within their lifetime.
std::string legacy_idempotency_key(uint32_t tenant, uint32_t project, std::string_view key);

}  // namespace flowstate
