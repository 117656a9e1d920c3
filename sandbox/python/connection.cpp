#include "connection.hpp"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace flowstate::pyworker {
namespace {

constexpr size_t max_frame_bytes = size_t{512} << 20;

bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

uint32_t read_length(const std::string& buffer, size_t at) {
  uint32_t length;
  std::memcpy(&length, buffer.data() + at, 4);  // little-endian hosts only
  return length;
}

}  // namespace

bool connection::frame_buffered() const {
  return buffer_.size() - start_ >= 4 && buffer_.size() - start_ >= 4 + size_t{read_length(buffer_, start_)};
}

bool connection::input_pending() const {
  if (frame_buffered()) return true;
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

bool connection::next(worker::ToWorker* message) {
  for (;;) {
    if (buffer_.size() - start_ >= 4) {
      uint32_t length = read_length(buffer_, start_);
      if (length > max_frame_bytes) {
        std::fprintf(stderr, "flowstate-pyworker: a frame of %u bytes is over the limit\n", length);
        return false;
      }
      if (buffer_.size() - start_ >= 4 + size_t{length}) {
        bool parsed = message->ParseFromArray(buffer_.data() + start_ + 4, static_cast<int>(length));
        start_ += 4 + length;
        if (!parsed) std::fprintf(stderr, "flowstate-pyworker: a frame did not parse as ToWorker\n");
        return parsed;
      }
    }
    if (!input_pending()) flush();
    if (!read_more()) return false;
  }
}

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
  if (!write_all(fd_, frame.data(), frame.size())) ::_exit(0);  // the host is gone
}

bool connection::read_more() {
  if (start_ > 0 && start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  } else if (start_ > (size_t{1} << 20)) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  size_t old_size = buffer_.size();
  buffer_.resize(old_size + 256 * 1024);
  ssize_t n;
  do n = ::read(fd_, buffer_.data() + old_size, 256 * 1024);
  while (n < 0 && errno == EINTR);
  buffer_.resize(old_size + (n > 0 ? static_cast<size_t>(n) : 0));
  return n > 0;
}

}  // namespace flowstate::pyworker
