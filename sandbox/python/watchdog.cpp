#include "watchdog.hpp"

#include <algorithm>

namespace flowstate::pyworker {
namespace {

// How long after asking the interpreter to stop the call may still run before
// the process is given up; and how often the request is repeated meanwhile.
constexpr auto grace = std::chrono::milliseconds(1000);
constexpr auto repeat = std::chrono::milliseconds(20);

}  // namespace

watchdog::watchdog(pthread_t watched, std::function<void()> interrupt, std::function<void()> abandon)
    : interrupt_(std::move(interrupt)), abandon_(std::move(abandon)) {
  pthread_getcpuclockid(watched, &cpu_clock_);
  thread_ = std::thread([this] { run(); });
}

watchdog::~watchdog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

std::chrono::nanoseconds watchdog::cpu_used() const {
  timespec ts{};
  clock_gettime(cpu_clock_, &ts);
  return std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

void watchdog::arm(uint32_t cpu_ms, uint32_t wall_ms) {
  {
    std::lock_guard lock(mutex_);
    active_ = true;
    fired_ = false;
    fired_on_cpu_ = false;
    ++generation_;
    cpu_start_ = cpu_used();
    cpu_limit_ = std::chrono::milliseconds(cpu_ms);
    wall_deadline_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(wall_ms);
  }
  wake_.notify_one();
}

bool watchdog::disarm() {
  std::lock_guard lock(mutex_);
  active_ = false;
  return fired_;
}

void watchdog::run() {
  std::unique_lock lock(mutex_);
  std::chrono::steady_clock::time_point fired_at;
  while (!stop_) {
    if (!active_) {
      wake_.wait(lock, [&] { return stop_ || active_; });
      continue;
    }
    const uint64_t generation = generation_;
    const auto now = std::chrono::steady_clock::now();
    if (!fired_) {
      const auto cpu_left = cpu_limit_ - (cpu_used() - cpu_start_);
      if (cpu_left <= std::chrono::nanoseconds::zero() || now >= wall_deadline_) {
        fired_ = true;
        fired_on_cpu_ = cpu_left <= std::chrono::nanoseconds::zero();
        fired_at = now;
        interrupt_();
        continue;
      }
      // CPU time cannot pass faster than wall time: sleeping for what is
      // left of it never oversleeps the CPU limit.
      auto until =
          std::min(wall_deadline_, now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(cpu_left));
      wake_.wait_until(lock, until, [&] { return stop_ || !active_ || generation_ != generation; });
      continue;
    }
    if (now - fired_at >= grace) {
      lock.unlock();
      abandon_();  // does not return when it took the call over
      lock.lock();
      active_ = false;
      continue;
    }
    interrupt_();
    wake_.wait_for(lock, repeat, [&] { return stop_ || !active_ || generation_ != generation; });
  }
}

}  // namespace flowstate::pyworker
