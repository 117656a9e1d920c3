#include <algorithm>
#include <chrono>
#include <cmath>
#include <future>
#include <memory>

#include <boost/asio/post.hpp>

#include "flowstate/runtime/thread_name.hpp"
#include "sink_io.hpp"

namespace flowstate::drivers::sinks {

uint64_t retry_delay_ms(const retry_policy& p, uint32_t attempt, double unit, int64_t retry_after_ms) {
  const uint32_t doublings = std::min<uint32_t>(attempt > 0 ? attempt - 1 : 0, 40);
  const double full = std::min<double>(double(p.initial_ms) * std::ldexp(1.0, int(doublings)), double(p.max_ms));
  uint64_t delay = static_cast<uint64_t>(full * (0.5 + 0.5 * std::clamp(unit, 0.0, 1.0)));
  if (retry_after_ms > 0) delay = std::max<uint64_t>(delay, std::min<uint64_t>(retry_after_ms, p.max_ms));
  return std::max<uint64_t>(delay, 1);
}

io_thread::io_thread() : impl_(std::make_unique<impl>()) {
  impl_->tls.set_default_verify_paths();
  impl_->tls.set_verify_mode(boost::asio::ssl::verify_peer);
  impl_->thread = std::thread([this] {
    name_this_thread("fs-sink-io");
    impl_->ioc.run();
  });
}

void io_thread::stop() {
  impl_->work.reset();
  impl_->ioc.stop();
  if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) impl_->thread.join();
}

bool io_thread::stopped() const { return impl_->ioc.stopped(); }

void io_thread::sync() {
  if (impl_->ioc.stopped() || impl_->thread.get_id() == std::this_thread::get_id()) return;
  auto done = std::make_shared<std::promise<void>>();
  auto ran = done->get_future();
  boost::asio::post(impl_->ioc, [done] { done->set_value(); });
  ran.wait_for(std::chrono::seconds(10));
}

io_thread::~io_thread() { stop(); }

}  // namespace flowstate::drivers::sinks
