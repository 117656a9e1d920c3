#include "wire_codec.hpp"

#include <cstring>

#include "flowstate/runtime/python_modules.hpp"
#include "worker.pb.h"

namespace flowstate::sandbox::detail {
namespace {

namespace wire = flowstate::worker;

// Field tags: (field number << 3) | wire type (0 varint, 2 length-delimited).
constexpr uint8_t varint_tag(int field) { return static_cast<uint8_t>(field << 3); }
constexpr uint8_t bytes_tag(int field) { return static_cast<uint8_t>((field << 3) | 2); }

size_t varint_size(uint64_t value) {
  size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

size_t bytes_field_size(const std::string& text) {
  return text.empty() ? 0 : 1 + varint_size(text.size()) + text.size();
}

void put_bytes_field(std::string& out, int field, const std::string& text) {
  if (text.empty()) return;
  out.push_back(static_cast<char>(bytes_tag(field)));
  put_varint(out, text.size());
  out.append(text);
}

size_t varint_field_size(uint64_t value) { return value ? 1 + varint_size(value) : 0; }

void put_varint_field(std::string& out, int field, uint64_t value) {
  if (!value) return;
  out.push_back(static_cast<char>(varint_tag(field)));
  put_varint(out, value);
}

}  // namespace

std::string encode_call_entry(uint64_t call_id, const call_request& request) {
  const call_context& ctx = request.ctx;
  const uint64_t time = static_cast<uint64_t>(ctx.time_ms);  // int64: two's complement varint
  const size_t ctx_size = bytes_field_size(ctx.key) + bytes_field_size(ctx.flow) + bytes_field_size(ctx.block) +
                          bytes_field_size(ctx.revision) + bytes_field_size(ctx.message_id) + varint_field_size(time);
  const bool has_state = request.state_json.has_value();
  const size_t call_size = varint_field_size(call_id) + varint_field_size(request.function_id) +
                           bytes_field_size(request.input_json) + (has_state ? 2 : 0) +
                           (has_state ? bytes_field_size(*request.state_json) : 0) + 1 + varint_size(ctx_size) +
                           ctx_size + varint_field_size(request.timeout_ms);
  std::string out;
  out.reserve(1 + varint_size(call_size) + call_size);
  out.push_back(static_cast<char>(bytes_tag(2)));  // ToWorker.calls
  put_varint(out, call_size);
  put_varint_field(out, 1, call_id);
  put_varint_field(out, 2, request.function_id);
  put_bytes_field(out, 3, request.input_json);
  if (has_state) {
    put_varint_field(out, 4, 1);
    put_bytes_field(out, 5, *request.state_json);
  }
  out.push_back(static_cast<char>(bytes_tag(6)));
  put_varint(out, ctx_size);
  put_bytes_field(out, 1, ctx.key);
  put_bytes_field(out, 2, ctx.flow);
  put_bytes_field(out, 3, ctx.block);
  put_bytes_field(out, 4, ctx.revision);
  put_bytes_field(out, 5, ctx.message_id);
  put_varint_field(out, 6, time);
  put_varint_field(out, 7, request.timeout_ms);
  return out;
}

std::string encode_load_entry(uint64_t function_id, const std::string& name, const std::string& filename,
                              const std::string& source, uint64_t module_set) {
  const size_t size = varint_field_size(function_id) + bytes_field_size(name) + bytes_field_size(filename) +
                      bytes_field_size(source) + varint_field_size(module_set);
  std::string out;
  out.reserve(1 + varint_size(size) + size);
  out.push_back(static_cast<char>(bytes_tag(1)));  // ToWorker.loads
  put_varint(out, size);
  put_varint_field(out, 1, function_id);
  put_bytes_field(out, 2, name);
  put_bytes_field(out, 3, filename);
  put_bytes_field(out, 4, source);
  put_varint_field(out, 5, module_set);
  return out;
}

call_result decode_call_reply(wire::CallReply& reply) {
  call_result result;
  switch (reply.status()) {
    case wire::CallReply::OK:
      result.status = call_status::ok;
      break;
    case wire::CallReply::EXCEPTION:
      result.status = call_status::exception;
      break;
    case wire::CallReply::TIMEOUT:
      result.status = call_status::timeout;
      break;
    case wire::CallReply::RESOURCE_EXHAUSTED:
      result.status = call_status::resource_exhausted;
      break;
    case wire::CallReply::NOT_LOADED:
      result.status = call_status::not_loaded;
      break;
    default:
      result.status = call_status::exception;
      break;
  }
  result.outputs.reserve(reply.outputs_size());
  for (auto& output : *reply.mutable_outputs()) result.outputs.push_back(std::move(output));
  switch (reply.state_change()) {
    case wire::CallReply::SET:
      result.state = state_change::set;
      break;
    case wire::CallReply::DELETE:
      result.state = state_change::erase;
      break;
    default:
      result.state = state_change::unchanged;
      break;
  }
  result.state_json = std::move(*reply.mutable_state_json());
  result.error_message = std::move(*reply.mutable_error_message());
  result.error_details_json = std::move(*reply.mutable_error_details_json());
  for (auto& line : *reply.mutable_logs()) result.logs.push_back(std::move(line));
  return result;
}

std::string encode_module_set_entry(uint64_t set_id, const std::vector<python_module>& modules) {
  wire::ToWorker message;
  auto* load = message.add_loads();
  load->set_function_id(set_id);
  load->set_defines_modules(true);
  for (const auto& module : modules) {
    auto* m = load->add_modules();
    m->set_name(module.name);
    m->set_filename(module.filename);
    m->set_source(module.source);
    m->set_is_package(module.is_package);
  }
  return message.SerializeAsString();
}

std::string encode_unload_entry(uint64_t function_id) {
  std::string out;
  out.push_back(static_cast<char>(varint_tag(3)));  // ToWorker.unload, unpacked
  put_varint(out, function_id);
  return out;
}

size_t open_frame(std::string& out) {
  size_t at = out.size();
  out.append(4, '\0');
  return at;
}

void close_frame(std::string& out, size_t at) {
  uint32_t length = static_cast<uint32_t>(out.size() - at - 4);
  std::memcpy(out.data() + at, &length, 4);  // little-endian hosts only
}

}  // namespace flowstate::sandbox::detail
