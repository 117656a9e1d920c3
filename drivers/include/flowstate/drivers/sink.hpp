#pragma once
// Sinks (docs/drivers.md "Sinks"): drivers that deliver a flow's outputs to
// an outside target after the commit that produced them. The engine keeps
// each delivery as an outbox entry until a sink reports it delivered; a
// sink only tries once per call and says what became of it. No CAF here.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace flowstate::drivers::sinks {

// One output to deliver.
struct delivery {
  std::string id;       // stable across retries and restarts: the target drops a repeat by it
  std::string key;      // the message key
  std::string payload;  // JSON
  int64_t time_ms = 0;  // the message's time
  uint32_t attempt = 1;
};

enum class verdict {
  delivered,  // the target took it
  retry,      // not now (down, overloaded, a timeout): try again later
  permanent,  // the target refused it for good (e.g. 400): an error record
};

struct outcome {
  verdict v = verdict::retry;
  std::string answer;           // what the target said (status and body start), for errors and logs
  int64_t retry_after_ms = -1;  // the target's Retry-After, when it gave one
  std::string result_json;      // a query's answer (delivered): the next block's input
};

using done_fn = std::function<void(outcome)>;

// A refusal for good, with why.
inline outcome permanent(std::string why) {
  outcome o;
  o.v = verdict::permanent;
  o.answer = std::move(why);
  return o;
}

// How often and how patiently a sink retries one delivery.
struct retry_policy {
  uint32_t attempts = 10;     // tries in all, then a permanent failure
  uint64_t initial_ms = 500;  // the delay after the first failure
  uint64_t max_ms = 60000;    // the delay never exceeds this
};

class sink {
 public:
  virtual ~sink() = default;
  // Starts one delivery; `done` is called once, on a driver thread.
  virtual void deliver(const delivery& d, done_fn done) = 0;
  // Deliveries of one sink running at once (different keys).
  virtual uint32_t concurrency() const { return 16; }
  // How often and how patiently one delivery is tried.
  virtual retry_policy retry() const { return {}; }
};

// The delay before try `attempt + 1`, after `attempt` failed: exponential
// from initial_ms, capped at max_ms, with "full jitter" between half of it
// and all of it (`unit` in [0, 1) from the caller's random source), and
// never shorter than the target's Retry-After (capped at max_ms).
uint64_t retry_delay_ms(const retry_policy& p, uint32_t attempt, double unit, int64_t retry_after_ms);

// The thread the sinks' network I/O runs on (one per node).
class io_thread {
 public:
  io_thread();
  ~io_thread();
  io_thread(const io_thread&) = delete;
  // Ends the thread: no handler runs after this returns. The context stays
  // until the destructor, so that sinks and sessions destroyed later can
  // still close their sockets and timers.
  void stop();
  bool stopped() const;
  // Returns once the handler running now and those queued before this call
  // have run (at once on the thread itself or once stopped; at most 10 s).
  // A check a handler made before a flag changed is then over.
  void sync();
  io_thread& operator=(const io_thread&) = delete;
  struct impl;
  impl& get() { return *impl_; }

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace flowstate::drivers::sinks
