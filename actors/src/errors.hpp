#pragma once
// Where an error goes (docs/types-and-errors.md): into the project's error queue,
// or, when its flow sets `on_error:`, as a message into that flow (errors
// raised in a flow that receives errors are not routed again).
#include "flowstate/runtime/store.hpp"
#include "model.hpp"
#include "records.hpp"

namespace flowstate::engine_detail {

// An error for message `msg` at (flow, block) of project `p`; its id is a
// fresh sequence number.
error_fields make_error(store& db, const project_rt& p, uint32_t flow, const std::string& block, const message& msg,
                        std::string type, std::string text, std::string details);

// Adds the error to `batch`; returns the work item to submit after the
// commit when the error is routed into an on_error flow (else null).
work_ptr record_error(commit_batch& batch, store& db, const project_ptr& p, uint32_t flow, const error_fields& e);

// Adds the error record and its count to `batch`, under the key group of
// the error's message key.
void put_error(commit_batch& batch, const project_rt& p, const error_fields& e);

// The sequence of an error record's key (0 if the key is not one).
uint64_t error_seq_of(std::string_view key);

// The errors a project has queued (the sum of its key groups' counters).
result<uint64_t> count_errors(const store& db, uint32_t tenant, uint32_t project);
// Two's complement: adding this through the uint64 merge subtracts n.
inline uint64_t minus(uint64_t n) { return ~n + 1; }

}  // namespace flowstate::engine_detail
