#include "py_host.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "bootstrap.hpp"
#include "determinism.hpp"
#include "json_out.hpp"
#include "py_function.hpp"

namespace flowstate::pyworker {
namespace {

using worker::CallReply;

constexpr size_t max_log_line_bytes = 4096;
const char* const expected_shape =
    R"(expected a dict with "output", "outputs" and/or "state", an (output, state) tuple, or None)";

py_host* the_host = nullptr;
PyObject* time_limit_type = nullptr;

PyObject* write_log(PyObject*, PyObject* arg) {
  if (!PyUnicode_Check(arg)) {
    PyErr_SetString(PyExc_TypeError, "write_log() takes a str");
    return nullptr;
  }
  Py_ssize_t size;
  const char* utf8 = PyUnicode_AsUTF8AndSize(arg, &size);
  if (!utf8) {
    // Lone surrogates: log what can be shown rather than fail the print.
    PyErr_Clear();
    ref bytes(PyUnicode_AsEncodedString(arg, "utf-8", "replace"));
    if (!bytes) return nullptr;
    if (the_host)
      the_host->write_log(PyBytes_AS_STRING(bytes.get()), static_cast<size_t>(PyBytes_GET_SIZE(bytes.get())));
    Py_RETURN_NONE;
  }
  if (the_host) the_host->write_log(utf8, static_cast<size_t>(size));
  Py_RETURN_NONE;
}

PyObject* time_limit_pending(PyObject*, PyObject*) {
  return PyBool_FromLong(the_host && the_host->time_limit_pending());
}

PyMethodDef module_methods[] = {
    {"write_log", write_log, METH_O, "Appends text to the running call's logs."},
    {"time_limit_pending", time_limit_pending, METH_NOARGS, "True while the watchdog wants the call stopped."},
    {nullptr, nullptr, 0, nullptr}};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT,
                          "_flowstate",
                          "Flowstate worker internals.",
                          -1,
                          module_methods,
                          nullptr,
                          nullptr,
                          nullptr,
                          nullptr};

}  // namespace

PyObject* init_flowstate_module() {
  PyObject* module = PyModule_Create(&module_def);
  if (!module) return nullptr;
  time_limit_type =
      PyErr_NewExceptionWithDoc("_flowstate.TimeLimitExceeded",
                                "The call ran past its time limit (a BaseException: not caught by `except Exception`).",
                                PyExc_BaseException, nullptr);
  if (!time_limit_type || PyModule_AddObjectRef(module, "TimeLimitExceeded", time_limit_type) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}

struct py_host::outcome {
  CallReply::Status status = CallReply::OK;
  std::vector<std::string> outputs;
  CallReply::StateChange state_change = CallReply::UNCHANGED;
  std::string state_json, error_message, error_details_json;
  bool timed_out = false;
  bool out_of_memory = false;

  void fail(CallReply::Status s, std::string message) {
    status = s;
    outputs.clear();
    state_change = CallReply::UNCHANGED;
    state_json.clear();
    error_message = std::move(message);
  }
};

PyObject* py_host::time_limit_exceeded() { return time_limit_type; }

py_host::py_host(sandbox::limits limits, connection& conn)
    : limits_(limits), conn_(conn), log_cap_(limits.max_log_bytes, max_log_line_bytes) {
  the_host = this;
  ref code(Py_CompileString(bootstrap_source, "<flowstate bootstrap>", Py_file_input));
  if (code) boot_ = PyImport_ExecCodeModule("_flowstate_boot", code.get());
  if (!boot_) {
    PyErr_Print();
    startup_error_ = "the worker's bootstrap failed (see stderr)";
    return;
  }
  ref determinism_code(Py_CompileString(determinism_source, "<flowstate determinism>", Py_file_input));
  ref determinism(determinism_code ? PyImport_ExecCodeModule("_flowstate_determinism", determinism_code.get())
                                   : nullptr);
  if (!determinism) {
    PyErr_Print();
    startup_error_ = "the worker's determinism module failed (see stderr)";
    return;
  }
  ref json(PyImport_ImportModule("json"));
  if (json) json_loads_ = PyObject_GetAttrString(json.get(), "loads");
  begin_call_ = PyObject_GetAttrString(determinism.get(), "begin_call");
  context_type_ = PyObject_GetAttrString(boot_, "Context");
  format_exception_ = PyObject_GetAttrString(boot_, "format_exception");
  format_exception_only_ = PyObject_GetAttrString(boot_, "format_exception_only");
  activate_ = PyObject_GetAttrString(boot_, "activate");
  describe_load_error_ = PyObject_GetAttrString(boot_, "describe_load_error");
  if (!json_loads_ || !begin_call_ || !context_type_ || !format_exception_ || !format_exception_only_ || !activate_ ||
      !describe_load_error_) {
    PyErr_Print();
    startup_error_ = "the worker's bootstrap is missing a name (see stderr)";
    return;
  }
  main_thread_ = pthread_self();
  watchdog_ = std::make_unique<watchdog>(
      pthread_self(), [this] { interrupt(); }, [this] { abandon(); });
}

py_host::~py_host() {
  watchdog_.reset();
  functions_.clear();
  for (auto& [_, modules] : module_sets_) Py_DECREF(modules);
  module_sets_.clear();
  Py_XDECREF(activate_);
  Py_XDECREF(describe_load_error_);
  Py_XDECREF(json_loads_);
  Py_XDECREF(begin_call_);
  Py_XDECREF(context_type_);
  Py_XDECREF(format_exception_);
  Py_XDECREF(format_exception_only_);
  Py_XDECREF(boot_);
  the_host = nullptr;
}

bool py_host::time_limit_pending() const { return stop_requested_.load(std::memory_order_relaxed); }

// A real SIGINT to the main thread: it ends a blocking system call (sleep)
// with EINTR, and Python's C handler makes the interpreter run the bootstrap's
// handler, which raises TimeLimitExceeded, at its next check.
void py_host::interrupt() {
  stop_requested_ = true;
  ::pthread_kill(main_thread_, SIGINT);
}

void py_host::abandon() {
  reply_mutex_.lock();  // held until the process ends
  int expected = running;
  if (!guard_.compare_exchange_strong(expected, abandoned)) {
    reply_mutex_.unlock();
    return;
  }
  std::string why = "exceeded its time limit of " + std::to_string(guarded_cpu_ms_) +
                    " ms and could not be interrupted (stuck inside C code); its worker was replaced";
  if (guarded_call_) {
    guarded_call_->clear_outputs();
    guarded_call_->clear_state_json();
    guarded_call_->clear_error_details_json();
    guarded_call_->set_state_change(CallReply::UNCHANGED);
    guarded_call_->set_status(CallReply::TIMEOUT);
    guarded_call_->set_error_message("the call " + why);
  }
  if (guarded_load_) {
    guarded_load_->set_ok(false);
    guarded_load_->set_error_message("its top-level code " + why);
  }
  conn_.flush();
  ::_exit(0);
}

void py_host::begin_guarded(CallReply* call_reply, worker::LoadReply* load_reply, uint32_t cpu_ms, uint32_t wall_ms) {
  {
    std::lock_guard lock(reply_mutex_);
    guarded_call_ = call_reply;
    guarded_load_ = load_reply;
    guarded_cpu_ms_ = cpu_ms;
    partial_line_.clear();
    log_cap_.reset();
    stop_requested_ = false;
    guard_ = running;
  }
  watchdog_->arm(cpu_ms, wall_ms);
}

bool py_host::end_guarded() {
  const bool fired = watchdog_->disarm();
  flush_log_line();
  std::lock_guard lock(reply_mutex_);  // blocks for good if abandon() took the call
  guard_ = idle;
  stop_requested_ = false;
  if (auto note = log_cap_.dropped_note(); guarded_call_ && !note.empty()) guarded_call_->add_logs(std::move(note));
  guarded_call_ = nullptr;
  guarded_load_ = nullptr;
  return fired;
}

void py_host::write_log(const char* text, size_t size) {
  if (guard_.load(std::memory_order_relaxed) != running) return;
  while (size > 0) {
    const char* newline = static_cast<const char*>(std::memchr(text, '\n', size));
    size_t piece = newline ? static_cast<size_t>(newline - text) : size;
    if (partial_line_.size() < max_log_line_bytes + 1)
      partial_line_.append(text, std::min(piece, max_log_line_bytes + 1 - partial_line_.size()));
    if (!newline) break;
    flush_log_line();
    text += piece + 1;
    size -= piece + 1;
  }
}

void py_host::flush_log_line() {
  if (partial_line_.empty()) return;
  std::string line = std::move(partial_line_);
  partial_line_.clear();
  std::lock_guard lock(reply_mutex_);
  if (!guarded_call_) return;
  if (auto kept = log_cap_.admit(std::move(line))) guarded_call_->add_logs(std::move(*kept));
}

std::string py_host::activate(uint64_t set_id) {
  if (set_id == active_set_) return {};
  PyObject* modules = Py_None;
  if (set_id) {
    auto found = module_sets_.find(set_id);
    if (found == module_sets_.end()) return "its module set " + std::to_string(set_id) + " is not loaded";
    modules = found->second;
  }
  ref done(PyObject_CallOneArg(activate_, modules));
  if (!done) {
    ref text;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    ref type_ref(type), value_ref(value), tb_ref(tb);
    if (value) text.p = PyObject_CallOneArg(format_exception_only_, value);
    PyErr_Clear();
    return "switching module sets failed: " + (text ? utf8_of(text.get()) : std::string("?"));
  }
  active_set_ = set_id;
  return {};
}

void py_host::load_modules(const worker::LoadFunction& request, worker::LoadReply* reply) {
  ref modules(PyDict_New());
  for (const auto& m : request.modules()) {
    ref entry(Py_BuildValue("(s#y#O)", m.filename().data(), static_cast<Py_ssize_t>(m.filename().size()),
                            m.source().data(), static_cast<Py_ssize_t>(m.source().size()),
                            m.is_package() ? Py_True : Py_False));
    if (!modules || !entry || PyDict_SetItemString(modules.get(), m.name().c_str(), entry.get()) < 0) {
      PyErr_Clear();
      reply->set_ok(false);
      reply->set_error_message(m.filename() + ": cannot be kept (out of memory?)");
      return;
    }
  }
  unload(request.function_id());  // a replaced active set's modules leave sys.modules
  module_sets_[request.function_id()] = modules.p;
  modules.p = nullptr;
  reply->set_ok(true);
}

void py_host::load(const worker::LoadFunction& request, worker::LoadReply* reply) {
  reply->set_function_id(request.function_id());
  if (request.defines_modules()) return load_modules(request, reply);
  auto f = std::make_unique<function>();
  f->id = request.function_id();
  f->module_set = request.module_set();
  f->name = request.name().empty() ? "function" : request.name();
  f->filename = request.filename().empty() ? f->name + ".py" : request.filename();
  f->module_name = "functions." + f->name;
  f->source = request.source();
  begin_guarded(nullptr, reply, limits_.cpu_ms_per_call, limits_.wall_ms());
  std::string error = activate(f->module_set);
  if (!error.empty())
    error = f->filename + ": " + error;
  else
    error = instantiate(*f);
  end_guarded();
  if (!error.empty()) {
    functions_.erase(request.function_id());
    reply->set_ok(false);
    reply->set_error_message(std::move(error));
    return;
  }
  functions_[request.function_id()] = std::move(f);
  reply->set_ok(true);
}

void py_host::unload(uint64_t function_id) {
  functions_.erase(function_id);
  auto set = module_sets_.find(function_id);
  if (set == module_sets_.end()) return;
  if (active_set_ == function_id) (void)activate(0);
  Py_DECREF(set->second);
  module_sets_.erase(set);
}

void py_host::describe_exception(outcome& result) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  if (value && tb) PyException_SetTraceback(value, tb);
  ref type_ref(type), value_ref(value), tb_ref(tb);
  if (PyErr_GivenExceptionMatches(type, time_limit_type)) {
    result.timed_out = true;
    return;
  }
  if (PyErr_GivenExceptionMatches(type, PyExc_MemoryError)) {
    result.out_of_memory = true;
    return;
  }
  std::string name = type ? reinterpret_cast<PyTypeObject*>(type)->tp_name : "exception";
  ref message(value ? PyObject_CallOneArg(format_exception_only_, value) : nullptr);
  if (!message) PyErr_Clear();
  ref traceback(value ? PyObject_CallOneArg(format_exception_, value) : nullptr);
  if (!traceback) PyErr_Clear();
  result.fail(CallReply::EXCEPTION, message ? utf8_of(message.get()) : name);
  if (traceback) result.error_details_json = "{\"traceback\":" + json_quote(utf8_of(traceback.get())) + "}";
}

void py_host::read_return_value(PyObject* returned, outcome& result) {
  if (returned == Py_None) return;  // a filter, state unchanged
  PyObject *output = nullptr, *outputs = nullptr, *state = nullptr;
  bool has_state = false;
  if (PyTuple_Check(returned) && PyTuple_GET_SIZE(returned) == 2) {
    output = PyTuple_GET_ITEM(returned, 0);
    if (output == Py_None) output = nullptr;  // (None, state): nothing flows on
    state = PyTuple_GET_ITEM(returned, 1);
    has_state = true;
  } else if (PyDict_Check(returned)) {
    Py_ssize_t position = 0;
    PyObject *key, *item;
    while (PyDict_Next(returned, &position, &key, &item)) {
      std::string name = PyUnicode_Check(key) ? utf8_of(key) : std::string();
      if (name == "output") {
        output = item;
      } else if (name == "outputs") {
        outputs = item;
      } else if (name == "state") {
        state = item;
        has_state = true;
      } else if (PyUnicode_Check(key)) {
        return result.fail(CallReply::EXCEPTION,
                           std::string(expected_shape) + ", got a dict with the key " + json_quote(name));
      } else {
        return result.fail(CallReply::EXCEPTION,
                           std::string(expected_shape) + ", got a dict with a key that is " + describe_type(key));
      }
    }
    if (output && outputs)
      return result.fail(
          CallReply::EXCEPTION,
          std::string(expected_shape) + R"(, got both "output" and "outputs" (use "outputs" for several messages))");
  } else {
    return result.fail(CallReply::EXCEPTION, std::string(expected_shape) + ", got " + describe_type(returned));
  }

  size_t output_bytes = 0;
  auto add_output = [&](PyObject* value, const std::string& where) -> bool {
    std::string text;
    std::string problem = to_json(
        value, where, limits_.max_output_bytes - std::min<size_t>(output_bytes, limits_.max_output_bytes), text);
    if (!problem.empty()) {
      if (output_bytes + text.size() > limits_.max_output_bytes)
        result.fail(CallReply::RESOURCE_EXHAUSTED,
                    "the outputs are more than the limit of " + std::to_string(limits_.max_output_bytes) + " bytes");
      else
        result.fail(CallReply::EXCEPTION, where + " must be JSON, got " + problem);
      return false;
    }
    output_bytes += text.size();
    if (output_bytes > limits_.max_output_bytes) {
      result.fail(CallReply::RESOURCE_EXHAUSTED,
                  "the outputs are more than the limit of " + std::to_string(limits_.max_output_bytes) + " bytes");
      return false;
    }
    result.outputs.push_back(std::move(text));
    return true;
  };
  if (output && !add_output(output, "output")) return;
  if (outputs) {
    if (!PyList_Check(outputs) && !PyTuple_Check(outputs))
      return result.fail(CallReply::EXCEPTION, "\"outputs\" must be a list, got " + describe_type(outputs));
    bool list = PyList_Check(outputs);
    Py_ssize_t n = list ? PyList_GET_SIZE(outputs) : PyTuple_GET_SIZE(outputs);
    for (Py_ssize_t i = 0; i < n; ++i) {
      PyObject* item = list ? PyList_GET_ITEM(outputs, i) : PyTuple_GET_ITEM(outputs, i);
      if (!add_output(item, "outputs[" + std::to_string(i) + "]")) return;
    }
  }
  if (has_state) {
    if (state == Py_None) {
      result.state_change = CallReply::DELETE;
    } else {
      std::string problem = to_json(state, "state", limits_.max_state_bytes, result.state_json);
      if (result.state_json.size() > limits_.max_state_bytes)
        return result.fail(CallReply::RESOURCE_EXHAUSTED,
                           "the state is more than the limit of " + std::to_string(limits_.max_state_bytes) + " bytes");
      if (!problem.empty()) return result.fail(CallReply::EXCEPTION, "state must be JSON, got " + problem);
      result.state_change = CallReply::SET;
    }
  }
}

void py_host::run(function& f, const worker::Call& call, outcome& result) {
  const worker::CallContext& ctx = call.ctx();
  ref message_id(
      PyUnicode_FromStringAndSize(ctx.message_id().data(), static_cast<Py_ssize_t>(ctx.message_id().size())));
  if (!message_id) return describe_exception(result);
  ref seeded(PyObject_CallFunction(begin_call_, "OL", message_id.get(), static_cast<long long>(ctx.time_ms())));
  if (!seeded) return describe_exception(result);
  // A new module namespace for every call: nothing a call leaves in its
  // module's globals reaches another call or key.
  namespace_ref globals(new_namespace(f));
  if (!globals) return describe_exception(result);
  bool pass_ctx = true;
  PyObject* entry = find_entrypoint(f, globals.get(), pass_ctx);
  if (!entry) return result.fail(CallReply::EXCEPTION, entrypoint_problem(f, globals.get()));

  ref input_text(
      PyBytes_FromStringAndSize(call.input_json().data(), static_cast<Py_ssize_t>(call.input_json().size())));
  ref input(input_text ? PyObject_CallOneArg(json_loads_, input_text.get()) : nullptr);
  if (!input) {
    if (PyErr_ExceptionMatches(PyExc_ValueError)) {
      PyErr_Clear();
      return result.fail(CallReply::EXCEPTION, "the input is not valid JSON");
    }
    return describe_exception(result);
  }
  ref state;
  if (call.has_state()) {
    ref state_text(
        PyBytes_FromStringAndSize(call.state_json().data(), static_cast<Py_ssize_t>(call.state_json().size())));
    state.p = state_text ? PyObject_CallOneArg(json_loads_, state_text.get()) : nullptr;
    if (!state) {
      if (PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
        return result.fail(CallReply::EXCEPTION, "the state is not valid JSON");
      }
      return describe_exception(result);
    }
  } else {
    Py_INCREF(Py_None);
    state.p = Py_None;
  }
  ref ctx_object;
  if (pass_ctx) {
    ctx_object.p =
        PyObject_CallFunction(context_type_, "s#s#s#s#s#L", ctx.key().data(), (Py_ssize_t)ctx.key().size(),
                              ctx.flow().data(), (Py_ssize_t)ctx.flow().size(), ctx.block().data(),
                              (Py_ssize_t)ctx.block().size(), ctx.revision().data(), (Py_ssize_t)ctx.revision().size(),
                              ctx.message_id().data(), (Py_ssize_t)ctx.message_id().size(), (long long)ctx.time_ms());
    if (!ctx_object) return describe_exception(result);
  }
  PyObject* args[] = {input.get(), state.get(), ctx_object.get()};
  ref returned(PyObject_Vectorcall(entry, args, pass_ctx ? 3 : 2, nullptr));
  if (!returned) return describe_exception(result);
  read_return_value(returned.get(), result);
}

void py_host::call(const worker::Call& call, CallReply* reply) {
  reply->set_call_id(call.call_id());
  auto found = functions_.find(call.function_id());
  if (found == functions_.end()) {
    reply->set_status(CallReply::NOT_LOADED);
    reply->set_error_message("function " + std::to_string(call.function_id()) + " is not loaded");
    return;
  }
  function& f = *found->second;
  const uint32_t cpu_ms = call.timeout_ms() ? call.timeout_ms() : limits_.cpu_ms_per_call;
  // The node's wall-clock backstop holds for calls at the node's CPU limit.
  const uint32_t wall_ms = cpu_ms == limits_.cpu_ms_per_call ? limits_.wall_ms() : 2 * cpu_ms;
  outcome result;
  begin_guarded(reply, nullptr, cpu_ms, wall_ms);
  std::string reload_error = activate(f.module_set);
  if (reload_error.empty() && !f.code) reload_error = instantiate(f);
  if (reload_error.empty()) run(f, call, result);
  const bool fired = end_guarded();
  if (!reload_error.empty()) {
    reply->set_status(CallReply::NOT_LOADED);
    reply->set_error_message("the function could not be reloaded: " + reload_error);
    return;
  }
  if (fired || result.timed_out) {
    result.fail(CallReply::TIMEOUT, "the call exceeded its time limit of " + std::to_string(cpu_ms) + " ms" +
                                        (fired && !watchdog_->fired_on_cpu() ? " (wall clock)" : " of CPU time"));
    result.error_details_json.clear();
  } else if (result.out_of_memory) {
    result.fail(CallReply::RESOURCE_EXHAUSTED,
                "the call ran out of memory (the worker's limit is " + std::to_string(limits_.memory_mb) + " MiB)");
    result.error_details_json.clear();
  }
  if (result.timed_out || fired || result.out_of_memory) {
    // Imported modules may be half-way through anything: compile the
    // function again and check its top-level code before the next call.
    f.discard();
  }
  reply->set_status(result.status);
  for (auto& output : result.outputs) reply->add_outputs(std::move(output));
  reply->set_state_change(result.state_change);
  if (result.state_change == CallReply::SET) reply->set_state_json(std::move(result.state_json));
  if (!result.error_message.empty()) reply->set_error_message(std::move(result.error_message));
  if (!result.error_details_json.empty()) reply->set_error_details_json(std::move(result.error_details_json));
}

}  // namespace flowstate::pyworker
