#include "flowstate/runtime/keys.hpp"

#include "flowstate/runtime/decimal.hpp"

namespace flowstate {

namespace {

void append_big_endian(std::string& out, uint64_t value, int bytes) {
  for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) out.push_back(static_cast<char>((value >> shift) & 0xFF));
}

uint64_t read_big_endian(std::string_view bytes) {
  uint64_t value = 0;
  for (unsigned char c : bytes) value = (value << 8) | c;
  return value;
}

}  // namespace

key_builder& key_builder::u32(uint32_t value) {
  bytes_.push_back(static_cast<char>(key_tag::u32));
  append_big_endian(bytes_, value, 4);
  return *this;
}

key_builder& key_builder::u64(uint64_t value) {
  bytes_.push_back(static_cast<char>(key_tag::u64));
  append_big_endian(bytes_, value, 8);
  return *this;
}

key_builder& key_builder::str(std::string_view value) {
  bytes_.push_back(static_cast<char>(key_tag::string));
  for (char c : value) {
    bytes_.push_back(c);
    if (c == '\0') bytes_.push_back('\xFF');
  }
  bytes_.push_back('\0');
  bytes_.push_back('\x01');
  return *this;
}

failure key_reader::error(std::string_view expected) const {
  auto offset = all_.size() - rest_.size();
  std::string found = rest_.empty() ? "end of key" : "byte 0x";
  if (!rest_.empty()) {
    static constexpr char hex[] = "0123456789abcdef";
    auto b = static_cast<unsigned char>(rest_.front());
    found += hex[b >> 4];
    found += hex[b & 0xF];
  }
  return fail("key offset " + std::to_string(offset) + ": expected " + std::string(expected) + ", found " + found);
}

std::optional<key_tag> key_reader::peek() const {
  if (rest_.empty()) return std::nullopt;
  return static_cast<key_tag>(static_cast<unsigned char>(rest_.front()));
}

bool key_reader::take_tag(key_tag tag) {
  if (peek() != tag) return false;
  rest_.remove_prefix(1);
  return true;
}

result<uint32_t> key_reader::u32() {
  if (!take_tag(key_tag::u32)) return error("u32 element (tag 0x10)");
  if (rest_.size() < 4) return error("4 bytes of u32");
  auto value = static_cast<uint32_t>(read_big_endian(rest_.substr(0, 4)));
  rest_.remove_prefix(4);
  return value;
}

result<uint64_t> key_reader::u64() {
  if (!take_tag(key_tag::u64)) return error("u64 element (tag 0x11)");
  if (rest_.size() < 8) return error("8 bytes of u64");
  auto value = read_big_endian(rest_.substr(0, 8));
  rest_.remove_prefix(8);
  return value;
}

result<std::string> key_reader::str() {
  if (!take_tag(key_tag::string)) return error("string element (tag 0x20)");
  std::string value;
  for (;;) {
    if (rest_.empty()) return error("string terminator 0x00 0x01");
    char c = rest_.front();
    if (c != '\0') {
      value.push_back(c);
      rest_.remove_prefix(1);
      continue;
    }
    if (rest_.size() < 2) return error("0xff or 0x01 after 0x00 in string");
    char next = rest_[1];
    if (next == '\x01') {
      rest_.remove_prefix(2);
      return value;
    }
    if (next != '\xFF') {
      rest_.remove_prefix(1);
      return error("0xff or 0x01 after 0x00 in string");
    }
    value.push_back('\0');
    rest_.remove_prefix(2);
  }
}

uint64_t stable_hash64(std::string_view bytes) {
  uint64_t hash = 14695981039346656037ull;  // FNV-1a 64 offset basis
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ull;  // FNV-1a 64 prime
  }
  // FNV's low bits mix poorly; fold the high half in before taking a modulus.
  return hash ^ (hash >> 32);
}

uint32_t key_group_of(std::string_view message_key, uint32_t group_count) {
  return static_cast<uint32_t>(stable_hash64(message_key) % group_count);
}

uint32_t key_group_of(std::string_view message_key) { return key_group_of(message_key, key_group_count); }

std::string prefix_successor(std::string_view prefix) {
  std::string out(prefix);
  while (!out.empty()) {
    auto last = static_cast<unsigned char>(out.back());
    if (last != 0xFF) {
      out.back() = static_cast<char>(last + 1);
      return out;
    }
    out.pop_back();
  }
  return out;
}

std::string project_prefix(uint32_t tenant, uint32_t project) { return key_builder().u32(tenant).u32(project).take(); }

std::string state_key(uint32_t tenant, uint32_t project, uint32_t key_group, std::string_view flow,
                      std::string_view block_id, std::string_view key) {
  return key_builder().u32(tenant).u32(project).u32(key_group).str(flow).str(block_id).str(key).take();
}

std::string state_prefix(uint32_t tenant, uint32_t project, uint32_t key_group) {
  return key_builder().u32(tenant).u32(project).u32(key_group).take();
}

std::string queue_key(uint32_t tenant, uint32_t project, uint32_t key_group, uint64_t seq) {
  return key_builder().u32(tenant).u32(project).u32(key_group).u64(seq).take();
}

std::string queue_prefix(uint32_t tenant, uint32_t project, uint32_t key_group) {
  return key_builder().u32(tenant).u32(project).u32(key_group).take();
}

std::pair<std::string, std::string> queue_range(uint32_t tenant, uint32_t project, uint32_t first_group,
                                                uint32_t end_group) {
  return {key_builder().u32(tenant).u32(project).u32(first_group).take(),
          key_builder().u32(tenant).u32(project).u32(end_group).take()};
}

std::string outbox_key(uint32_t tenant, uint32_t project, uint32_t source_group, uint64_t seq) {
  if (source_group & source_lane)
    return key_builder().u32(tenant).u32(project).u32(source_group & ~source_lane).str("src").u64(seq).take();
  return key_builder().u32(tenant).u32(project).u32(source_group).u64(seq).take();
}

std::string sink_entry_key(uint32_t tenant, uint32_t project, uint32_t key_group, uint64_t seq) {
  return key_builder().u32(tenant).u32(project).u32(key_group).str("sink").u64(seq).take();
}

std::optional<sink_entry_id> parse_sink_entry_key(std::string_view key) {
  key_reader r(key);
  auto tenant = r.u32(), project = r.u32(), group = r.u32();
  if (!tenant || !project || !group || r.peek() != key_tag::string) return std::nullopt;
  auto tag = r.str();
  if (!tag || *tag != "sink") return std::nullopt;
  auto seq = r.u64();
  if (!seq || !r.at_end()) return std::nullopt;
  return sink_entry_id{*tenant, *project, *group, *seq};
}

std::string inbox_mark_key(uint32_t tenant, uint32_t project, uint32_t dest_group, uint32_t source_group) {
  return key_builder().u32(tenant).u32(project).u32(dest_group).u32(source_group).take();
}

std::string error_key(uint32_t tenant, uint32_t project, uint32_t key_group, uint64_t seq) {
  return key_builder().u32(tenant).u32(project).u32(key_group).u64(seq).take();
}

std::string error_id(uint32_t key_group, uint64_t seq) { return std::to_string(key_group) + "-" + std::to_string(seq); }

std::optional<std::pair<uint32_t, uint64_t>> parse_error_id(std::string_view id) {
  auto dash = id.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto group = parse_decimal<uint32_t>(id.substr(0, dash));
  auto seq = parse_decimal<uint64_t>(id.substr(dash + 1));
  if (!group || !seq || *group >= key_group_count) return std::nullopt;
  return std::pair{*group, *seq};
}

std::string executions_key(uint32_t tenant, uint32_t project, uint32_t key_group) {
  return key_builder().u32(tenant).u32(project).u32(key_group).str("executions").take();
}

std::string error_count_key(uint32_t tenant, uint32_t project, uint32_t key_group) {
  return key_builder().u32(tenant).u32(project).u32(key_group).str("errors").take();
}

std::string metered_key(uint32_t tenant, uint32_t project, uint32_t key_group, std::string_view month) {
  return key_builder().u32(tenant).u32(project).u32(key_group).str("metered@" + std::string(month)).take();
}

std::optional<std::string_view> metered_month(std::string_view counter_name) {
  constexpr std::string_view prefix = "metered@";
  if (counter_name.substr(0, prefix.size()) != prefix) return std::nullopt;
  return counter_name.substr(prefix.size());
}

std::pair<std::string, std::string> key_group_counters_range(uint32_t tenant, uint32_t project) {
  return {key_builder().u32(tenant).u32(project).u32(0).take(),
          key_builder().u32(tenant).u32(project).u32(key_group_count).take()};
}

std::string idempotency_key(uint32_t tenant, uint32_t project, uint32_t key_group, std::string_view key) {
  return key_builder().u32(tenant).u32(project).u32(key_group).str(key).take();
}

std::string legacy_idempotency_key(uint32_t tenant, uint32_t project, std::string_view key) {
  return key_builder().u32(tenant).u32(project).str(key).take();
}

}  // namespace flowstate
