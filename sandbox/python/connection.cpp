#include "connection.hpp"

#include <unistd.h>

#include <cstring>

namespace flowstate::pyworker {

worker::FromWorker& connection::out() {
  if (out_.replies_size() == 0 && out_.loads_size() == 0) oldest_ = std::chrono::steady_clock::now();
  return out_;
}

void connection::flush_if_stale() {
  if ((out_.replies_size() || out_.loads_size()) &&
      std::chrono::steady_clock::now() - oldest_ > std::chrono::microseconds(200))
    flush();
}

void connection::flush() {
  if (out_.replies_size() == 0 && out_.loads_size() == 0) return;
  size_t size = out_.ByteSizeLong();
  std::string frame(4 + size, '\0');
  uint32_t length = static_cast<uint32_t>(size);
  std::memcpy(frame.data(), &length, 4);
  out_.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(frame.data() + 4));
  out_.Clear();
  if (!worker::write_all(fd_, frame.data(), frame.size())) ::_exit(0);  // the host is gone
}

}  // namespace flowstate::pyworker
