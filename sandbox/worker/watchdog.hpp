#pragma once
// Stops a call that runs past its time limit: a thread that calls
// Isolate::TerminateExecution at the call's deadline. Arming and disarming
// take a mutex but wake the thread only when it is idle, so a stream of short
// calls costs no system call per call.
#include <chrono>
#include <ctime>

#include <pthread.h>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace v8 {
class Isolate;
}

namespace flowstate::worker {

class watchdog {
 public:
  explicit watchdog(v8::Isolate* isolate);
  ~watchdog();
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  // Runs `hook` on the watchdog's thread once a call has run `after_ms`
  // (the worker uses it to send the replies it holds, so that a long call
  // does not delay the answers of the calls before it).
  void on_slow_call(uint32_t after_ms, std::function<void()> hook);

  // Starts the clock for one call (or one load's top-level code), on the
  // thread that runs it: the limit is that thread's CPU time, with a wall
  // clock backstop (`wall_ms`, 0: twice the limit) for code that waits instead.
  void arm(uint32_t timeout_ms, uint32_t wall_ms = 0);
  // Ends it; true when the deadline passed and execution was terminated.
  bool disarm();

 private:
  void run();

  v8::Isolate* isolate_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool active_ = false;
  bool idle_ = false;
  bool fired_ = false;
  uint64_t generation_ = 0;
  std::chrono::steady_clock::time_point deadline_;  // the next moment to look at the CPU clock
  std::chrono::steady_clock::time_point wall_backstop_;
  clockid_t cpu_clock_ = CLOCK_THREAD_CPUTIME_ID;  // of the calling thread
  int64_t cpu_start_ns_ = 0;
  int64_t cpu_limit_ns_ = 0;
  std::chrono::steady_clock::time_point slow_deadline_;
  bool slow_fired_ = false;
  uint32_t slow_after_ms_ = 0;
  std::function<void()> slow_hook_;
  // What the thread sleeps until; an earlier deadline must wake it.
  std::chrono::steady_clock::time_point sleeping_until_;
  std::thread thread_;
};

}  // namespace flowstate::worker
