#pragma once
// The worker's end of the protocol (sandbox/proto/worker.proto): 4-byte
// little-endian length, then one ToWorker or FromWorker message. Replies are
// coalesced while more calls are waiting, and written when none is. They
// stay messages until written: the watchdog may complete an abandoned call's
// reply in place (py_host::abandon).
#include <chrono>

#include "frame_reader.hpp"
#include "worker.pb.h"

namespace flowstate::pyworker {

class connection {
 public:
  explicit connection(int fd) : fd_(fd), reader_(fd, "flowstate-pyworker") {}

  // The next ToWorker frame, flushing replies before blocking; false at EOF
  // or on a malformed frame.
  bool next(worker::ToWorker* message) {
    return reader_.next(message, [this] { flush(); });
  }
  // True when another frame is already readable: replies may wait for it.
  bool input_pending() const { return reader_.input_pending(); }

  worker::FromWorker& out();
  void flush_if_stale();
  // Writes what is coalesced; exits the process when the host is gone.
  void flush();

 private:
  int fd_;
  worker::frame_reader reader_;
  worker::FromWorker out_;
  std::chrono::steady_clock::time_point oldest_;
};

}  // namespace flowstate::pyworker
