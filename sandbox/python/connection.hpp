#pragma once
// The worker's end of the protocol (sandbox/proto/worker.proto): 4-byte
// little-endian length, then one ToWorker or FromWorker message. Replies are
// coalesced while more calls are waiting, and written when none is.
#include <chrono>
#include <string>

#include "worker.pb.h"

namespace flowstate::pyworker {

class connection {
 public:
  explicit connection(int fd) : fd_(fd) {}

  // The next ToWorker frame, flushing replies before blocking; false at EOF
  // or on a malformed frame.
  bool next(worker::ToWorker* message);
  // True when another frame is already readable: replies may wait for it.
  bool input_pending() const;

  worker::FromWorker& out();
  void flush_if_stale();
  // Writes what is coalesced; exits the process when the host is gone.
  void flush();

 private:
  bool frame_buffered() const;
  bool read_more();

  int fd_;
  std::string buffer_;
  size_t start_ = 0;
  worker::FromWorker out_;
  std::chrono::steady_clock::time_point oldest_;
};

}  // namespace flowstate::pyworker
