#include "js_host.hpp"

#include "flowstate/runtime/json_text.hpp"

#include <list>

#include "compile.hpp"
#include "module_body.hpp"
#include "prelude.hpp"
#include "return_value.hpp"

namespace flowstate::worker {
namespace {

using flowstate::json_quote;

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& text) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) hash = (hash ^ c) * 0x100000001b3ULL;
  return hash;
}

// One console.* line: strings as they are, other values as JSON when they
// have a JSON form, else as their string conversion.
std::string format_log_arguments(const v8::FunctionCallbackInfo<v8::Value>& info) {
  v8::Isolate* isolate = info.GetIsolate();
  v8::Local<v8::Context> context = isolate->GetCurrentContext();
  std::string line;
  for (int i = 0; i < info.Length(); ++i) {
    if (i > 0) line += ' ';
    v8::Local<v8::Value> value = info[i];
    if (value->IsObject() && !value->IsFunction()) {
      v8::TryCatch ignore(isolate);
      v8::Local<v8::String> json;
      if (v8::JSON::Stringify(context, value).ToLocal(&json)) {
        line += to_utf8(isolate, json);
        continue;
      }
    }
    line += to_utf8(isolate, value);
  }
  return line;
}

// For the prelude's freezeGlobals: what a freeze does not protect.
void mutable_kind(const v8::FunctionCallbackInfo<v8::Value>& info) {
  if (info.Length() < 1) return;
  v8::Local<v8::Value> v = info[0];
  const char* what = v->IsMap()                                       ? "a Map"
                     : v->IsSet()                                     ? "a Set"
                     : v->IsWeakMap()                                 ? "a WeakMap"
                     : v->IsWeakSet()                                 ? "a WeakSet"
                     : v->IsDate()                                    ? "a Date"
                     : v->IsArrayBuffer() || v->IsSharedArrayBuffer() ? "an ArrayBuffer"
                     : v->IsArrayBufferView()                         ? "a typed array or DataView"
                                                                      : nullptr;
  if (what) info.GetReturnValue().Set(to_v8(info.GetIsolate(), what));
}

void console_log(const v8::FunctionCallbackInfo<v8::Value>& info) {
  auto* host = static_cast<js_host*>(info.Data().As<v8::External>()->Value());
  host->append_log(format_log_arguments(info));
}

}  // namespace

struct js_host::function {
  uint64_t id = 0;
  std::string name, filename, source;
  std::string code_cache;               // V8's, made at the first instantiation
  std::list<function*>::iterator live;  // its place in live_ while it has a context
  bool has_live = false;
  std::unique_ptr<v8::MicrotaskQueue> microtasks;
  v8::Global<v8::Context> context;
  // Runs the function's top-level code and returns its entry point: called
  // once per call, so module-level variables start afresh (module_body.hpp).
  v8::Global<v8::Function> factory;
  bool module_per_call = false;  // no factory: the module is compiled again for every call
  v8::Global<v8::Function> set_environment;
  v8::Global<v8::Function> is_plain_json;

  void discard() {
    factory.Reset();
    set_environment.Reset();
    is_plain_json.Reset();
    context.Reset();
    microtasks.reset();
  }
};

js_host::js_host(v8::Isolate* isolate, host_limits limits)
    : isolate_(isolate), limits_(limits), watchdog_(isolate), names_(isolate) {
  isolate_->AddNearHeapLimitCallback(&js_host::near_heap_limit, this);
}

js_host::~js_host() {
  for (auto& [id, f] : functions_) f->discard();
  isolate_->RemoveNearHeapLimitCallback(&js_host::near_heap_limit, 0);
}

size_t js_host::near_heap_limit(void* data, size_t current_limit, size_t) {
  auto* host = static_cast<js_host*>(data);
  host->heap_exhausted_ = true;
  host->isolate_->TerminateExecution();
  // Room for the termination to unwind; restored after the call.
  return current_limit + (size_t{64} << 20);
}

void js_host::append_log(std::string line) {
  if (!current_reply_) return;
  if (auto kept = log_cap_.admit(std::move(line))) current_reply_->add_logs(std::move(*kept));
}

bool js_host::new_context(prepared_context& out) {
  out.microtasks = v8::MicrotaskQueue::New(isolate_, v8::MicrotasksPolicy::kExplicit);
  v8::HandleScope scope(isolate_);
  v8::Local<v8::Context> context = v8::Context::New(isolate_, nullptr, {}, {}, {}, out.microtasks.get());
  v8::Context::Scope context_scope(context);
  v8::TryCatch try_catch(isolate_);

  // console.* write into the current call's logs.
  auto console = v8::Object::New(isolate_);
  if (console_template_.IsEmpty())
    console_template_.Reset(isolate_,
                            v8::FunctionTemplate::New(isolate_, console_log, v8::External::New(isolate_, this)));
  auto log = console_template_.Get(isolate_)->GetFunction(context).ToLocalChecked();
  for (const char* method : {"log", "info", "warn", "error", "debug"})
    console->Set(context, to_v8(isolate_, method), log).Check();
  context->Global()->Set(context, to_v8(isolate_, "console"), console).Check();

  v8::Local<v8::Value> setter;
  // The prelude is compiled once per isolate and bound to each new context.
  if (prelude_.IsEmpty()) {
    v8::ScriptCompiler::Source prelude(to_v8(isolate_, prelude_source));
    prelude_.Reset(isolate_, v8::ScriptCompiler::CompileUnboundScript(isolate_, &prelude).ToLocalChecked());
  }
  if (!prelude_.Get(isolate_)->BindToCurrentContext()->Run(context).ToLocal(&setter)) return false;
  auto prelude_functions = setter.As<v8::Array>();
  out.set_environment.Reset(isolate_, prelude_functions->Get(context, 0).ToLocalChecked().As<v8::Function>());
  out.is_plain_json.Reset(isolate_, prelude_functions->Get(context, 1).ToLocalChecked().As<v8::Function>());
  out.freeze_globals.Reset(isolate_, prelude_functions->Get(context, 2).ToLocalChecked().As<v8::Function>());
  out.context.Reset(isolate_, context);
  return true;
}

void js_host::prepare_spare_context() {
  if (spare_) return;
  prepared_context ready;
  if (new_context(ready)) spare_ = std::move(ready);
}

std::string js_host::instantiate(function& f) {
  forget_context(f);
  prepared_context ready;
  if (spare_) {
    ready = std::move(*spare_);
    spare_.reset();
  } else if (!new_context(ready)) {
    return f.filename + ": internal error: the prelude failed";
  }
  f.microtasks = std::move(ready.microtasks);
  v8::HandleScope scope(isolate_);
  v8::Local<v8::Context> context = ready.context.Get(isolate_);
  v8::Context::Scope context_scope(context);
  v8::TryCatch try_catch(isolate_);
  f.set_environment = std::move(ready.set_environment);
  f.is_plain_json = std::move(ready.is_plain_json);
  auto freeze_globals = ready.freeze_globals.Get(isolate_);

  watchdog_.arm(limits_.default_timeout_ms, limits_.wall_ms);
  std::string error;
  v8::Local<v8::Value> entry;
  bool try_script = !looks_like_module(f.source);
  if (!try_script) {
    v8::Local<v8::Module> module;
    if (!compile_module(isolate_, f.filename, f.source, f.code_cache).ToLocal(&module)) {
      error = format_message(isolate_, context, try_catch.Message(), f.filename);
      try_catch.Reset();
      // `export` may only appear in a comment or string of a classic script.
      v8::TryCatch script_try(isolate_);
      if (!compile_script(isolate_, context, f.filename, f.source).IsEmpty()) {
        error.clear();
        try_script = true;
      }
    } else if (error = refuse_imports(isolate_, context, module, f.filename); error.empty()) {
      auto resolve = [](v8::Local<v8::Context>, v8::Local<v8::String>, v8::Local<v8::FixedArray>,
                        v8::Local<v8::Module>) -> v8::MaybeLocal<v8::Module> { return {}; };
      v8::Local<v8::Value> evaluated;
      if (!module->InstantiateModule(context, resolve).FromMaybe(false) ||
          !module->Evaluate(context).ToLocal(&evaluated)) {
        error = format_message(isolate_, context, try_catch.Message(), f.filename);
      } else {
        f.microtasks->PerformCheckpoint(isolate_);
        if (module->GetStatus() == v8::Module::kErrored) {
          error = f.filename + ": " + to_utf8(isolate_, module->GetException());
        } else {
          auto ns = module->GetModuleNamespace().As<v8::Object>();
          v8::Local<v8::Value> value;
          if (ns->Get(context, names_.default_export.Get(isolate_)).ToLocal(&value) && !value->IsUndefined()) {
            if (value->IsFunction()) {
              entry = value;
              if (f.code_cache.empty()) f.code_cache = create_code_cache(module);
            } else {
              error = f.filename + ": the default export must be a function, got " + describe_type(value);
            }
          } else {
            error = f.filename + ": expected `export default function (input, state, ctx)`, found no default export";
          }
        }
      }
    }
  }
  if (try_script) {
    // A classic script is checked here and runs only as a function body
    // (prepare_calls): its top-level names stay out of globalThis.
    v8::Local<v8::Script> script;
    if (!compile_script(isolate_, context, f.filename, f.source).ToLocal(&script))
      error = format_message(isolate_, context, try_catch.Message(), f.filename);
  }
  bool timed_out = watchdog_.disarm();
  // Freezing the globals is the worker's own work, not limited by the
  // function's time limit; its top-level code then runs again, limited.
  if (error.empty() && (try_script || !entry.IsEmpty()) && !timed_out && !heap_exhausted_ &&
      !isolate_->IsExecutionTerminating())
    error = prepare_calls(f, context, try_script, freeze_globals, timed_out);
  if (timed_out || heap_exhausted_ || isolate_->IsExecutionTerminating()) {
    isolate_->CancelTerminateExecution();
    error = f.filename + ": its top-level code " +
            (heap_exhausted_ ? "exceeded the heap limit"
                             : "exceeded the time limit of " + std::to_string(limits_.default_timeout_ms) + " ms");
  }
  if (!error.empty() || (entry.IsEmpty() && !try_script)) {
    if (error.empty()) error = f.filename + ": could not be loaded";
    forget_context(f);
    return error;
  }
  f.context.Reset(isolate_, context);
  touch(f);
  return {};
}

std::string js_host::prepare_calls(function& f, v8::Local<v8::Context> context, bool script,
                                   v8::Local<v8::Function> freeze_globals, bool& timed_out) {
  v8::TryCatch try_catch(isolate_);
  v8::Local<v8::Value> problem;
  v8::Local<v8::Value> kind_of[] = {v8::Function::New(context, mutable_kind).ToLocalChecked()};
  if (!freeze_globals->Call(context, v8::Undefined(isolate_), 1, kind_of).ToLocal(&problem))
    return f.filename +
           ": freezing the globals failed: " + format_message(isolate_, context, try_catch.Message(), f.filename);
  if (std::string what = problem->IsString() ? to_utf8(isolate_, problem) : std::string(); !what.empty())
    return f.filename + ": its top-level code leaves a value that calls could change: " + what +
           " (globalThis is shared by every call and key; keep such values in module scope, which is fresh for every "
           "call)";

  f.module_per_call = true;
  if (std::optional<std::string> body =
          script ? script_as_function_body(f.source) : module_as_function_body(f.source)) {
    v8::TryCatch quiet(isolate_);
    v8::ScriptOrigin origin(isolate_, to_v8(isolate_, f.filename));
    v8::ScriptCompiler::Source source(to_v8(isolate_, *body), origin);
    v8::Local<v8::Function> factory;
    if (v8::ScriptCompiler::CompileFunction(context, &source).ToLocal(&factory)) {
      f.factory.Reset(isolate_, factory);
      f.module_per_call = false;
    }
  }
  if (script && f.module_per_call) return f.filename + ": cannot be compiled as a function body";
  // The top-level code as a call runs it: after the freeze (a module's for
  // the second time).
  watchdog_.arm(limits_.default_timeout_ms, limits_.wall_ms);
  std::string error = try_entry(f, context, script);
  timed_out = watchdog_.disarm();
  return error;
}

std::string js_host::try_entry(function& f, v8::Local<v8::Context> context, bool script) {
  v8::TryCatch try_catch(isolate_);
  v8::Local<v8::Value> entry;
  if (script) {
    if (!f.factory.Get(isolate_)->Call(context, v8::Undefined(isolate_), 0, nullptr).ToLocal(&entry)) {
      if (isolate_->IsExecutionTerminating()) return {};  // the caller reports the time or heap limit
      return format_message(isolate_, context, try_catch.Message(), f.filename);
    }
    if (!entry->IsFunction())
      return f.filename +
             ": expected `export default function (input, state, ctx)` or a global "
             "`function entrypoint(input, state)`, found neither";
    return {};
  }
  v8::Local<v8::Function> module_entry;
  if (!make_entry(f, context).ToLocal(&module_entry)) {
    if (isolate_->IsExecutionTerminating()) return {};
    return format_message(isolate_, context, try_catch.Message(), f.filename) +
           " (in its top-level code, which runs again for every call, with globalThis frozen)";
  }
  return {};
}

v8::MaybeLocal<v8::Function> js_host::make_entry(function& f, v8::Local<v8::Context> context) {
  v8::Local<v8::Value> entry;
  if (!f.module_per_call) {
    if (!f.factory.Get(isolate_)->Call(context, v8::Undefined(isolate_), 0, nullptr).ToLocal(&entry)) return {};
  } else {
    v8::Local<v8::Module> module;
    if (!compile_module(isolate_, f.filename, f.source, f.code_cache).ToLocal(&module)) return {};
    auto resolve = [](v8::Local<v8::Context>, v8::Local<v8::String>, v8::Local<v8::FixedArray>,
                      v8::Local<v8::Module>) -> v8::MaybeLocal<v8::Module> { return {}; };
    v8::Local<v8::Value> evaluated;
    if (!module->InstantiateModule(context, resolve).FromMaybe(false) || !module->Evaluate(context).ToLocal(&evaluated))
      return {};
    f.microtasks->PerformCheckpoint(isolate_);
    if (module->GetStatus() == v8::Module::kErrored) {
      isolate_->ThrowException(module->GetException());
      return {};
    }
    if (!module->GetModuleNamespace()
             .As<v8::Object>()
             ->Get(context, names_.default_export.Get(isolate_))
             .ToLocal(&entry))
      return {};
  }
  if (!entry->IsFunction()) {
    isolate_->ThrowException(v8::Exception::TypeError(
        to_v8(isolate_, "the function's top-level code did not define its entry point this time (it found " +
                            describe_type(entry) + ")")));
    return {};
  }
  return entry.As<v8::Function>();
}

void js_host::touch(function& f) {
  if (f.has_live) {
    live_.splice(live_.begin(), live_, f.live);
    return;
  }
  live_.push_front(&f);
  f.live = live_.begin();
  f.has_live = true;
  while (live_.size() > limits_.max_live_contexts) {
    function* oldest = live_.back();
    if (oldest == &f) break;
    forget_context(*oldest);
  }
}

// An idle function keeps its source and code cache; its context is made
// again (quickly, from the cache) at its next call.
void js_host::forget_context(function& f) {
  if (f.has_live) {
    live_.erase(f.live);
    f.has_live = false;
  }
  f.discard();
}

LoadReply js_host::load(const LoadFunction& request) {
  LoadReply reply;
  reply.set_function_id(request.function_id());
  if (request.defines_modules()) {
    reply.set_error_message("module sets are for Python workers; JavaScript imports are bundled at deploy");
    return reply;
  }
  if (auto old = functions_.find(request.function_id()); old != functions_.end()) forget_context(*old->second);
  auto f = std::make_unique<function>();
  f->id = request.function_id();
  f->name = request.name();
  f->filename = request.filename().empty() ? request.name() : request.filename();
  f->source = request.source();
  std::string error = instantiate(*f);
  if (heap_exhausted_) {
    heap_exhausted_ = false;
    isolate_->LowMemoryNotification();
    isolate_->RemoveNearHeapLimitCallback(&js_host::near_heap_limit, limits_.heap_limit_bytes);
    isolate_->AddNearHeapLimitCallback(&js_host::near_heap_limit, this);
  }
  if (!error.empty()) {
    functions_.erase(request.function_id());
    reply.set_ok(false);
    reply.set_error_message(std::move(error));
    return reply;
  }
  functions_[request.function_id()] = std::move(f);
  reply.set_ok(true);
  return reply;
}

void js_host::unload(uint64_t function_id) {
  auto found = functions_.find(function_id);
  if (found == functions_.end()) return;
  forget_context(*found->second);
  functions_.erase(found);
}

void js_host::run(function& f, const Call& call, CallReply* reply) {
  v8::HandleScope scope(isolate_);
  v8::Local<v8::Context> context = f.context.Get(isolate_);
  v8::Context::Scope context_scope(context);
  v8::TryCatch try_catch(isolate_);

  const CallContext& ctx = call.ctx();
  uint64_t seed = fnv1a(ctx.message_id());
  uint64_t r1 = splitmix64(seed), r2 = splitmix64(seed);
  if ((r1 | r2) == 0) r1 = 1;
  v8::Local<v8::Value> environment[] = {v8::Number::New(isolate_, static_cast<double>(ctx.time_ms())),
                                        v8::Integer::New(isolate_, static_cast<int32_t>(r1)),
                                        v8::Integer::New(isolate_, static_cast<int32_t>(r1 >> 32)),
                                        v8::Integer::New(isolate_, static_cast<int32_t>(r2)),
                                        v8::Integer::New(isolate_, static_cast<int32_t>(r2 >> 32)),
                                        to_v8(isolate_, ctx.key()),
                                        to_v8(isolate_, ctx.flow()),
                                        to_v8(isolate_, ctx.block()),
                                        to_v8(isolate_, ctx.revision()),
                                        to_v8(isolate_, ctx.message_id())};
  v8::Local<v8::Value> args[3];
  if (!f.set_environment.Get(isolate_)
           ->Call(context, v8::Undefined(isolate_), std::size(environment), environment)
           .ToLocal(&args[2]))
    return;

  if (!v8::JSON::Parse(context, to_v8(isolate_, call.input_json())).ToLocal(&args[0])) {
    try_catch.Reset();
    reply->set_status(CallReply::EXCEPTION);
    reply->set_error_message("the input is not valid JSON");
    return;
  }
  args[1] = v8::Undefined(isolate_);
  if (call.has_state() && !v8::JSON::Parse(context, to_v8(isolate_, call.state_json())).ToLocal(&args[1])) {
    try_catch.Reset();
    reply->set_status(CallReply::EXCEPTION);
    reply->set_error_message("the state is not valid JSON");
    return;
  }

  // The function's top-level code runs for every call: nothing a call
  // leaves in module scope reaches the next call or key.
  v8::Local<v8::Function> entry;
  v8::Local<v8::Value> returned;
  bool ok = make_entry(f, context).ToLocal(&entry) &&
            entry->Call(context, v8::Undefined(isolate_), 3, args).ToLocal(&returned);
  if (ok) {
    f.microtasks->PerformCheckpoint(isolate_);
    if (returned->IsPromise()) {
      auto promise = returned.As<v8::Promise>();
      if (promise->State() == v8::Promise::kFulfilled) {
        returned = promise->Result();
      } else if (promise->State() == v8::Promise::kRejected) {
        try_catch.Reset();
        isolate_->ThrowException(promise->Result());
        ok = false;
      } else {
        reply->set_status(CallReply::EXCEPTION);
        reply->set_error_message(
            "the function returned a Promise that did not settle (functions have no timers or I/O)");
        return;
      }
    }
  }
  if (ok) read_return_value(isolate_, context, names_, f.is_plain_json.Get(isolate_), returned, reply);
  if (try_catch.HasCaught() && !try_catch.HasTerminated()) {
    reply->clear_outputs();
    reply->clear_state_json();
    reply->set_state_change(CallReply::UNCHANGED);
    reply->set_status(CallReply::EXCEPTION);
    v8::Local<v8::Value> exception = try_catch.Exception();
    std::string message;
    if (exception->IsNativeError()) {
      message = to_utf8(isolate_, exception);
    } else {
      v8::Local<v8::String> json;
      v8::TryCatch ignore(isolate_);
      message = "threw " + (v8::JSON::Stringify(context, exception).ToLocal(&json) ? to_utf8(isolate_, json)
                                                                                   : to_utf8(isolate_, exception));
    }
    reply->set_error_message(message);
    std::string details = "{";
    v8::Local<v8::Value> stack;
    if (try_catch.StackTrace(context).ToLocal(&stack) && stack->IsString())
      details += "\"stack\":" + json_quote(to_utf8(isolate_, stack));
    if (auto where = try_catch.Message(); !where.IsEmpty()) {
      if (details.size() > 1) details += ",";
      details += "\"line\":" + std::to_string(where->GetLineNumber(context).FromMaybe(0));
    }
    reply->set_error_details_json(details + "}");
  }
}

void js_host::call(const Call& call, CallReply* reply) {
  reply->set_call_id(call.call_id());
  auto found = functions_.find(call.function_id());
  if (found == functions_.end()) {
    reply->set_status(CallReply::NOT_LOADED);
    reply->set_error_message("function " + std::to_string(call.function_id()) + " is not loaded");
    return;
  }
  function& f = *found->second;
  if (!f.context.IsEmpty()) touch(f);
  if (f.context.IsEmpty()) {
    if (std::string error = instantiate(f); !error.empty()) {
      reply->set_status(CallReply::NOT_LOADED);
      reply->set_error_message("the function could not be reloaded: " + error);
      return;
    }
  }
  current_reply_ = reply;
  log_cap_.reset();
  const uint32_t timeout_ms = call.timeout_ms() ? call.timeout_ms() : limits_.default_timeout_ms;
  // The node's wall-clock backstop holds for calls at the node's CPU limit.
  watchdog_.arm(timeout_ms, timeout_ms == limits_.default_timeout_ms ? limits_.wall_ms : 0);
  run(f, call, reply);
  const bool timed_out = watchdog_.disarm();
  current_reply_ = nullptr;
  if (auto note = log_cap_.dropped_note(); !note.empty()) reply->add_logs(std::move(note));

  if (timed_out || heap_exhausted_ || isolate_->IsExecutionTerminating()) {
    isolate_->CancelTerminateExecution();
    reply->clear_outputs();
    reply->clear_state_json();
    reply->clear_error_details_json();
    reply->set_state_change(CallReply::UNCHANGED);
    if (heap_exhausted_) {
      reply->set_status(CallReply::RESOURCE_EXHAUSTED);
      reply->set_error_message("the call exceeded the heap limit of " + std::to_string(limits_.heap_limit_bytes >> 20) +
                               " MiB");
    } else {
      reply->set_status(CallReply::TIMEOUT);
      reply->set_error_message("the call exceeded its time limit of " + std::to_string(timeout_ms) + " ms");
    }
    // The context may be half-way through anything: rebuild it from source.
    forget_context(f);
    if (heap_exhausted_) {
      heap_exhausted_ = false;
      isolate_->LowMemoryNotification();
      isolate_->RemoveNearHeapLimitCallback(&js_host::near_heap_limit, limits_.heap_limit_bytes);
      isolate_->AddNearHeapLimitCallback(&js_host::near_heap_limit, this);
    }
    instantiate(f);  // a failure shows at the next call as NOT_LOADED
    return;
  }
  if (reply->status() != CallReply::OK) return;
  size_t output_bytes = 0;
  for (auto& output : reply->outputs()) output_bytes += output.size();
  std::string exceeded;
  if (output_bytes > limits_.max_output_bytes)
    exceeded = "the outputs are " + std::to_string(output_bytes) + " bytes, more than the limit of " +
               std::to_string(limits_.max_output_bytes) + " bytes";
  else if (reply->state_json().size() > limits_.max_state_bytes)
    exceeded = "the state is " + std::to_string(reply->state_json().size()) + " bytes, more than the limit of " +
               std::to_string(limits_.max_state_bytes) + " bytes";
  if (!exceeded.empty()) {
    reply->clear_outputs();
    reply->clear_state_json();
    reply->set_state_change(CallReply::UNCHANGED);
    reply->set_status(CallReply::RESOURCE_EXHAUSTED);
    reply->set_error_message(exceeded);
  }
}

}  // namespace flowstate::worker
