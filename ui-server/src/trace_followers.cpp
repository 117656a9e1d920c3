#include "trace_followers.hpp"
#include "flowstate/runtime/thread_name.hpp"

#include <algorithm>

namespace flowstate::admin {

trace_followers::trace_followers(query_fn query, std::size_t max_followers, std::chrono::milliseconds keepalive,
                                 std::chrono::milliseconds poll)
    : query_(std::move(query)),
      max_followers_(max_followers),
      keepalive_(keepalive),
      poll_(poll),
      next_poll_(std::chrono::steady_clock::now() + poll),
      thread_([this] {
        name_this_thread("fs-trace-follow");
        run();
      }) {}

void trace_followers::notify() {
  // Under load this runs once per commit: with nobody following it costs one
  // atomic load (a follower added later is served from its cursor, so a
  // notification before it is not needed); while a notification is pending it
  // costs one atomic exchange.
  if (following_.load(std::memory_order_acquire) == 0) return;
  if (new_events_.exchange(true)) return;
  // The empty lock orders the store before the thread's check of its wait
  // condition, so the wake-up cannot be lost.
  { std::lock_guard lock(mutex_); }
  wake_.notify_one();
}

bool trace_followers::add(std::string project, trace_query q,
                          const std::function<std::shared_ptr<http::response_stream>()>& open) {
  {
    std::lock_guard lock(mutex_);
    std::erase_if(followers_, [](const auto& f) { return f->out->closed(); });
    if (stopping_ || followers_.size() >= max_followers_) return false;
    auto out = open();
    if (!out) return true;  // the client went before its stream started: nothing to follow
    q.limit = 1000;
    followers_.push_back(std::make_shared<follower>(
        follower{std::move(project), std::move(q), std::move(out), true, std::chrono::steady_clock::now()}));
    following_.store(followers_.size(), std::memory_order_release);
  }
  wake_.notify_one();
  return true;
}

std::size_t trace_followers::size() {
  std::lock_guard lock(mutex_);
  std::erase_if(followers_, [](const auto& f) { return f->out->closed(); });
  following_.store(followers_.size(), std::memory_order_release);
  return followers_.size();
}

void trace_followers::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  std::vector<std::shared_ptr<follower>> left;
  {
    std::lock_guard lock(mutex_);
    left.swap(followers_);
    following_.store(0, std::memory_order_release);
  }
  for (auto& f : left) f->out->close();
}

bool trace_followers::serve(follower& f) {
  if (f.out->closed()) return false;
  auto events = query_(f.project, f.query);
  if (!events) return false;
  for (auto& event : *events) {
    auto at = event.find("\"cursor\":\"");
    if (at != std::string::npos) f.query.after = event.substr(at + 10, event.find('"', at + 10) - at - 10);
    if (!f.out->write("id: " + f.query.after + "\ndata: " + event + "\n\n")) return false;
  }
  auto now = std::chrono::steady_clock::now();
  if (!events->empty()) f.quiet_since = now;
  if (events->size() >= f.query.limit) {  // more may wait: look again without a notification
    std::lock_guard lock(mutex_);
    f.due = true;
  }
  return true;
}

void trace_followers::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    // The followers due, and those quiet for `keepalive` (to notice gone clients).
    const auto now = std::chrono::steady_clock::now();
    const bool polled = poll_.count() > 0 && now >= next_poll_;
    if (polled) next_poll_ = now + poll_;
    if (new_events_.exchange(false) || polled)
      for (auto& f : followers_) f->due = true;
    auto next_keepalive = now + keepalive_;
    if (poll_.count() > 0 && !followers_.empty()) next_keepalive = std::min(next_keepalive, next_poll_);
    std::vector<std::shared_ptr<follower>> due, idle;
    for (auto& f : followers_) {
      if (f->due) {
        f->due = false;
        due.push_back(f);
      } else if (now - f->quiet_since >= keepalive_) {
        idle.push_back(f);
      } else {
        next_keepalive = std::min(next_keepalive, f->quiet_since + keepalive_);
      }
    }
    if (due.empty() && idle.empty()) {
      wake_.wait_until(lock, next_keepalive, [this] {
        return stopping_ || new_events_.load() ||
               std::any_of(followers_.begin(), followers_.end(), [](auto& f) { return f->due; });
      });
      continue;
    }
    lock.unlock();
    std::vector<follower*> done;
    for (auto& f : due)
      if (!serve(*f)) done.push_back(f.get());
    for (auto& f : idle) {
      f->quiet_since = now;
      if (!f->out->write(": still here\n\n")) done.push_back(f.get());
    }
    for (auto* f : done) f->out->close();
    lock.lock();
    std::erase_if(followers_, [&](const auto& f) {
      return f->out->closed() || std::find(done.begin(), done.end(), f.get()) != done.end();
    });
    following_.store(followers_.size(), std::memory_order_release);
  }
}

}  // namespace flowstate::admin
