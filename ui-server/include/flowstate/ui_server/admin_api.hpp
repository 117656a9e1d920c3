#pragma once
// The admin API on --admin-listen: /healthz, /readyz, /metrics and /api/v1
// (token required). Returns the HTTP handler to run on an http::server.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flowstate/drivers/http_server.hpp"

namespace flowstate {
class engine;
}

namespace flowstate::admin {

// The admin API's long-lived work: one thread per live stream (a followed
// trace). stop() ends and joins them; call it before the engine goes.
class live_streams {
 public:
  ~live_streams() { stop(); }
  // Runs `body` on its own thread; `body` returns when stopping() is true.
  void run(std::function<void(const std::atomic<bool>& stopping)> body);
  void stop();

 private:
  struct runner {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::atomic<bool> stopping_{false};
  std::mutex mutex_;
  std::vector<runner> threads_;  // finished ones are joined at the next run()
};

http::handler make_handler(engine& e, std::string token, live_streams& streams);

}  // namespace flowstate::admin
