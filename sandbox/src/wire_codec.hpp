#pragma once
// Encoding the client's side of the worker protocol (proto/worker.proto)
// without building protobuf objects on the call path: a call is encoded once,
// by the calling thread, as the bytes of one `ToWorker.calls` entry. Since
// concatenated protobuf messages parse as one merged message, a frame is a
// length prefix followed by such entries. Replies are decoded here too.
#include <cstdint>
#include <string>

#include <vector>

#include "flowstate/sandbox/worker_client.hpp"

namespace flowstate::worker {
class CallReply;
}

namespace flowstate::sandbox::detail {

// The `ToWorker.calls` entry (tag, length, Call) for `request`.
std::string encode_call_entry(uint64_t call_id, const call_request& request);

// The `ToWorker.loads` entry for one function (`module_set` 0: it imports
// no module set).
std::string encode_load_entry(uint64_t function_id, const std::string& name, const std::string& filename,
                              const std::string& source, uint64_t module_set = 0);

// The `ToWorker.loads` entry defining a module set (rare: built as a
// protobuf message).
std::string encode_module_set_entry(uint64_t set_id, const std::vector<python_module>& modules);

// The `ToWorker.unload` entry for one function id.
std::string encode_unload_entry(uint64_t function_id);

// The caller's view of a worker's reply (its strings are moved out).
call_result decode_call_reply(flowstate::worker::CallReply& reply);

// Appends a 4-byte placeholder for a frame's length; returns its offset.
size_t open_frame(std::string& out);
// Writes the length of everything appended since open_frame.
void close_frame(std::string& out, size_t at);

}  // namespace flowstate::sandbox::detail
