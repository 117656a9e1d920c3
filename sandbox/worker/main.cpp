// flowstate-worker: runs user functions for a function host.
//   flowstate-worker --fd 3 [--timeout-ms N] [--heap-mb N]
//   flowstate-worker --check FILE...
#include <libplatform/libplatform.h>
#include <poll.h>
#include <unistd.h>
#include <v8.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "check.hpp"
#include "js_host.hpp"
#include "worker.pb.h"

namespace fw = flowstate::worker;

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

class connection {
 public:
  explicit connection(int fd) : fd_(fd) {}

  // The next ToWorker frame, reading when none is buffered; false at EOF.
  bool next(fw::ToWorker* message) {
    for (;;) {
      if (buffer_.size() - start_ >= 4) {
        uint32_t length;
        std::memcpy(&length, buffer_.data() + start_, 4);  // little-endian hosts only
        if (length > max_frame_bytes) {
          std::fprintf(stderr, "flowstate-worker: frame of %u bytes is over the limit\n", length);
          return false;
        }
        if (buffer_.size() - start_ >= 4 + size_t{length}) {
          bool parsed = message->ParseFromArray(buffer_.data() + start_ + 4, static_cast<int>(length));
          start_ += 4 + length;
          if (!parsed) {
            std::fprintf(stderr, "flowstate-worker: a frame did not parse as ToWorker\n");
            return false;
          }
          return true;
        }
      }
      if (!input_pending()) flush();
      if (!read_more()) return false;
    }
  }

  bool frame_buffered() const {
    if (buffer_.size() - start_ < 4) return false;
    uint32_t length;
    std::memcpy(&length, buffer_.data() + start_, 4);
    return buffer_.size() - start_ >= 4 + size_t{length};
  }

  bool input_pending() const {
    if (frame_buffered()) return true;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) > 0;
  }

  fw::FromWorker& out() {
    if (out_.replies_size() == 0 && out_.loads_size() == 0) oldest_ = std::chrono::steady_clock::now();
    return out_;
  }

  // Writes what is coalesced when it has waited long enough that holding it
  // for another call would delay its caller noticeably.
  void flush_if_stale() {
    if ((out_.replies_size() || out_.loads_size()) &&
        std::chrono::steady_clock::now() - oldest_ > std::chrono::microseconds(200))
      flush();
  }

  void flush() {
    if (out_.replies_size() == 0 && out_.loads_size() == 0) return;
    size_t size = out_.ByteSizeLong();
    std::string frame(4 + size, '\0');
    uint32_t length = static_cast<uint32_t>(size);
    std::memcpy(frame.data(), &length, 4);
    out_.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(frame.data() + 4));
    out_.Clear();
    if (!write_all(fd_, frame.data(), frame.size())) std::exit(0);  // the host is gone
  }

 private:
  bool read_more() {
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

  int fd_;
  std::string buffer_;
  size_t start_ = 0;
  fw::FromWorker out_;
  std::chrono::steady_clock::time_point oldest_;
};

int serve(v8::Isolate* isolate, int fd, fw::host_limits limits) {
  v8::Isolate::Scope isolate_scope(isolate);
  fw::js_host host(isolate, limits);
  connection conn(fd);
  fw::ToWorker message;
  while (conn.next(&message)) {
    for (const auto& load : message.loads()) *conn.out().add_loads() = host.load(load);
    for (const auto& call : message.calls()) {
      conn.flush_if_stale();
      host.call(call, conn.out().add_replies());
    }
    for (uint64_t id : message.unload()) host.unload(id);
  }
  conn.flush();
  return 0;
}

void usage() {
  std::fprintf(stderr,
               "usage: flowstate-worker --fd N [--timeout-ms N] [--heap-mb N]\n"
               "       flowstate-worker --check FILE...\n");
}

}  // namespace

int main(int argc, char** argv) {
  int fd = -1;
  fw::host_limits limits;
  std::vector<std::string> check_files;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        usage();
        std::exit(2);
      }
      return argv[++i];
    };
    if (check) check_files.push_back(arg);
    else if (arg == "--check") check = true;
    else if (arg == "--fd") fd = std::atoi(value());
    else if (arg == "--timeout-ms") limits.default_timeout_ms = static_cast<uint32_t>(std::atoi(value()));
    else if (arg == "--heap-mb") limits.heap_limit_bytes = size_t(std::atoi(value())) << 20;
    else {
      usage();
      return 2;
    }
  }
  if (!check && fd < 0) {
    usage();
    return 2;
  }

  setenv("TZ", "UTC", 1);  // Date's local time must not depend on the machine
  v8::V8::SetFlagsFromString("--single-threaded --no-expose-wasm");
  auto platform = v8::platform::NewSingleThreadedDefaultPlatform();
  v8::V8::InitializePlatform(platform.get());
  v8::V8::Initialize();
  v8::Isolate::CreateParams params;
  std::unique_ptr<v8::ArrayBuffer::Allocator> allocator(v8::ArrayBuffer::Allocator::NewDefaultAllocator());
  params.array_buffer_allocator = allocator.get();
  params.constraints.ConfigureDefaultsFromHeapSize(0, limits.heap_limit_bytes);
  v8::Isolate* isolate = v8::Isolate::New(params);
  int rc = check ? fw::check_files(isolate, check_files) : serve(isolate, fd, limits);
  isolate->Dispose();
  v8::V8::Dispose();
  v8::V8::DisposePlatform();
  return rc;
}
