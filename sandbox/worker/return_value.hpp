#pragma once
// Turns what a function returned into a CallReply, following the return-shape
// table of docs/functions.md, with an error that says what was expected and
// what came when the shape or a value is not JSON data.
#include <v8.h>

#include "worker.pb.h"

namespace flowstate::worker {

// Internalized strings made once per isolate: comparing a property name
// with one of them is a pointer comparison.
struct cached_names {
  explicit cached_names(v8::Isolate* isolate);
  v8::Eternal<v8::String> output, outputs, state, default_export, entrypoint;
};

// Fills reply's outputs and state change (status OK), or sets status
// EXCEPTION with an error message. Runs JSON.stringify, so it may run user
// getters; the caller holds a TryCatch and the watchdog.
// `is_plain_json` is the prelude's fast check; when it says yes, the exact
// (slower) checker is skipped.
void read_return_value(v8::Isolate* isolate, v8::Local<v8::Context> context, const cached_names& names,
                       v8::Local<v8::Function> is_plain_json, v8::Local<v8::Value> returned, CallReply* reply);

// "a number", "an array", "null"...: what a value is, for error messages.
std::string describe_type(v8::Local<v8::Value> value);

}  // namespace flowstate::worker
