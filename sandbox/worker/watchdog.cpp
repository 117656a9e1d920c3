#include "watchdog.hpp"

#include <v8.h>

#include <algorithm>

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

void watchdog::on_slow_call(uint32_t after_ms, std::function<void()> hook) {
  std::lock_guard lock(mutex_);
  slow_after_ms_ = after_ms;
  slow_hook_ = std::move(hook);
}

namespace {
int64_t cpu_ns(clockid_t clock) {
  timespec ts{};
  if (::clock_gettime(clock, &ts) != 0) return 0;
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
}  // namespace

void watchdog::arm(uint32_t timeout_ms, uint32_t wall_ms) {
  bool notify = false;
  clockid_t clock = CLOCK_THREAD_CPUTIME_ID;
  if (::pthread_getcpuclockid(::pthread_self(), &clock) != 0) clock = CLOCK_THREAD_CPUTIME_ID;
  const int64_t cpu_start = cpu_ns(clock);
  {
    std::lock_guard lock(mutex_);
    cpu_clock_ = clock;
    cpu_start_ns_ = cpu_start;
    cpu_limit_ns_ = static_cast<int64_t>(timeout_ms) * 1000000;
    active_ = true;
    fired_ = false;
    slow_fired_ = false;
    ++generation_;
    const auto now = std::chrono::steady_clock::now();
    // The CPU budget cannot be spent before this; the thread looks again then.
    deadline_ = now + std::chrono::milliseconds(timeout_ms);
    wall_backstop_ = now + std::chrono::milliseconds(wall_ms ? uint64_t{wall_ms} : 2 * uint64_t{timeout_ms});
    slow_deadline_ = now + std::chrono::milliseconds(slow_after_ms_);
    auto first = slow_hook_ ? std::min(deadline_, slow_deadline_) : deadline_;
    notify = idle_ || first < sleeping_until_;
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
    // Sleeps until the current call's next moment (slow, then deadline); a
    // later call replaces the generation, and the loop then waits for that
    // call's moments instead.
    const uint64_t generation = generation_;
    const bool slow_next = slow_hook_ && !slow_fired_ && slow_deadline_ < deadline_;
    const auto wake_at = slow_next ? slow_deadline_ : deadline_;
    sleeping_until_ = wake_at;
    wake_.wait_until(lock, wake_at, [&] { return stop_ || !active_ || generation_ != generation; });
    sleeping_until_ = std::chrono::steady_clock::time_point::max();
    if (stop_ || !active_ || generation_ != generation) continue;
    if (std::chrono::steady_clock::now() < wake_at) continue;
    if (slow_next) {
      slow_fired_ = true;
      auto hook = slow_hook_;
      lock.unlock();
      hook();
      lock.lock();
      continue;
    }
    // Past the wall deadline: has the call used its CPU time? A busy
    // machine slows the call's clock, not the budget.
    const int64_t used = cpu_ns(cpu_clock_) - cpu_start_ns_;
    const auto now = std::chrono::steady_clock::now();
    if (used < cpu_limit_ns_ && now < wall_backstop_) {
      deadline_ = std::min(wall_backstop_, now + std::chrono::nanoseconds(cpu_limit_ns_ - used));
      continue;
    }
    fired_ = true;
    active_ = false;
    isolate_->TerminateExecution();
  }
}

}  // namespace flowstate::worker
