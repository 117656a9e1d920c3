// The worker wire protocol (sandbox/proto): framing and the codec.
// 1. The input as bytes on a socket, read by the worker's frame_reader
//    (each frame parsed as ToWorker) and by the client's frame_buffer (each
//    frame parsed as FromWorker, every reply through decode_call_reply).
// 2. The input as the fields of a call, a load and an unload: the client's
//    hand-written encoder must produce a frame that protobuf parses back to
//    the same fields.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "flowstate/runtime/utf8.hpp"
#include "frame_buffer.hpp"
#include "frame_reader.hpp"
#include "wire_codec.hpp"
#include "worker.pb.h"

namespace wire = flowstate::worker;
using namespace flowstate::sandbox;

namespace {

void check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "wire fuzz: %s\n", what);
  std::abort();
}

// A connected pair holding `bytes` for the reader, then EOF.
struct loaded_socket {
  int fds[2] = {-1, -1};
  explicit loaded_socket(const uint8_t* data, size_t size) {
    check(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0, "socketpair");
    int buffer = 1 << 20;
    ::setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    ::setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    check(flowstate::worker::write_all(fds[1], reinterpret_cast<const char*>(data), size), "write");
    ::shutdown(fds[1], SHUT_WR);
  }
  ~loaded_socket() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
};

void read_as_worker(const uint8_t* data, size_t size) {
  loaded_socket socket(data, size);
  flowstate::worker::frame_reader reader(socket.fds[0], "fuzz_wire");
  wire::ToWorker message;
  while (reader.next(&message, [] {})) {
    for (auto& load : message.loads()) (void)load.source().size();
    message.Clear();
  }
}

void read_as_client(const uint8_t* data, size_t size) {
  loaded_socket socket(data, size);
  flowstate::worker::frame_buffer in;
  wire::FromWorker frame;
  for (;;) {
    ssize_t n = in.read_from(socket.fds[0]);
    const char* body;
    uint32_t length;
    bool too_big;
    while (in.next(&body, &length, flowstate::worker::max_frame_bytes, &too_big)) {
      frame.Clear();
      if (!frame.ParseFromArray(body, static_cast<int>(length))) continue;
      for (auto& reply : *frame.mutable_replies()) {
        auto result = detail::decode_call_reply(reply);
        check(result.outputs.size() == static_cast<size_t>(reply.outputs_size()), "decode keeps every output");
      }
    }
    if (too_big || n <= 0) return;
  }
}

void round_trip(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  call_request call;
  const uint64_t call_id = in.ConsumeIntegral<uint64_t>();
  call.function_id = in.ConsumeIntegral<uint64_t>();
  call.timeout_ms = in.ConsumeIntegral<uint32_t>();
  call.ctx.time_ms = in.ConsumeIntegral<int64_t>();
  if (in.ConsumeBool()) call.state_json = in.ConsumeRandomLengthString(64);
  call.input_json = in.ConsumeRandomLengthString(256);
  call.ctx.key = in.ConsumeRandomLengthString(64);
  call.ctx.flow = in.ConsumeRandomLengthString(16);
  call.ctx.block = in.ConsumeRandomLengthString(16);
  call.ctx.revision = in.ConsumeRandomLengthString(16);
  call.ctx.message_id = in.ConsumeRandomLengthString(16);
  const uint64_t function_id = in.ConsumeIntegral<uint64_t>();
  const uint64_t module_set = in.ConsumeIntegral<uint64_t>();
  const uint64_t unload_id = in.ConsumeIntegral<uint64_t>();
  const std::string name = in.ConsumeRandomLengthString(16);
  const std::string filename = in.ConsumeRandomLengthString(16);
  const std::string source = in.ConsumeRemainingBytesAsString();

  // The encoder's precondition: protobuf `string` fields carry UTF-8 (the
  // HTTP path and the project loader refuse other text at the source); a
  // frame with anything else does not parse in the worker.
  for (const std::string* text :
       std::initializer_list<const std::string*>{&call.ctx.key, &call.ctx.flow, &call.ctx.block, &call.ctx.revision,
                                                 &call.ctx.message_id, &name, &filename, &source})
    if (!flowstate::is_valid_utf8(*text)) return;

  std::string frame;
  const size_t at = detail::open_frame(frame);
  frame += detail::encode_load_entry(function_id, name, filename, source, module_set);
  frame += detail::encode_call_entry(call_id, call);
  frame += detail::encode_unload_entry(unload_id);
  detail::close_frame(frame, at);

  uint32_t length;
  std::memcpy(&length, frame.data() + at, 4);
  check(length == frame.size() - at - 4, "the frame's length prefix is its body's size");
  wire::ToWorker parsed;
  check(parsed.ParseFromArray(frame.data() + 4, static_cast<int>(length)), "an encoded frame does not parse");
  check(parsed.loads_size() == 1 && parsed.calls_size() == 1 && parsed.unload_size() == 1, "entry counts");
  const auto& load = parsed.loads(0);
  check(load.function_id() == function_id && load.name() == name && load.filename() == filename &&
            load.source() == source && load.module_set() == module_set,
        "a load entry's fields differ after the round trip");
  const auto& c = parsed.calls(0);
  check(c.call_id() == call_id && c.function_id() == call.function_id && c.input_json() == call.input_json &&
            c.timeout_ms() == call.timeout_ms,
        "a call entry's fields differ after the round trip");
  check(c.has_state() == call.state_json.has_value() && c.state_json() == call.state_json.value_or(""),
        "a call's state differs after the round trip");
  check(c.ctx().key() == call.ctx.key && c.ctx().flow() == call.ctx.flow && c.ctx().block() == call.ctx.block &&
            c.ctx().revision() == call.ctx.revision && c.ctx().message_id() == call.ctx.message_id &&
            c.ctx().time_ms() == call.ctx.time_ms,
        "a call's context differs after the round trip");
  check(parsed.unload(0) == unload_id, "an unload entry differs after the round trip");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // protobuf logs every string field that is not UTF-8; the result is checked.
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (1 << 20)) return -1;
  read_as_worker(data, size);
  read_as_client(data, size);
  round_trip(data, size);
  return 0;
}
