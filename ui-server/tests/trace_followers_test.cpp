#include <doctest/doctest.h>

#include <condition_variable>
#include <mutex>

#include "../src/trace_followers.hpp"

using namespace flowstate;
using namespace std::chrono_literals;
using admin::trace_followers;

namespace {

// A client's end of a Server-Sent Events stream.
class recorded_stream : public http::response_stream {
 public:
  bool write(std::string bytes) override {
    std::lock_guard lock(mutex_);
    if (closed_) return false;
    text_ += bytes;
    changed_.notify_all();
    return true;
  }
  bool closed() const override {
    std::lock_guard lock(mutex_);
    return closed_;
  }
  void close() override {
    std::lock_guard lock(mutex_);
    closed_ = true;
    changed_.notify_all();
  }
  void hang_up() { close(); }
  // Waits (up to a minute, as a safety net) until the text contains `what`.
  bool wait_for(const std::string& what) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 60s, [&] { return text_.find(what) != std::string::npos; });
  }
  bool wait_closed() {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, 60s, [&] { return closed_; });
  }
  std::string text() const {
    std::lock_guard lock(mutex_);
    return text_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::string text_;
  bool closed_ = false;
};

// The store's trace as the followers query it: events after a cursor.
struct fake_trace {
  std::mutex mutex;
  std::vector<std::string> events;  // cursor i+1 is events[i]
  int queries = 0;

  void append(const std::string& key) {
    std::lock_guard lock(mutex);
    events.push_back(R"({"key":")" + key + R"(","cursor":")" + std::to_string(events.size() + 1) + R"("})");
  }
  int query_count() {
    std::lock_guard lock(mutex);
    return queries;
  }
  // Waits (up to a minute, as a safety net) until the store was asked n times.
  bool wait_queries(int n) {
    std::unique_lock lock(mutex);
    return queried.wait_for(lock, 60s, [&] { return queries >= n; });
  }
  std::condition_variable queried;
  trace_followers::query_fn fn() {
    return [this](const std::string& project, const trace_query& q) -> result<std::vector<std::string>> {
      std::lock_guard lock(mutex);
      ++queries;
      queried.notify_all();
      if (project != "p") return fail("no project named \"" + project + "\"");
      std::size_t from = q.after.empty() ? 0 : std::stoul(q.after);
      return std::vector<std::string>(events.begin() + static_cast<std::ptrdiff_t>(std::min(from, events.size())),
                                      events.end());
    };
  }
};

std::function<std::shared_ptr<http::response_stream>()> opens(std::shared_ptr<recorded_stream> s) {
  return [s] { return s; };
}

}  // namespace

TEST_CASE("a follower gets new trace events when the engine says they are committed") {
  fake_trace trace;
  trace.append("before");
  trace_followers followers(trace.fn(), 4, 1h);
  auto stream = std::make_shared<recorded_stream>();
  trace_query q;
  q.after = "1";
  REQUIRE(followers.add("p", q, opens(stream)));
  trace.append("a");
  trace.append("b");
  followers.notify();
  REQUIRE(stream->wait_for(R"("key":"b")"));
  auto text = stream->text();
  CHECK(text.find("before") == std::string::npos);
  CHECK(text.find("id: 2\ndata: {\"key\":\"a\",\"cursor\":\"2\"}\n\n") != std::string::npos);
  CHECK(text.find("id: 3\ndata: {\"key\":\"b\",\"cursor\":\"3\"}\n\n") != std::string::npos);
}

TEST_CASE("followers do not poll the store: without a notification it is not asked again") {
  fake_trace trace;
  trace_followers followers(trace.fn(), 4, 1h);
  auto stream = std::make_shared<recorded_stream>();
  REQUIRE(followers.add("p", trace_query{}, opens(stream)));
  REQUIRE(trace.wait_queries(1));  // its first look found nothing
  trace.append("first");
  followers.notify();
  REQUIRE(stream->wait_for("first"));
  const int asked = trace.query_count();
  trace.append("unannounced");
  std::this_thread::sleep_for(700ms);  // a polling follower (every 250 ms) would have asked meanwhile
  CHECK(trace.query_count() == asked);
  CHECK(stream->text().find("unannounced") == std::string::npos);
  followers.notify();
  CHECK(stream->wait_for("unannounced"));
}

TEST_CASE("followers beyond the cap are refused before their stream starts, and a gone one frees its slot") {
  fake_trace trace;
  trace_followers followers(trace.fn(), 2, 1h);
  auto a = std::make_shared<recorded_stream>(), b = std::make_shared<recorded_stream>();
  REQUIRE(followers.add("p", trace_query{}, opens(a)));
  REQUIRE(followers.add("p", trace_query{}, opens(b)));
  bool opened = false;
  CHECK_FALSE(followers.add("p", trace_query{}, [&] {
    opened = true;
    return std::make_shared<recorded_stream>();
  }));
  CHECK_FALSE(opened);
  a->hang_up();
  CHECK(followers.add("p", trace_query{}, opens(std::make_shared<recorded_stream>())));
  CHECK(followers.size() == 2);
}

TEST_CASE("a quiet follower gets a comment line, and stop() closes every stream") {
  fake_trace trace;
  trace_followers followers(trace.fn(), 4, 50ms);
  auto stream = std::make_shared<recorded_stream>();
  REQUIRE(followers.add("p", trace_query{}, opens(stream)));
  CHECK(stream->wait_for(": still here\n\n"));
  followers.stop();
  CHECK(stream->closed());
  CHECK_FALSE(followers.add("p", trace_query{}, opens(std::make_shared<recorded_stream>())));
}

TEST_CASE("a follower whose project is gone is closed") {
  fake_trace trace;
  trace_followers followers(trace.fn(), 4, 1h);
  auto stream = std::make_shared<recorded_stream>();
  REQUIRE(followers.add("gone", trace_query{}, opens(stream)));
  CHECK(stream->wait_closed());
}
