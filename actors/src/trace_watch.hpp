#pragma once
// Who wants to know that trace events were committed (the admin API's
// followers of the trace). notify() runs on the store's writer or sync
// thread once a commit with a trace event is durable: it costs one atomic
// load while nobody watches, and the watchers' callbacks must not block.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>

namespace flowstate::engine_detail {

class trace_watchers {
 public:
  // Calls `fn` after each such commit until the returned handle is dropped
  // (dropping it waits for a call in progress).
  std::shared_ptr<void> add(std::function<void()> fn) {
    std::lock_guard lock(mutex_);
    auto id = next_++;
    watchers_.emplace(id, std::move(fn));
    count_.store(watchers_.size());
    return std::shared_ptr<void>(new uint64_t(id), [this](void* p) {
      auto* id = static_cast<uint64_t*>(p);
      std::lock_guard lock(mutex_);
      watchers_.erase(*id);
      count_.store(watchers_.size());
      delete id;
    });
  }

  void notify() {
    if (count_.load(std::memory_order_relaxed) == 0) return;
    std::lock_guard lock(mutex_);
    for (auto& [_, fn] : watchers_) fn();
  }

 private:
  std::mutex mutex_;
  std::map<uint64_t, std::function<void()>> watchers_;
  uint64_t next_ = 0;
  std::atomic<std::size_t> count_{0};
};

}  // namespace flowstate::engine_detail
