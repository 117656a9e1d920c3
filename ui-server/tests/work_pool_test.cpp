#include <doctest/doctest.h>

#include <atomic>
#include <future>

#include "../src/work_pool.hpp"

using flowstate::admin::work_pool;

TEST_CASE("a full admin pool refuses more work instead of starting threads") {
  work_pool pool(1, 1);
  std::promise<void> started, release;
  auto released = release.get_future().share();
  std::atomic<int> ran{0};
  REQUIRE(pool.try_post([&] {
    started.set_value();
    released.wait();
    ++ran;
  }));
  started.get_future().wait();  // the only thread is busy: the next job waits in the queue
  CHECK(pool.try_post([&] { ++ran; }));
  CHECK_FALSE(pool.try_post([&] { ++ran; }));  // the queue holds one
  std::promise<void> last_done;
  release.set_value();
  // Once the queue drains there is room again.
  while (!pool.try_post([&] { last_done.set_value(); })) std::this_thread::yield();
  last_done.get_future().wait();
  CHECK(ran == 2);
}

TEST_CASE("a stopped admin pool takes no more work and drops what waited") {
  // A queue that never fills: try_post below fails only once stop() began
  // (with a bound, it could fail for a full queue first, and the queued
  // job run before stop() took it).
  work_pool pool(1, std::size_t{1} << 40);
  std::promise<void> started, release;
  auto released = release.get_future().share();
  std::atomic<int> ran{0};
  REQUIRE(pool.try_post([&] {
    started.set_value();
    released.wait();
    ++ran;
  }));
  started.get_future().wait();
  REQUIRE(pool.try_post([&] { ++ran; }));
  std::thread stopper([&] { pool.stop(); });
  while (pool.try_post([] {})) std::this_thread::yield();  // until stop() took the queue
  release.set_value();
  stopper.join();
  CHECK(ran == 1);  // the running job finished; the queued one was dropped
  CHECK_FALSE(pool.try_post([&] { ++ran; }));
}
