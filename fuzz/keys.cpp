// Key decoding (runtime/keys.hpp): key_reader over arbitrary bytes, as the
// engine reads keys back from RocksDB. Properties checked: decoding never
// reads past the key, a key that decodes re-encodes to the same bytes, and
// the byte order of two decodable keys is the order of their tuples.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "flowstate/runtime/keys.hpp"

using namespace flowstate;

namespace {

using element = std::variant<uint32_t, uint64_t, std::string>;

// The elements of `bytes`, or nullopt when it does not decode to the end.
std::optional<std::vector<element>> decode(std::string_view bytes) {
  key_reader reader(bytes);
  std::vector<element> out;
  while (!reader.at_end()) {
    auto tag = reader.peek();
    if (tag == key_tag::u32) {
      auto v = reader.u32();
      if (!v) return std::nullopt;
      out.emplace_back(*v);
    } else if (tag == key_tag::u64) {
      auto v = reader.u64();
      if (!v) return std::nullopt;
      out.emplace_back(*v);
    } else {
      // An unknown tag must be refused by str() with a message, not misread.
      auto v = reader.str();
      if (!v) {
        if (v.error().find("key offset ") != 0) std::abort();
        return std::nullopt;
      }
      out.emplace_back(std::move(*v));
    }
    if (reader.rest().size() > bytes.size()) std::abort();
  }
  return out;
}

std::string encode(const std::vector<element>& elements) {
  key_builder builder;
  for (const auto& e : elements) {
    if (auto* a = std::get_if<uint32_t>(&e)) builder.u32(*a);
    if (auto* b = std::get_if<uint64_t>(&e)) builder.u64(*b);
    if (auto* c = std::get_if<std::string>(&e)) builder.str(*c);
  }
  return builder.take();
}

// Tuple order: element by element, a shorter prefix first; between types,
// the tag order (u32 < u64 < string).
int compare(const std::vector<element>& a, const std::vector<element>& b) {
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (a[i].index() != b[i].index()) return a[i].index() < b[i].index() ? -1 : 1;
    if (a[i] < b[i]) return -1;
    if (b[i] < a[i]) return 1;
  }
  return a.size() == b.size() ? 0 : (a.size() < b.size() ? -1 : 1);
}

int sign(int v) { return (v > 0) - (v < 0); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // Two keys separated by the first "|" (the second may be empty).
  auto bar = input.find('|');
  std::string_view first = input.substr(0, bar);
  std::string_view second = bar == std::string_view::npos ? std::string_view() : input.substr(bar + 1);

  auto a = decode(first);
  auto b = decode(second);
  if (a && encode(*a) != first) {
    std::fprintf(stderr, "a decodable key does not re-encode to its bytes\n");
    std::abort();
  }
  if (a && b) {
    int bytes_order = sign(first.compare(second));
    if (bytes_order != sign(compare(*a, *b))) {
      std::fprintf(stderr, "byte order and tuple order differ\n");
      std::abort();
    }
  }
  // The hash and the successor take any bytes.
  (void)key_group_of(first);
  auto succ = prefix_successor(first);
  if (!succ.empty() && !(std::string_view(succ) > first)) std::abort();
  return 0;
}
