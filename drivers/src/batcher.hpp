#pragma once
// Gathers a sink's deliveries on the drivers' I/O thread into batches:
// `size` items, or what came within `every_ms` of the first. Internal to
// drivers/ (influxdb.Write, postgres.Insert/Upsert).
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

namespace flowstate::drivers {

template <class Item>
class batcher : public std::enable_shared_from_this<batcher<Item>> {
 public:
  using flush_fn = std::function<void(std::vector<Item>)>;
  batcher(boost::asio::io_context& ioc, std::size_t size, uint64_t every_ms, flush_fn flush)
      : ioc_(ioc), size_(size), every_ms_(every_ms), flush_(std::move(flush)), timer_(ioc) {}

  // From any thread.
  void add(Item item) {
    boost::asio::post(ioc_, [self = this->shared_from_this(), item = std::move(item)]() mutable {
      self->items_.push_back(std::move(item));
      if (self->items_.size() >= self->size_) return self->flush();
      if (self->items_.size() == 1) {
        self->timer_.expires_after(std::chrono::milliseconds(self->every_ms_));
        self->timer_.async_wait([self](boost::system::error_code ec) {
          if (!ec) self->flush();
        });
      }
    });
  }

 private:
  void flush() {
    timer_.cancel();
    if (items_.empty()) return;
    std::vector<Item> batch;
    batch.swap(items_);
    flush_(std::move(batch));
  }

  boost::asio::io_context& ioc_;
  std::size_t size_;
  uint64_t every_ms_;
  flush_fn flush_;
  boost::asio::steady_timer timer_;
  std::vector<Item> items_;
};

}  // namespace flowstate::drivers
