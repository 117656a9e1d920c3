#include "watchdog.hpp"

#include <v8.h>

namespace flowstate::worker {

watchdog::watchdog(v8::Isolate* isolate) : isolate_(isolate), thread_([this] { run(); }) {}

watchdog::~watchdog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void watchdog::arm(uint32_t timeout_ms) {
  bool notify = false;
  {
    std::lock_guard lock(mutex_);
    active_ = true;
    fired_ = false;
    ++generation_;
    deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    notify = idle_ || deadline_ < sleeping_until_;
  }
  if (notify) wake_.notify_one();
}

bool watchdog::disarm() {
  std::lock_guard lock(mutex_);
  active_ = false;
  return fired_;
}

void watchdog::run() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    if (!active_) {
      idle_ = true;
      sleeping_until_ = std::chrono::steady_clock::time_point::max();
      wake_.wait(lock);
      idle_ = false;
      continue;
    }
    // Sleeps until the current call's deadline; a later call replaces the
    // generation, and the loop then waits for that call's deadline instead.
    const uint64_t generation = generation_;
    const auto deadline = deadline_;
    sleeping_until_ = deadline;
    wake_.wait_until(lock, deadline, [&] { return stop_ || !active_ || generation_ != generation; });
    sleeping_until_ = std::chrono::steady_clock::time_point::max();
    if (stop_ || !active_ || generation_ != generation) continue;
    if (std::chrono::steady_clock::now() < deadline) continue;
    fired_ = true;
    active_ = false;
    isolate_->TerminateExecution();
  }
}

}  // namespace flowstate::worker
