#include "flowstate/sandbox/worker_client.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "worker.pb.h"
#include "worker_process.hpp"

namespace flowstate::sandbox {
namespace {

namespace wire = flowstate::worker;
using clock_type = std::chrono::steady_clock;
using load_callback = std::function<void(bool, std::string)>;
using call_callback = std::function<void(call_result&&)>;

constexpr size_t max_frame_bytes = size_t{512} << 20;

// What callers hand to the I/O thread, in the order they did it.
struct pending_op {
  enum kind_type { load, call, unload } kind = call;
  uint64_t id = 0;  // function id for load/unload
  wire::LoadFunction load_message;
  load_callback load_done;
  wire::Call call_message;
  call_callback call_done;
};

struct in_flight_call {
  wire::Call message;
  call_callback done;
  int crashes = 0;  // worker deaths while this call was in flight
};

call_result failed_result(call_status status, std::string message) {
  call_result result;
  result.status = status;
  result.error_message = std::move(message);
  return result;
}

call_result to_result(wire::CallReply& reply) {
  call_result result;
  switch (reply.status()) {
    case wire::CallReply::OK: result.status = call_status::ok; break;
    case wire::CallReply::EXCEPTION: result.status = call_status::exception; break;
    case wire::CallReply::TIMEOUT: result.status = call_status::timeout; break;
    case wire::CallReply::RESOURCE_EXHAUSTED: result.status = call_status::resource_exhausted; break;
    case wire::CallReply::NOT_LOADED: result.status = call_status::not_loaded; break;
    default: result.status = call_status::exception; break;
  }
  for (auto& output : *reply.mutable_outputs()) result.outputs.push_back(std::move(output));
  switch (reply.state_change()) {
    case wire::CallReply::SET: result.state = state_change::set; break;
    case wire::CallReply::DELETE: result.state = state_change::erase; break;
    default: result.state = state_change::unchanged; break;
  }
  result.state_json = std::move(*reply.mutable_state_json());
  result.error_message = std::move(*reply.mutable_error_message());
  result.error_details_json = std::move(*reply.mutable_error_details_json());
  for (auto& line : *reply.mutable_logs()) result.logs.push_back(std::move(line));
  return result;
}

void append_frame(std::string& out, const wire::ToWorker& message) {
  size_t size = message.ByteSizeLong();
  size_t at = out.size();
  out.resize(at + 4 + size);
  uint32_t length = static_cast<uint32_t>(size);
  std::memcpy(out.data() + at, &length, 4);  // little-endian hosts only
  message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out.data() + at + 4));
}

}  // namespace

class worker_client::impl {
 public:
  explicit impl(worker_options options) : options_(std::move(options)) {
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = wake_fd_;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event);
  }

  ~impl() {
    stop();
    ::close(wake_fd_);
    ::close(epoll_fd_);
  }

  // Starts the I/O thread, which spawns the first worker (see spawn_worker
  // for why the spawning thread matters).
  status start() {
    std::promise<std::string> started;
    auto result = started.get_future();
    thread_ = std::thread([this, &started] { run(&started); });
    std::string error = result.get();
    if (!error.empty()) {
      stop();
      return fail(error);
    }
    return status::success();
  }

  void enqueue(pending_op op) {
    bool notify = false;
    {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        pending_.push_back(std::move(op));
        notify = !wake_signalled_;
        wake_signalled_ = true;
      }
    }
    if (notify) return signal();
    if (op.kind == pending_op::call && op.call_done)  // only after stop()
      op.call_done(failed_result(call_status::worker_crashed, "the worker client stopped"));
    if (op.kind == pending_op::load && op.load_done) op.load_done(false, "the worker client stopped");
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    signal();
    if (thread_.joinable()) thread_.join();
  }

  uint64_t next_call_id() { return call_ids_.fetch_add(1, std::memory_order_relaxed); }
  pid_t pid() const { return pid_.load(); }

 private:
  void signal() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }

  void run(std::promise<std::string>* started) {
    if (std::string error = respawn(); !error.empty()) {
      started->set_value(error);
      return;
    }
    started->set_value({});
    epoll_event events[4];
    while (true) {
      int timeout = in_flight_.empty() ? -1 : 500;
      int n = ::epoll_wait(epoll_fd_, events, 4, timeout);
      if (n < 0 && errno != EINTR) break;
      for (int i = 0; i < n; ++i) {
        if (events[i].data.fd == wake_fd_) {
          uint64_t count;
          [[maybe_unused]] auto r = ::read(wake_fd_, &count, sizeof count);
        } else if (worker_.socket >= 0) {
          if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) read_replies();
          if (worker_.socket >= 0 && (events[i].events & EPOLLOUT)) write_out();
        }
      }
      {
        std::lock_guard lock(mutex_);
        if (stopping_) break;
      }
      if (out_.size() == out_start_) take_pending();
      check_progress();
    }
    shut_down();
  }

  // Turns everything pending into frames. Within a frame the worker runs
  // loads, then calls, then unloads, so a new frame starts whenever that
  // order would differ from the callers' order.
  void take_pending() {
    std::vector<pending_op> ops;
    {
      std::lock_guard lock(mutex_);
      ops.swap(pending_);
      wake_signalled_ = false;
    }
    if (ops.empty()) return;
    if (worker_.socket < 0) {
      if (std::string error = respawn(); !error.empty()) {
        for (auto& op : ops) {
          if (op.kind == pending_op::call && op.call_done)
            op.call_done(failed_result(call_status::worker_crashed, "no worker: " + error));
          if (op.kind == pending_op::load && op.load_done) op.load_done(false, "no worker: " + error);
        }
        return;
      }
    }
    if (in_flight_.empty()) last_progress_ = clock_type::now();
    wire::ToWorker frame;
    int phase = 0;
    auto start_phase = [&](int op_phase) {
      if (op_phase < phase) {
        append_frame(out_, frame);
        frame.Clear();
      }
      phase = op_phase;
    };
    for (auto& op : ops) {
      switch (op.kind) {
        case pending_op::load:
          start_phase(0);
          functions_[op.id] = op.load_message;
          load_waiters_[op.id].push_back(std::move(op.load_done));
          *frame.add_loads() = std::move(op.load_message);
          break;
        case pending_op::call: {
          start_phase(1);
          *frame.add_calls() = op.call_message;
          uint64_t call_id = op.call_message.call_id();
          in_flight_.emplace(call_id, in_flight_call{std::move(op.call_message), std::move(op.call_done), 0});
          break;
        }
        case pending_op::unload:
          start_phase(2);
          functions_.erase(op.id);
          frame.add_unload(op.id);
          break;
      }
    }
    append_frame(out_, frame);
    write_out();
  }

  void write_out() {
    while (out_start_ < out_.size()) {
      ssize_t n = ::send(worker_.socket, out_.data() + out_start_, out_.size() - out_start_, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        watch(true);
        return;
      }
      if (n < 0) return worker_died();
      out_start_ += static_cast<size_t>(n);
    }
    out_.clear();
    out_start_ = 0;
    watch(false);
  }

  void watch(bool writable) {
    if (writable == watching_out_) return;
    watching_out_ = writable;
    epoll_event event{};
    event.events = writable ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    event.data.fd = worker_.socket;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, worker_.socket, &event);
  }

  void read_replies() {
    for (;;) {
      if (in_.size() - in_start_ < 64 * 1024) {
        if (in_start_ > 0) {
          in_.erase(0, in_start_);
          in_start_ = 0;
        }
      }
      size_t old_size = in_.size();
      in_.resize(old_size + 256 * 1024);
      ssize_t n = ::recv(worker_.socket, in_.data() + old_size, 256 * 1024, 0);
      in_.resize(old_size + (n > 0 ? static_cast<size_t>(n) : 0));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (n <= 0) return worker_died();
      last_progress_ = clock_type::now();
      if (!dispatch_frames()) return worker_died();
    }
  }

  // Delivers every complete frame; false on a malformed one.
  bool dispatch_frames() {
    while (in_.size() - in_start_ >= 4) {
      uint32_t length;
      std::memcpy(&length, in_.data() + in_start_, 4);
      if (length > max_frame_bytes) return false;
      if (in_.size() - in_start_ < 4 + size_t{length}) break;
      wire::FromWorker message;
      if (!message.ParseFromArray(in_.data() + in_start_ + 4, static_cast<int>(length))) return false;
      in_start_ += 4 + length;
      for (auto& load : *message.mutable_loads()) {
        auto waiters = load_waiters_.find(load.function_id());
        if (waiters == load_waiters_.end() || waiters->second.empty()) continue;
        auto done = std::move(waiters->second.front());
        waiters->second.pop_front();
        if (waiters->second.empty()) load_waiters_.erase(waiters);
        if (done) done(load.ok(), std::move(*load.mutable_error_message()));
      }
      for (auto& reply : *message.mutable_replies()) {
        auto found = in_flight_.find(reply.call_id());
        if (found == in_flight_.end()) continue;
        auto done = std::move(found->second.done);
        in_flight_.erase(found);
        if (done) done(to_result(reply));
      }
    }
    return true;
  }

  // The worker stopped answering: replace it, reload every function and
  // re-send the calls it had, except those that were in flight twice.
  void worker_died() {
    detail::kill_worker(worker_);
    pid_ = -1;
    std::vector<uint64_t> resend;
    for (auto it = in_flight_.begin(); it != in_flight_.end();) {
      if (++it->second.crashes >= 2) {
        auto done = std::move(it->second.done);
        it = in_flight_.erase(it);
        if (done) done(failed_result(call_status::worker_crashed, "the call crashed its worker twice"));
      } else {
        resend.push_back(it->first);
        ++it;
      }
    }
    if (std::string error = respawn(); !error.empty()) {
      fail_everything("the worker died and could not be restarted: " + error);
      return;
    }
    wire::ToWorker frame;
    for (auto& [id, load] : functions_) {
      auto waiters = load_waiters_.find(id);
      size_t copies = waiters == load_waiters_.end() ? 1 : std::max<size_t>(1, waiters->second.size());
      for (size_t i = 0; i < copies; ++i) *frame.add_loads() = load;
    }
    std::sort(resend.begin(), resend.end());
    for (uint64_t call_id : resend) *frame.add_calls() = in_flight_[call_id].message;
    last_progress_ = clock_type::now();
    append_frame(out_, frame);
    write_out();
  }

  // Starts a worker; empty on success.
  std::string respawn() {
    std::vector<std::string> args{"--timeout-ms", std::to_string(options_.default_timeout_ms)};
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    auto spawned = detail::spawn_worker(options_.worker_binary, args);
    if (!spawned) return spawned.error();
    worker_ = *spawned;
    pid_ = worker_.pid;
    in_.clear();
    in_start_ = 0;
    out_.clear();
    out_start_ = 0;
    watching_out_ = false;
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = worker_.socket;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, worker_.socket, &event);
    return {};
  }

  // A backstop for a worker that neither answers nor dies (the worker's own
  // watchdog normally ends a long call): treat it as crashed.
  void check_progress() {
    if (in_flight_.empty() || worker_.socket < 0) return;
    uint32_t longest = options_.default_timeout_ms;
    for (auto& [id, call] : in_flight_) longest = std::max(longest, call.message.timeout_ms());
    auto limit = std::chrono::milliseconds(2 * uint64_t{longest} + 2000);
    if (clock_type::now() - last_progress_ > limit) worker_died();
  }

  void fail_everything(const std::string& why) {
    auto calls = std::move(in_flight_);
    in_flight_.clear();
    for (auto& [id, call] : calls)
      if (call.done) call.done(failed_result(call_status::worker_crashed, why));
    auto waiters = std::move(load_waiters_);
    load_waiters_.clear();
    for (auto& [id, queue] : waiters)
      for (auto& done : queue)
        if (done) done(false, why);
  }

  void shut_down() {
    detail::kill_worker(worker_);
    pid_ = -1;
    std::vector<pending_op> ops;
    {
      std::lock_guard lock(mutex_);
      ops.swap(pending_);
    }
    for (auto& op : ops) {
      if (op.kind == pending_op::call) in_flight_.emplace(op.call_message.call_id(), in_flight_call{op.call_message, std::move(op.call_done), 0});
      if (op.kind == pending_op::load) load_waiters_[op.id].push_back(std::move(op.load_done));
    }
    fail_everything("the worker client stopped");
  }

  worker_options options_;

  // Shared with callers.
  std::mutex mutex_;
  std::vector<pending_op> pending_;
  bool wake_signalled_ = false;
  bool stopping_ = false;
  std::atomic<uint64_t> call_ids_{1};
  std::atomic<pid_t> pid_{-1};
  int wake_fd_ = -1;
  int epoll_fd_ = -1;
  std::thread thread_;

  // The I/O thread's own.
  detail::spawned_worker worker_;
  std::string in_;
  size_t in_start_ = 0;
  std::string out_;
  size_t out_start_ = 0;
  bool watching_out_ = false;
  clock_type::time_point last_progress_;
  std::unordered_map<uint64_t, in_flight_call> in_flight_;
  std::map<uint64_t, wire::LoadFunction> functions_;
  std::unordered_map<uint64_t, std::deque<load_callback>> load_waiters_;
};

result<std::unique_ptr<worker_client>> worker_client::start(worker_options options) {
  auto state = std::make_unique<impl>(std::move(options));
  if (auto started = state->start(); !started) return fail(started.error());
  return std::unique_ptr<worker_client>(new worker_client(std::move(state)));
}

worker_client::worker_client(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

worker_client::~worker_client() { stop(); }

void worker_client::load(uint64_t function_id, std::string name, std::string filename, std::string source,
                         std::function<void(bool ok, std::string error)> done) {
  pending_op op;
  op.kind = pending_op::load;
  op.id = function_id;
  op.load_message.set_function_id(function_id);
  op.load_message.set_name(std::move(name));
  op.load_message.set_filename(std::move(filename));
  op.load_message.set_source(std::move(source));
  op.load_done = std::move(done);
  impl_->enqueue(std::move(op));
}

void worker_client::unload(uint64_t function_id) {
  pending_op op;
  op.kind = pending_op::unload;
  op.id = function_id;
  impl_->enqueue(std::move(op));
}

void worker_client::call(call_request request, std::function<void(call_result&&)> done) {
  pending_op op;
  op.kind = pending_op::call;
  wire::Call& call = op.call_message;
  call.set_call_id(impl_->next_call_id());
  call.set_function_id(request.function_id);
  call.set_input_json(std::move(request.input_json));
  if (request.state_json) {
    call.set_has_state(true);
    call.set_state_json(std::move(*request.state_json));
  }
  auto* ctx = call.mutable_ctx();
  ctx->set_key(std::move(request.ctx.key));
  ctx->set_flow(std::move(request.ctx.flow));
  ctx->set_block(std::move(request.ctx.block));
  ctx->set_revision(std::move(request.ctx.revision));
  ctx->set_message_id(std::move(request.ctx.message_id));
  ctx->set_time_ms(request.ctx.time_ms);
  call.set_timeout_ms(request.timeout_ms);
  op.call_done = std::move(done);
  impl_->enqueue(std::move(op));
}

pid_t worker_client::worker_pid() const { return impl_->pid(); }

void worker_client::stop() {
  if (impl_) impl_->stop();
}

}  // namespace flowstate::sandbox
