#pragma once
// The receiving side of the framed protocol, shared by the worker and the
// client: a buffer that grows without zero-filling (a std::string resize
// clears every byte it adds, which showed up as memset in profiles) and
// hands out complete frames.
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

namespace flowstate::worker {

class frame_buffer {
 public:
  static constexpr size_t read_chunk = 256 * 1024;

  // Reads once from `fd`; the recv result (0 at EOF, -1 with errno).
  ssize_t read_from(int fd) {
    compact();
    reserve(end_ + read_chunk);
    ssize_t n;
    do n = ::recv(fd, data_.get() + end_, read_chunk, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) end_ += static_cast<size_t>(n);
    return n;
  }

  // The next complete frame's body, or false. `too_big` is set for a frame
  // over `max_bytes`.
  bool next(const char** body, uint32_t* size, size_t max_bytes, bool* too_big) {
    *too_big = false;
    if (end_ - start_ < 4) return false;
    uint32_t length;
    std::memcpy(&length, data_.get() + start_, 4);  // little-endian hosts only
    if (length > max_bytes) {
      *too_big = true;
      return false;
    }
    if (end_ - start_ < 4 + size_t{length}) return false;
    *body = data_.get() + start_ + 4;
    *size = length;
    start_ += 4 + length;
    return true;
  }

  bool frame_ready() const {
    if (end_ - start_ < 4) return false;
    uint32_t length;
    std::memcpy(&length, data_.get() + start_, 4);
    return end_ - start_ >= 4 + size_t{length};
  }

  void clear() { start_ = end_ = 0; }

 private:
  void compact() {
    if (start_ == end_) {
      start_ = end_ = 0;
    } else if (start_ > capacity_ / 2) {
      std::memmove(data_.get(), data_.get() + start_, end_ - start_);
      end_ -= start_;
      start_ = 0;
    }
  }

  void reserve(size_t wanted) {
    if (wanted <= capacity_) return;
    size_t capacity = std::max(wanted, capacity_ * 2);
    std::unique_ptr<char[]> data(new char[capacity]);
    if (end_ > start_) std::memcpy(data.get(), data_.get() + start_, end_ - start_);
    end_ -= start_;
    start_ = 0;
    data_ = std::move(data);
    capacity_ = capacity;
  }

  std::unique_ptr<char[]> data_;
  size_t capacity_ = 0;
  size_t start_ = 0;
  size_t end_ = 0;
};

}  // namespace flowstate::worker
