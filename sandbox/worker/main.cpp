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
#include <mutex>
#include <string>
#include <vector>

#include "check.hpp"
#include "flowstate/sandbox/limits.hpp"
#include "frame_reader.hpp"
#include "js_host.hpp"
#include "worker.pb.h"

namespace fw = flowstate::worker;

namespace {

class connection {
 public:
  explicit connection(int fd) : fd_(fd), reader_(fd, "flowstate-worker") {}

  // The next ToWorker frame, sending the coalesced replies before blocking,
  // then running `idle` (work done ahead while nothing waits); false at EOF.
  template <class Idle>
  bool next(fw::ToWorker* message, Idle&& idle) {
    return reader_.next(message, [this, &idle] {
      flush();
      idle();
    });
  }

  // Replies are encoded as they come into one FromWorker frame that is sent
  // when the worker runs out of input, when it has waited long enough that
  // holding it for another call would delay its caller noticeably, or (from
  // the watchdog's thread) when a call runs long.
  void add_reply(const fw::CallReply& reply) { add_entry(1, reply); }
  void add_load(const fw::LoadReply& reply) { add_entry(2, reply); }

  void flush_if_stale() {
    std::lock_guard lock(mutex_);
    if (out_.size() > 4 && std::chrono::steady_clock::now() - oldest_ > std::chrono::microseconds(200)) flush_locked();
  }

  void flush() {
    std::lock_guard lock(mutex_);
    flush_locked();
  }

 private:
  template <class Message>
  void add_entry(int field, const Message& message) {
    const size_t size = message.ByteSizeLong();
    std::lock_guard lock(mutex_);
    if (out_.size() <= 4) oldest_ = std::chrono::steady_clock::now();
    out_.push_back(static_cast<char>((field << 3) | 2));
    for (size_t v = size;; v >>= 7) {
      if (v < 0x80) {
        out_.push_back(static_cast<char>(v));
        break;
      }
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    }
    size_t at = out_.size();
    out_.resize(at + size);
    message.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(out_.data() + at));
  }

  void flush_locked() {
    if (out_.size() <= 4) return;
    uint32_t length = static_cast<uint32_t>(out_.size() - 4);
    std::memcpy(out_.data(), &length, 4);
    if (!fw::write_all(fd_, out_.data(), out_.size())) std::_Exit(0);  // the host is gone
    out_.resize(4);
  }

  int fd_;
  fw::frame_reader reader_;
  std::mutex mutex_;                        // out_ is also flushed from the watchdog's thread
  std::string out_ = std::string(4, '\0');  // a frame: length placeholder, then entries
  std::chrono::steady_clock::time_point oldest_;
};

int serve(v8::Isolate* isolate, int fd, fw::host_limits limits) {
  v8::Isolate::Scope isolate_scope(isolate);
  connection conn(fd);  // outlives the host, whose watchdog thread may flush it
  fw::js_host host(isolate, limits);
  host.on_slow_call(2, [&conn] { conn.flush(); });
  fw::ToWorker message;
  fw::CallReply reply;
  // While idle, the worker prepares the context its next new function will
  // get (over half of a load's time), after the replies are sent.
  while (conn.next(&message, [&host] { host.prepare_spare_context(); })) {
    for (const auto& load : message.loads()) conn.add_load(host.load(load));
    for (const auto& call : message.calls()) {
      conn.flush_if_stale();
      reply.Clear();
      host.call(call, &reply);
      conn.add_reply(reply);
    }
    for (uint64_t id : message.unload()) host.unload(id);
  }
  conn.flush();
  return 0;
}

// One flag of sandbox::limits::worker_args(), read into `flags` (zero
// elsewhere), applied to the host's limits.
void apply_flag(const flowstate::sandbox::limits& flags, fw::host_limits& limits) {
  if (flags.cpu_ms_per_call) limits.default_timeout_ms = flags.cpu_ms_per_call;
  if (flags.wall_ms_per_call) limits.wall_ms = flags.wall_ms_per_call;
  if (flags.memory_mb) limits.heap_limit_bytes = size_t{flags.memory_mb} << 20;
  if (flags.max_output_bytes) limits.max_output_bytes = flags.max_output_bytes;
  if (flags.max_state_bytes) limits.max_state_bytes = flags.max_state_bytes;
  if (flags.max_log_bytes) limits.max_log_bytes = flags.max_log_bytes;
}

void usage() {
  std::fprintf(stderr,
               "usage: flowstate-worker --fd N [--timeout-ms N] [--cpu-ms N] [--wall-ms N] [--heap-mb N]\n"
               "                        [--memory-mb N] [--max-output-bytes N] [--max-state-bytes N]\n"
               "                        [--max-log-bytes N]\n"
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
    if (check)
      check_files.push_back(arg);
    else if (arg == "--check")
      check = true;
    else if (arg == "--fd")
      fd = std::atoi(value());
    else if (arg == "--heap-mb")
      limits.heap_limit_bytes = size_t(std::atoi(value())) << 20;
    else if (auto flags = flowstate::sandbox::limits::unset(); flags.parse_flag(argc, argv, i))
      apply_flag(flags, limits);
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
