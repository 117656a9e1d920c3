#pragma once
// Encodings of what the engine stores besides state: queued inputs, error
// records, derived message ids, and the HTTP rendering of outputs and errors.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/iso_time.hpp"
#include "flowstate/runtime/result.hpp"
#include "flowstate/runtime/store.hpp"
#include "model.hpp"

namespace flowstate::engine_detail {

// A queued input: which block it waits for, and the message.
struct queued_input {
  std::string flow;
  std::string block;
  message msg;
  // In a cluster, for a message sent to another node: the cluster's deploy
  // number of the revision that produced it (0: none). The receiver holds
  // it until it runs that deploy or a later one.
  uint64_t deploy = 0;
  // In a cluster, a source's message accepted on a node that does not run
  // its key (engine_impl::accept_message): the name of its idempotency
  // record (a source's `id:`), which the key's owner checks and writes when
  // it queues the message; empty: none.
  std::string identity{};
  // Such a message that cannot run (no key, no identity): the detail of the
  // PreconditionFailed error record the owner writes instead of queueing it.
  std::string precondition_failed{};
};
std::string encode_queued(const queued_input& q);
result<queued_input> decode_queued(std::string_view bytes);

// A fresh random id for a message from a source (32 hex digits).
std::string new_message_id();
// The id of output `index` of block `block_id` for input `input_id`:
// deterministic, so a re-run produces the same ids.
std::string derive_message_id(std::string_view input_id, std::string_view block_id, std::size_t index);

struct error_fields {
  std::string id;    // decimal text of seq
  uint64_t seq = 0;  // the error's sequence number: its key in the error queue
  std::string type;  // PreconditionFailed, Exception, Timeout, ...
  std::string message;
  std::string flow, block, key, message_id, revision;
  int64_t at_ms = 0;
  std::string details_json = "{}";
  std::string input_json = "null";
  std::string trace_id;
  int64_t accepted_ms = 0;  // the failed message's acceptance time (ctx.time)
};
// The std:Error JSON object.
std::string error_record_json(const error_fields& e);
// Parses a stored error record back (for replay).
result<error_fields> parse_error_record(std::string_view json);
// Problem types (RFC 9457 `type`). A committed error's problem has type
// problem_type_error_prefix + its error type ("urn:flowstate:error:Timeout");
// a route's `timeout:` passing before anything was committed has its own.
inline constexpr std::string_view problem_type_error_prefix = "urn:flowstate:error:";
inline constexpr std::string_view problem_type_route_timeout = "urn:flowstate:problem:route-timeout";
// A source's refusal in hosted mode: the team's executions are used up
// (429), or this node has no current lease of them (503).
inline constexpr std::string_view problem_type_quota_exceeded = "urn:flowstate:error:QuotaExceeded";
inline constexpr std::string_view problem_type_quota_unknown = "urn:flowstate:problem:quota-unknown";

// The problem+json reply for an error: 422, 504 or 500.
http::response error_response(const error_fields& e);

// The reply for an http.Response block given the output JSON
// ({status, headers, body}; body sent as JSON unless a string), or what is
// wrong with it (a `status` that is not an integer from 100 to 599).
result<http::response> render_http_response(std::string_view output_json);

// Evaluates a JSON pointer on a JSON text; the string there, or an error
// saying what was found.
result<std::string> key_at_pointer(std::string_view json, const std::string& pointer);

int64_t now_ms();
using flowstate::iso_time;

// Every column whose records belong to a key group: what a move copies and
// a replica holds.
inline constexpr column key_group_columns[] = {column::state,       column::queue,    column::errors,
                                               column::idempotency, column::metering, column::outbox};
// The one of them named `name`.
std::optional<column> key_group_column(std::string_view name);
// The key group of a record's key (tenant u32, project u32, group u32, ...),
// or nullopt for a key that belongs to none.
std::optional<uint32_t> key_group_of_record(std::string_view key);  // "2026-11-29T01:42:56.123Z"

}  // namespace flowstate::engine_detail
