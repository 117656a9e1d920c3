#include "state_cache.hpp"

namespace flowstate::engine_detail {

const std::optional<std::string>* state_cache::find(const std::string& skey) {
  auto it = entries_.find(skey);
  if (it == entries_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return &it->second.value;
}

void state_cache::put(const std::string& skey, std::optional<std::string> value, uint64_t ticket) {
  auto [it, inserted] = entries_.try_emplace(skey);
  entry& e = it->second;
  if (inserted) {
    lru_.push_front(skey);
    e.lru = lru_.begin();
  } else {
    lru_.splice(lru_.begin(), lru_, e.lru);
    bytes_ -= e.bytes;
  }
  e.bytes = cost(skey, value);
  e.value = std::move(value);
  e.ticket = std::max(e.ticket, ticket);
  bytes_ += e.bytes;
}

void state_cache::written_by(const std::string& skey, uint64_t ticket) {
  if (auto it = entries_.find(skey); it != entries_.end()) it->second.ticket = std::max(it->second.ticket, ticket);
}

void state_cache::trim(uint64_t written_through) {
  if (bytes_ <= budget_) return;
  // From the least recently used end; pending entries stay for a later trim.
  for (auto it = lru_.end(); it != lru_.begin() && bytes_ > budget_;) {
    --it;
    auto found = entries_.find(*it);
    if (found->second.ticket > written_through) continue;
    bytes_ -= found->second.bytes;
    entries_.erase(found);
    it = lru_.erase(it);
  }
}

}  // namespace flowstate::engine_detail
