// commit_batch, the metering counter encoding and its merge operator.
#include <cstring>

#include "store_impl.hpp"

namespace flowstate {

std::string encode_count(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out;
}

uint64_t decode_count(std::string_view value) {
  if (value.size() != 8) return 0;
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(value[i]);
  return n;
}

void commit_batch::put(column c, std::string key, std::string value) {
  ops_.push_back({op_kind::put, c, std::move(key), std::move(value)});
}

void commit_batch::erase(column c, std::string key) { ops_.push_back({op_kind::erase, c, std::move(key), {}}); }

void commit_batch::append(commit_batch&& other) {
  if (ops_.empty()) {
    ops_ = std::move(other.ops_);
  } else {
    ops_.reserve(ops_.size() + other.ops_.size());
    for (auto& o : other.ops_) ops_.push_back(std::move(o));
  }
  other.ops_.clear();
}

void commit_batch::add_count(std::string key, uint64_t n) {
  ops_.push_back({op_kind::add_count, column::metering, std::move(key), encode_count(n)});
}

namespace {

class uint64_add_operator final : public rocksdb::AssociativeMergeOperator {
 public:
  bool Merge(const rocksdb::Slice&, const rocksdb::Slice* existing, const rocksdb::Slice& value, std::string* new_value,
             rocksdb::Logger*) const override {
    // Only our own code writes these; a wrong size is corruption, reported
    // by RocksDB as a failed merge rather than silently summed.
    if (value.size() != 8 || (existing != nullptr && existing->size() != 8)) return false;
    uint64_t sum = decode_count({value.data(), value.size()});
    if (existing != nullptr) sum += decode_count({existing->data(), existing->size()});
    *new_value = encode_count(sum);
    return true;
  }
  const char* Name() const override { return "flowstate.uint64_add"; }
};

}  // namespace

std::shared_ptr<rocksdb::MergeOperator> make_uint64_add_operator() { return std::make_shared<uint64_add_operator>(); }

}  // namespace flowstate
