#include "worker_slot.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "wire_codec.hpp"

namespace flowstate::sandbox::detail {
namespace {
constexpr size_t max_frame_bytes = size_t{512} << 20;
}  // namespace

std::string worker_slot::spawn(const std::string& binary, const std::vector<std::string>& args,
                               const isolation_options& isolation) {
  kill();
  auto spawned = spawn_worker(binary, args, isolation);
  if (!spawned) return spawned.error();
  process_ = *spawned;
  return {};
}

void worker_slot::kill() {
  kill_worker(process_);
  in_.clear();
  out_.clear();
  out_start_ = 0;
  frame_open_ = false;
  phase_ = 0;
  in_flight.clear();
  loaded.clear();
}

void worker_slot::add_entry(int phase, const std::string& entry) {
  if (frame_open_ && phase < phase_) {
    close_frame(out_, frame_at_);
    frame_open_ = false;
  }
  if (!frame_open_) {
    frame_at_ = open_frame(out_);
    frame_open_ = true;
  }
  phase_ = phase;
  out_ += entry;
}

bool worker_slot::flush() {
  if (frame_open_) {
    close_frame(out_, frame_at_);
    frame_open_ = false;
    phase_ = 0;
  }
  return write_pending();
}

bool worker_slot::write_pending() {
  while (out_start_ < out_.size()) {
    ssize_t n = ::send(process_.socket, out_.data() + out_start_, out_.size() - out_start_, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n < 0) return false;
    out_start_ += static_cast<size_t>(n);
  }
  out_.clear();
  out_start_ = 0;
  return true;
}

bool worker_slot::read(const std::function<bool(const char*, size_t)>& on_frame) {
  for (;;) {
    ssize_t n = in_.read_from(process_.socket);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) return false;
    const char* body;
    uint32_t length;
    bool too_big;
    while (in_.next(&body, &length, max_frame_bytes, &too_big)) {
      if (!on_frame(body, length)) return false;
      if (!alive()) return true;  // the callback killed us
    }
    if (too_big) return false;
    if (static_cast<size_t>(n) < worker::frame_buffer::read_chunk) return true;
  }
}

bool worker_slot::answered(uint64_t call_id, clock_type::time_point now) {
  if (!in_flight.empty() && in_flight.front() == call_id) {
    in_flight.pop_front();
    head_since = now;
    return true;
  }
  auto found = std::find(in_flight.begin(), in_flight.end(), call_id);
  if (found == in_flight.end()) return false;
  in_flight.erase(found);
  return true;
}

}  // namespace flowstate::sandbox::detail
