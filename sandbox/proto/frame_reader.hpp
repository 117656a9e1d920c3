#pragma once
// The worker's reading side of the protocol, shared by flowstate-worker and
// flowstate-pyworker: frames in (4-byte little-endian length, then one
// message), and whole writes out.
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>

#include "frame_buffer.hpp"

namespace flowstate::worker {

inline constexpr size_t max_frame_bytes = size_t{512} << 20;

// Writes all of it; false when the peer is gone.
inline bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

class frame_reader {
 public:
  // `program` names the worker in its messages on stderr.
  frame_reader(int fd, const char* program) : fd_(fd), program_(program) {}

  // The next frame parsed into `message`. When no frame is buffered and
  // nothing is readable, `before_blocking` runs first (the worker sends the
  // replies it coalesced). False at EOF or on a malformed frame.
  template <class Message, class Hook>
  bool next(Message* message, Hook&& before_blocking) {
    for (;;) {
      const char* body;
      uint32_t length;
      bool too_big;
      if (in_.next(&body, &length, max_frame_bytes, &too_big)) {
        if (message->ParseFromArray(body, static_cast<int>(length))) return true;
        std::fprintf(stderr, "%s: a frame did not parse\n", program_);
        return false;
      }
      if (too_big) {
        std::fprintf(stderr, "%s: a frame is over the limit of %zu bytes\n", program_, max_frame_bytes);
        return false;
      }
      if (!input_pending()) before_blocking();
      if (in_.read_from(fd_) <= 0) return false;
    }
  }

  // True when another frame is buffered or readable: replies may wait for it.
  bool input_pending() const {
    if (in_.frame_ready()) return true;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

 private:
  int fd_;
  const char* program_;
  frame_buffer in_;
};

}  // namespace flowstate::worker
