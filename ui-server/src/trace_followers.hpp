#pragma once
// The followers of GET /api/v1/trace?follow=true (Server-Sent Events), all
// served by one thread that wakes when the engine says new trace events are
// durable (engine::watch_trace), instead of a thread per follower polling
// the store. At most `max_followers` follow at once.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "flowstate/actors/engine.hpp"
#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::admin {

class trace_followers {
 public:
  // Events of a project after a query's cursor (engine::trace).
  using query_fn = std::function<result<std::vector<std::string>>(const std::string& project, const trace_query& q)>;

  // With `poll` > 0 every follower also looks that often, notified or not
  // (in a cluster, for the events other nodes commit).
  trace_followers(query_fn query, std::size_t max_followers,
                  std::chrono::milliseconds keepalive = std::chrono::seconds(15),
                  std::chrono::milliseconds poll = std::chrono::milliseconds(0));
  ~trace_followers() { stop(); }
  trace_followers(const trace_followers&) = delete;
  trace_followers& operator=(const trace_followers&) = delete;

  // New events were committed: every follower looks. Never blocks for long
  // (called on the store's thread).
  void notify();
  // Streams the events of `project` matching `q` to the stream `open()`
  // returns (called only when there is room, so that a refused client still
  // gets a status), from q.after (or q.since_ms), as `id: CURSOR` / `data:
  // EVENT` pairs, with a comment line after `keepalive` of quiet so that a
  // gone client is noticed. False when max_followers follow already (or
  // after stop()).
  [[nodiscard]] bool add(std::string project, trace_query q,
                         const std::function<std::shared_ptr<http::response_stream>()>& open);
  std::size_t size();
  // Closes every stream and joins the thread. Idempotent.
  void stop();

 private:
  struct follower {
    std::string project;
    trace_query query;
    std::shared_ptr<http::response_stream> out;
    bool due = true;  // has not looked since the last notification
    std::chrono::steady_clock::time_point quiet_since;
  };
  void run();
  // Writes what is new for f; false when f is done (gone or its project is).
  bool serve(follower& f);

  const query_fn query_;
  const std::size_t max_followers_;
  const std::chrono::milliseconds keepalive_;
  const std::chrono::milliseconds poll_;
  std::chrono::steady_clock::time_point next_poll_;
  std::atomic<bool> new_events_{false};    // notified since the thread last looked
  std::atomic<std::size_t> following_{0};  // followers_.size(), read without the lock by notify()
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<std::shared_ptr<follower>> followers_;
  std::thread thread_;
};

}  // namespace flowstate::admin
