// The dispatcher of a worker_client: one I/O thread owns a small pool of
// worker processes. Callers on any thread append to one pending list; the
// I/O thread takes whatever is pending when it is free (no timers), routes
// each call to a worker that is not busy, and delivers each reply as it comes.
#include "flowstate/sandbox/worker_client.hpp"
#include "flowstate/runtime/thread_name.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "wire_codec.hpp"
#include "worker.pb.h"
#include "worker_slot.hpp"

namespace flowstate::sandbox {
namespace {

namespace wire = flowstate::worker;
using detail::clock_type;
using detail::load_callback;
using detail::worker_slot;
using call_callback = std::function<void(call_result&&)>;

// What callers hand to the I/O thread, in the order they did it.
struct pending_op {
  enum kind_type { load, call, unload } kind = call;
  uint64_t id = 0;  // call id for calls, function id otherwise
  uint64_t function_id = 0;
  uint64_t module_set = 0;  // of a load: the set the function imports from
  uint32_t timeout_ms = 0;
  std::string entry;  // the encoded ToWorker entry
  call_callback call_done;
  load_callback load_done;
};

struct call_record {
  std::string entry;
  call_callback done;
  uint64_t function_id = 0;
  uint32_t timeout_ms = 0;
  int crashes = 0;  // worker deaths while this call was running
  int slot = -1;    // the worker it was last sent to; -1 while waiting
};

call_result failed_result(call_status status, std::string message) {
  call_result result;
  result.status = status;
  result.error_message = std::move(message);
  return result;
}

}  // namespace

class worker_client::impl {
 public:
  explicit impl(worker_options options) : options_(std::move(options)) {
    options_.max_workers = std::max<uint32_t>(1, options_.max_workers);
    options_.max_calls_per_worker = std::max<uint32_t>(1, options_.max_calls_per_worker);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = 0;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event);
  }

  ~impl() {
    stop();
    ::close(wake_fd_);
    ::close(epoll_fd_);
  }

  // Starts the I/O thread, which spawns the first worker (a worker dies with
  // the thread that forked it, see spawn_worker).
  status start() {
    std::promise<std::string> started;
    auto result = started.get_future();
    thread_ = std::thread([this, &started] {
      name_this_thread("fs-worker-io");
      run(&started);
    });
    std::string error = result.get();
    if (!error.empty()) {
      stop();
      return fail(error);
    }
    return status::success();
  }

  void enqueue(pending_op&& op) {
    bool notify = false;
    {
      std::lock_guard lock(mutex_);
      if (!stopping_) {
        pending_.push_back(std::move(op));
        notify = !wake_signalled_;
        wake_signalled_ = true;
        if (notify) signal();
        return;
      }
    }
    if (op.call_done) op.call_done(failed_result(call_status::worker_crashed, "the worker client stopped"));
    if (op.load_done) op.load_done(false, "the worker client stopped");
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
  pid_t pid() const { return primary_pid_.load(); }
  std::vector<pid_t> pids() const {
    std::lock_guard lock(pids_mutex_);
    return pids_;
  }

 private:
  void signal() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
  }

  void run(std::promise<std::string>* started) {
    slots_.push_back(std::make_unique<worker_slot>(0));
    if (std::string error = spawn(*slots_[0]); !error.empty()) {
      started->set_value(error);
      return;
    }
    started->set_value({});
    epoll_event events[8];
    while (true) {
      int timeout = any_in_flight() ? static_cast<int>(std::max<uint32_t>(1, options_.busy_after_ms)) : -1;
      int n = ::epoll_wait(epoll_fd_, events, 8, timeout);
      if (n < 0 && errno != EINTR) break;
      now_ = clock_type::now();
      for (int i = 0; i < n; ++i) {
        if (events[i].data.u64 == 0) {
          uint64_t count;
          [[maybe_unused]] auto r = ::read(wake_fd_, &count, sizeof count);
          continue;
        }
        worker_slot& slot = *slots_[events[i].data.u64 - 1];
        if (!slot.alive()) continue;
        if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          if (!slot.read([&](const char* body, size_t size) { return deliver(slot, body, size); })) {
            died(slot);
            continue;
          }
        }
        if (events[i].events & EPOLLOUT) {
          if (!slot.write_pending()) died(slot);
        }
      }
      {
        std::lock_guard lock(mutex_);
        if (stopping_) break;
      }
      take_pending();
      check_busy();
      route_waiting();
      flush_all();
    }
    shut_down();
  }

  bool any_in_flight() const {
    if (!waiting_.empty()) return true;
    for (auto& slot : slots_)
      if (!slot->in_flight.empty()) return true;
    return false;
  }

  // Busy: its running call has run longer than busy_after_ms, so what is
  // queued behind it would wait, or it has as many calls as it may have.
  bool busy(const worker_slot& slot) const {
    if (!slot.alive()) return true;
    if (slot.in_flight.size() >= options_.max_calls_per_worker) return true;
    return !slot.in_flight.empty() && now_ - slot.head_since > std::chrono::milliseconds(options_.busy_after_ms);
  }

  // A worker for the next call: the first one that is not busy (so batches
  // stay large), else a dead or new one while the pool has room.
  worker_slot* pick_slot() {
    for (auto& slot : slots_)
      if (!busy(*slot)) return slot.get();
    for (auto& slot : slots_)
      if (!slot->alive() && spawn(*slot).empty()) return slot.get();
    if (slots_.size() < options_.max_workers) {
      slots_.push_back(std::make_unique<worker_slot>(static_cast<int>(slots_.size())));
      if (spawn(*slots_.back()).empty()) return slots_.back().get();
    }
    return nullptr;
  }

  bool can_pick_other_than(const worker_slot& stuck) const {
    for (auto& slot : slots_)
      if (slot.get() != &stuck && (!slot->alive() || !busy(*slot))) return true;
    return slots_.size() < options_.max_workers;
  }

  void take_pending() {
    std::vector<pending_op> ops;
    {
      std::lock_guard lock(mutex_);
      ops.swap(pending_);
      wake_signalled_ = false;
    }
    for (auto& op : ops) {
      switch (op.kind) {
        case pending_op::load:
          load(op);
          break;
        case pending_op::unload:
          unload(op.id);
          break;
        case pending_op::call: {
          auto [it, inserted] = calls_.try_emplace(op.id);
          call_record& record = it->second;
          record.entry = std::move(op.entry);
          record.done = std::move(op.call_done);
          record.function_id = op.function_id;
          record.timeout_ms = op.timeout_ms;
          // Calls keep their order behind those already waiting.
          if (!waiting_.empty() || !route(op.id, record)) waiting_.push_back(op.id);
          break;
        }
      }
    }
  }

  // Compiles in one worker, which reports the result; the others get
  // the new source before their next call of it.
  void load(pending_op& op) {
    functions_[op.id] = std::move(op.entry);
    if (op.module_set)
      module_set_of_[op.id] = op.module_set;
    else
      module_set_of_.erase(op.id);
    for (auto& slot : slots_) slot->loaded.erase(op.id);
    // A worker that is not stuck in a long call answers soonest.
    worker_slot* target = pick_slot();
    if (!target) target = slots_[0].get();
    worker_slot& first = *target;
    if (!first.alive()) {
      if (std::string error = spawn(first); !error.empty()) {
        if (op.load_done) op.load_done(false, "no worker: " + error);
        return;
      }
    }
    ensure_loaded(first, op.id, true);
    first.load_waiters[op.id].push_back(std::move(op.load_done));
  }

  // Sends `id`'s load entry to `slot` unless it has it (always when `again`:
  // each entry sent is answered once), its module set's entry first when the
  // slot has not got that. False when the pool has no such id.
  bool ensure_loaded(worker_slot& slot, uint64_t id, bool again = false) {
    if (!again && slot.loaded.count(id)) return true;
    auto function = functions_.find(id);
    if (function == functions_.end()) return false;
    if (auto set = module_set_of_.find(id); set != module_set_of_.end()) ensure_loaded(slot, set->second);
    slot.add_entry(0, function->second);
    slot.loaded.insert(id);
    return true;
  }

  void unload(uint64_t function_id) {
    functions_.erase(function_id);
    module_set_of_.erase(function_id);
    for (auto& slot : slots_)
      if (slot->alive() && slot->loaded.erase(function_id))
        slot->add_entry(2, detail::encode_unload_entry(function_id));
  }

  bool route(uint64_t call_id, call_record& record) {
    worker_slot* slot = pick_slot();
    if (!slot) return false;
    send(*slot, call_id, record);
    return true;
  }

  void send(worker_slot& slot, uint64_t call_id, call_record& record) {
    ensure_loaded(slot, record.function_id);
    slot.add_entry(1, record.entry);
    if (slot.in_flight.empty()) slot.head_since = now_;
    slot.in_flight.push_back(call_id);
    record.slot = slot.index();
  }

  void route_waiting() {
    while (!waiting_.empty()) {
      auto found = calls_.find(waiting_.front());
      if (found == calls_.end()) {
        waiting_.pop_front();
        continue;
      }
      if (!route(found->first, found->second)) return;
      waiting_.pop_front();
    }
  }

  // Moves the calls queued behind a long-running call to other workers, so
  // that one key's endless loop does not hold other keys until its time
  // limit. The worker still runs them when it gets there; the first reply
  // wins and the other is dropped (functions are pure, so both agree).
  void check_busy() {
    for (size_t i = 0; i < slots_.size(); ++i) {
      worker_slot& slot = *slots_[i];
      if (!slot.alive() || slot.in_flight.empty()) continue;
      auto running_for = now_ - slot.head_since;
      call_record* head = record_of(slot.in_flight.front());
      uint32_t limit_ms = head && head->timeout_ms ? head->timeout_ms : options_.default_timeout_ms;
      uint64_t wall_ms =
          limit_ms == options_.default_timeout_ms && options_.wall_ms ? options_.wall_ms : 2 * uint64_t{limit_ms};
      // A backstop for a worker that neither answers nor dies (its own
      // watchdog normally ends a long call): treat it as crashed.
      if (running_for > std::chrono::milliseconds(wall_ms + 2000)) {
        died(slot);
        continue;
      }
      if (slot.in_flight.size() < 2 || running_for <= std::chrono::milliseconds(options_.busy_after_ms)) continue;
      if (!can_pick_other_than(slot)) continue;
      std::vector<uint64_t> queued(slot.in_flight.begin() + 1, slot.in_flight.end());
      slot.in_flight.resize(1);
      for (auto it = queued.rbegin(); it != queued.rend(); ++it) {
        if (auto* record = record_of(*it)) record->slot = -1;
        waiting_.push_front(*it);
      }
    }
  }

  call_record* record_of(uint64_t call_id) {
    auto found = calls_.find(call_id);
    return found == calls_.end() ? nullptr : &found->second;
  }

  void flush_all() {
    for (auto& slot : slots_) {
      if (!slot->alive()) continue;
      if (!slot->flush()) {
        died(*slot);
        continue;
      }
      watch(*slot, slot->wants_write());
    }
  }

  void watch(worker_slot& slot, bool writable) {
    auto& watching = watching_out_[slot.index()];
    if (watching == writable) return;
    watching = writable;
    epoll_event event{};
    event.events = writable ? (EPOLLIN | EPOLLOUT) : EPOLLIN;
    event.data.u64 = static_cast<uint64_t>(slot.index()) + 1;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, slot.socket(), &event);
  }

  // Delivers one frame from a worker; false when it is malformed.
  bool deliver(worker_slot& slot, const char* body, size_t size) {
    slot.deaths_without_reply = 0;
    reply_frame_.Clear();
    if (!reply_frame_.ParseFromArray(body, static_cast<int>(size))) return false;
    for (auto& load : *reply_frame_.mutable_loads()) {
      auto waiters = slot.load_waiters.find(load.function_id());
      if (waiters == slot.load_waiters.end() || waiters->second.empty()) continue;
      auto done = std::move(waiters->second.front());
      waiters->second.pop_front();
      if (waiters->second.empty()) slot.load_waiters.erase(waiters);
      if (done) done(load.ok(), std::move(*load.mutable_error_message()));
    }
    for (auto& reply : *reply_frame_.mutable_replies()) {
      const uint64_t call_id = reply.call_id();
      if (!slot.answered(call_id, now_)) continue;  // moved to another worker
      auto found = calls_.find(call_id);
      if (found == calls_.end() || found->second.slot != slot.index()) continue;
      auto done = std::move(found->second.done);
      calls_.erase(found);
      if (done) done(detail::decode_call_reply(reply));
    }
    return true;
  }

  // A worker stopped answering: the call it was running counts a crash
  // (twice and it fails), the others run again elsewhere; loads it had not
  // answered are sent again to its replacement.
  void died(worker_slot& slot) {
    std::deque<uint64_t> in_flight = std::move(slot.in_flight);
    auto load_waiters = std::move(slot.load_waiters);
    slot.load_waiters.clear();
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, slot.socket(), nullptr);
    slot.kill();
    watching_out_[slot.index()] = false;
    if (slot.index() == 0) primary_pid_ = -1;
    publish_pids();
    for (auto it = in_flight.rbegin(); it != in_flight.rend(); ++it) {
      auto found = calls_.find(*it);
      if (found == calls_.end() || found->second.slot != slot.index()) continue;
      found->second.slot = -1;
      if (it + 1 == in_flight.rend() && ++found->second.crashes >= 2) {
        auto done = std::move(found->second.done);
        calls_.erase(found);
        if (done) done(failed_result(call_status::worker_crashed, "the call crashed its worker twice"));
        continue;
      }
      waiting_.push_front(*it);
    }
    if (slot.index() != 0 && load_waiters.empty()) return;  // respawned when needed
    // A worker that keeps dying before it answers anything (a broken binary
    // or sandbox) is not restarted in a loop: what waits for it fails.
    std::string error;
    if (++slot.deaths_without_reply >= 3) error = "it exited 3 times in a row without answering (see stderr)";
    if (error.empty()) error = spawn(slot);
    if (!error.empty()) {
      for (auto& [id, queue] : load_waiters)
        for (auto& done : queue)
          if (done) done(false, "the worker died and could not be restarted: " + error);
      if (slot.index() == 0) fail_waiting("the worker died and could not be restarted: " + error);
      return;
    }
    for (auto& [id, queue] : load_waiters) {
      for (auto& done : queue) {
        if (!ensure_loaded(slot, id, true)) {
          if (done) done(false, "the function was unloaded");
          continue;
        }
        slot.load_waiters[id].push_back(std::move(done));
      }
    }
  }

  // Starts (or restarts) a slot's process; empty on success.
  std::string spawn(worker_slot& slot) {
    std::vector<std::string> args{"--timeout-ms", std::to_string(options_.default_timeout_ms)};
    args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
    if (std::string error = slot.spawn(options_.worker_binary, args, options_.isolation); !error.empty()) return error;
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u64 = static_cast<uint64_t>(slot.index()) + 1;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, slot.socket(), &event);
    watching_out_[slot.index()] = false;
    slot.head_since = now_;
    if (slot.index() == 0) primary_pid_ = slot.pid();
    publish_pids();
    return {};
  }

  void publish_pids() {
    std::vector<pid_t> pids;
    for (auto& slot : slots_)
      if (slot->alive()) pids.push_back(slot->pid());
    std::lock_guard lock(pids_mutex_);
    pids_ = std::move(pids);
  }

  void fail_waiting(const std::string& why) {
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (uint64_t id : waiting) {
      auto found = calls_.find(id);
      if (found == calls_.end()) continue;
      auto done = std::move(found->second.done);
      calls_.erase(found);
      if (done) done(failed_result(call_status::worker_crashed, why));
    }
  }

  void shut_down() {
    for (auto& slot : slots_) slot->kill();
    primary_pid_ = -1;
    publish_pids();
    std::vector<pending_op> ops;
    {
      std::lock_guard lock(mutex_);
      ops.swap(pending_);
    }
    const std::string why = "the worker client stopped";
    auto calls = std::move(calls_);
    calls_.clear();
    for (auto& [id, call] : calls)
      if (call.done) call.done(failed_result(call_status::worker_crashed, why));
    for (auto& slot : slots_) {
      auto waiters = std::move(slot->load_waiters);
      slot->load_waiters.clear();
      for (auto& [id, queue] : waiters)
        for (auto& done : queue)
          if (done) done(false, why);
    }
    for (auto& op : ops) {
      if (op.call_done) op.call_done(failed_result(call_status::worker_crashed, why));
      if (op.load_done) op.load_done(false, why);
    }
  }

  worker_options options_;

  // Shared with callers.
  std::mutex mutex_;
  std::vector<pending_op> pending_;
  bool wake_signalled_ = false;
  bool stopping_ = false;
  std::atomic<uint64_t> call_ids_{1};
  std::atomic<pid_t> primary_pid_{-1};
  mutable std::mutex pids_mutex_;
  std::vector<pid_t> pids_;
  int wake_fd_ = -1;
  int epoll_fd_ = -1;
  std::thread thread_;

  // The I/O thread's own.
  clock_type::time_point now_ = clock_type::now();
  std::vector<std::unique_ptr<worker_slot>> slots_;
  std::map<int, bool> watching_out_;
  std::unordered_map<uint64_t, call_record> calls_;
  std::deque<uint64_t> waiting_;                // calls no worker could take yet, oldest first
  std::map<uint64_t, std::string> functions_;   // the encoded load entry of each (module sets too)
  std::map<uint64_t, uint64_t> module_set_of_;  // function id -> the module set it imports from
  wire::FromWorker reply_frame_;
};

result<std::unique_ptr<worker_client>> worker_client::start(worker_options options) {
  auto state = std::make_unique<impl>(std::move(options));
  if (auto started = state->start(); !started) return fail(started.error());
  return std::unique_ptr<worker_client>(new worker_client(std::move(state)));
}

worker_client::worker_client(std::unique_ptr<impl> state) : impl_(std::move(state)) {}

worker_client::~worker_client() { stop(); }

void worker_client::load(uint64_t function_id, std::string name, std::string filename, std::string source,
                         std::function<void(bool ok, std::string error)> done, uint64_t module_set) {
  pending_op op;
  op.kind = pending_op::load;
  op.id = function_id;
  op.module_set = module_set;
  op.entry = detail::encode_load_entry(function_id, name, filename, source, module_set);
  op.load_done = std::move(done);
  impl_->enqueue(std::move(op));
}

void worker_client::load_modules(uint64_t set_id, const std::vector<python_module>& modules,
                                 std::function<void(bool ok, std::string error)> done) {
  pending_op op;
  op.kind = pending_op::load;
  op.id = set_id;
  op.entry = detail::encode_module_set_entry(set_id, modules);
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
  op.id = impl_->next_call_id();
  op.function_id = request.function_id;
  op.timeout_ms = request.timeout_ms;
  op.entry = detail::encode_call_entry(op.id, request);
  op.call_done = std::move(done);
  impl_->enqueue(std::move(op));
}

pid_t worker_client::worker_pid() const { return impl_->pid(); }

std::vector<pid_t> worker_client::worker_pids() const { return impl_->pids(); }

void worker_client::stop() {
  if (impl_) impl_->stop();
}

}  // namespace flowstate::sandbox
