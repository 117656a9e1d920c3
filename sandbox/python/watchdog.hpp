#pragma once
// Per-call time limits for the Python worker. A thread watches the CPU clock
// of the thread running the call (pthread_getcpuclockid) and the wall clock:
//  - past the CPU limit or the wall backstop it asks the interpreter to stop
//    (`interrupt`, repeated while the call goes on: Python code may catch it);
//  - if the call is still running `grace` later, the code is stuck where the
//    interpreter cannot stop it (inside C): `abandon` answers the call and
//    ends the process, and the host starts a fresh worker.
#include <pthread.h>
#include <time.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace flowstate::pyworker {

class watchdog {
 public:
  watchdog(pthread_t watched, std::function<void()> interrupt, std::function<void()> abandon);
  ~watchdog();
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  void arm(uint32_t cpu_ms, uint32_t wall_ms);
  // Ends the call; true when a limit was exceeded.
  bool disarm();
  // Which limit fired (valid after disarm() returned true).
  bool fired_on_cpu() const { return fired_on_cpu_; }

 private:
  void run();
  std::chrono::nanoseconds cpu_used() const;

  clockid_t cpu_clock_{};
  std::function<void()> interrupt_, abandon_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool active_ = false;
  bool fired_ = false;
  bool fired_on_cpu_ = false;
  uint64_t generation_ = 0;
  std::chrono::nanoseconds cpu_start_{}, cpu_limit_{};
  std::chrono::steady_clock::time_point wall_deadline_;
  std::thread thread_;
};

}  // namespace flowstate::pyworker
