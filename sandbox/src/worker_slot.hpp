#pragma once
// One worker process of a worker_client's pool, as the I/O thread sees it:
// its socket buffers, the calls it was sent and not yet answered (in the
// order it runs them), and the functions it has been sent.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "frame_buffer.hpp"
#include "worker_process.hpp"

namespace flowstate::sandbox::detail {

using clock_type = std::chrono::steady_clock;
using load_callback = std::function<void(bool, std::string)>;

class worker_slot {
 public:
  explicit worker_slot(int index) : index_(index) {}

  int index() const { return index_; }
  bool alive() const { return process_.socket >= 0; }
  pid_t pid() const { return process_.pid; }
  int socket() const { return process_.socket; }

  // Starts the process; empty on success. Must run on the I/O thread.
  std::string spawn(const std::string& binary, const std::vector<std::string>& args,
                    const isolation_options& isolation = {});
  // Kills the process and forgets everything it was sent.
  void kill();

  // Adds one encoded ToWorker entry to the frame being built. The worker runs
  // a frame's loads, then its calls, then its unloads (phase 0, 1, 2), so a
  // new frame starts whenever that order would differ from ours.
  void add_entry(int phase, const std::string& entry);
  // Closes the frame being built and writes what the socket takes; false
  // when the worker is gone.
  [[nodiscard]] bool flush();
  // Writes what an earlier flush left; false when the worker is gone.
  [[nodiscard]] bool write_pending();
  bool wants_write() const { return out_start_ < out_.size(); }

  // Reads what arrived and hands every complete frame's body to `on_frame`;
  // false at EOF, on a read error or a malformed frame.
  [[nodiscard]] bool read(const std::function<bool(const char*, size_t)>& on_frame);

  // Calls sent and not answered, oldest first: the front one is running.
  std::deque<uint64_t> in_flight;
  // When the front call started running at the latest.
  clock_type::time_point head_since;
  std::unordered_set<uint64_t> loaded;
  std::unordered_map<uint64_t, std::deque<load_callback>> load_waiters;
  int deaths_without_reply = 0;  // reset by every frame it sends

  // Removes a call from in_flight; false when it was not there.
  bool answered(uint64_t call_id, clock_type::time_point now);

 private:
  int index_;
  spawned_worker process_;
  worker::frame_buffer in_;
  std::string out_;
  size_t out_start_ = 0;
  size_t frame_at_ = 0;
  bool frame_open_ = false;
  int phase_ = 0;
};

}  // namespace flowstate::sandbox::detail
