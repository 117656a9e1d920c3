#pragma once
// A fixed set of threads taking jobs from a bounded queue: where the admin
// API runs its blocking work (git, fsync, RocksDB reads), so that a flood of
// admin requests gets 503s instead of a thread each.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace flowstate::admin {

class work_pool {
 public:
  work_pool(std::size_t threads, std::size_t max_queued);
  ~work_pool() { stop(); }
  work_pool(const work_pool&) = delete;
  work_pool& operator=(const work_pool&) = delete;

  // Queues `job`; false (and `job` dropped) when max_queued jobs wait already
  // or the pool stopped.
  [[nodiscard]] bool try_post(std::function<void()> job);
  // Lets running jobs finish, drops queued ones, joins the threads. Idempotent.
  void stop();

 private:
  void run();

  const std::size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace flowstate::admin
