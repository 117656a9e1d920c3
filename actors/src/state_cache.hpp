#pragma once
// A shard's cache of the latest state per state key, bounded in bytes
// (docs/design.md, bounded memory). A key's next message must see the state
// its previous one produced, which is cached before the commit is written:
// an entry written by a commit the store has not applied yet is never
// evicted, or a read would find the older value in RocksDB.
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

namespace flowstate::engine_detail {

class state_cache {
 public:
  explicit state_cache(std::size_t budget_bytes) : budget_(budget_bytes) {}

  // The cached state (nullopt inside: known to have none), or nullptr when
  // the key is not cached. Marks it recently used.
  const std::optional<std::string>* find(const std::string& skey);
  // Caches `value` for `skey`; `ticket` is the store ticket of the commit
  // that writes it (0: it was read from the store).
  void put(const std::string& skey, std::optional<std::string> value, uint64_t ticket = 0);
  // After a commit: the entry's value is written by commit `ticket`.
  void written_by(const std::string& skey, uint64_t ticket);
  // Evicts least recently used entries while over the budget, skipping
  // those whose commit is after `written_through`.
  void trim(uint64_t written_through);

  // Forgets every entry (after a failed write, cached states may come from
  // commits that were never written).
  void clear() {
    entries_.clear();
    lru_.clear();
    bytes_ = 0;
  }

  // Forgets the entries whose state key `drop` says (their key group moved).
  template <class Pred>
  void erase_if(Pred drop) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (!drop(it->first)) {
        ++it;
        continue;
      }
      bytes_ -= it->second.bytes;
      lru_.erase(it->second.lru);
      it = entries_.erase(it);
    }
  }

  std::size_t bytes() const { return bytes_; }
  std::size_t size() const { return entries_.size(); }

 private:
  struct entry {
    std::optional<std::string> value;
    uint64_t ticket = 0;
    std::size_t bytes = 0;
    std::list<std::string>::iterator lru;
  };
  static std::size_t cost(const std::string& skey, const std::optional<std::string>& value) {
    return skey.size() + (value ? value->size() : 0) + 96;  // + map node, list node, strings
  }

  std::size_t budget_;
  std::size_t bytes_ = 0;
  std::unordered_map<std::string, entry> entries_;
  std::list<std::string> lru_;  // most recently used first
};

}  // namespace flowstate::engine_detail
