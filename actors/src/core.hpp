#pragma once
// What every shard shares: the store, the shard handles, the in-flight
// counters, and the helpers that turn results into commits and replies.
#include <caf/actor.hpp>

#include <atomic>
#include <memory>
#include <vector>

#include "flowstate/runtime/store.hpp"
#include "idempotency.hpp"
#include "model.hpp"
#include "trace.hpp"
#include "trace_watch.hpp"

namespace flowstate::engine_detail {

struct engine_core {
  store* db = nullptr;
  std::vector<caf::actor> shards;
  std::unique_ptr<std::atomic<std::size_t>[]> in_flight;  // per shard
  std::size_t max_in_flight = 2048;
  std::size_t state_cache_bytes = 256u << 20;  // shared by the shards
  std::size_t shards_planned = 1;
  std::atomic<bool> draining{false};
  // A write failed (disk full): new input gets 503 until the store resumes
  // and the queue was read again (engine maintenance).
  std::atomic<bool> writes_paused{false};
  idempotency_registry idempotency;
  trace_bytes trace_accounting;
  trace_watchers trace_watch;  // told when commits with trace events are durable

  std::size_t shard_of(std::string_view key) const {
    return static_cast<std::size_t>(key_group_of(key)) * shards.size() / key_group_count;
  }
  // Bytes of each shard's state cache, as it last reported them.
  std::unique_ptr<std::atomic<std::size_t>[]> state_cache_bytes_used;
  std::size_t state_cache_used() const {
    std::size_t n = 0;
    if (state_cache_bytes_used)
      for (std::size_t i = 0; i < shards.size(); ++i) n += state_cache_bytes_used[i].load(std::memory_order_relaxed);
    return n;
  }
  std::size_t total_in_flight() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < shards.size(); ++i) n += in_flight[i].load();
    return n;
  }
};

// Spawns one shard actor.
caf::actor spawn_shard(caf::actor_system& sys, engine_core& core, std::size_t index);

}  // namespace flowstate::engine_detail
