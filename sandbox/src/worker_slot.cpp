#include "worker_slot.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "wire_codec.hpp"

namespace flowstate::sandbox::detail {
namespace {
constexpr size_t max_frame_bytes = size_t{512} << 20;
constexpr size_t read_chunk = 256 * 1024;
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
  in_start_ = 0;
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
    if (in_start_ == in_.size()) {
      in_.clear();
      in_start_ = 0;
    } else if (in_start_ > (size_t{1} << 20)) {
      in_.erase(0, in_start_);
      in_start_ = 0;
    }
    size_t old_size = in_.size();
    in_.resize(old_size + read_chunk);
    ssize_t n = ::recv(process_.socket, in_.data() + old_size, read_chunk, 0);
    in_.resize(old_size + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
    if (n <= 0) return false;
    while (in_.size() - in_start_ >= 4) {
      uint32_t length;
      std::memcpy(&length, in_.data() + in_start_, 4);
      if (length > max_frame_bytes) return false;
      if (in_.size() - in_start_ < 4 + size_t{length}) break;
      const char* body = in_.data() + in_start_ + 4;
      in_start_ += 4 + length;
      if (!on_frame(body, length)) return false;
      if (!alive()) return true;  // the callback killed us
    }
    if (static_cast<size_t>(n) < read_chunk) return true;
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
