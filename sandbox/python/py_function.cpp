// A Python function's code: compiled once at load, its top-level code run
// in a new namespace for every call (docs/functions.md, "What is shared
// between calls").
#include <string>

#include "json_out.hpp"
#include "py_function.hpp"

namespace flowstate::pyworker {

std::string py_host::instantiate(function& f) {
  f.discard();
  ref code(Py_CompileStringExFlags(f.source.c_str(), f.filename.c_str(), Py_file_input, nullptr, -1));
  if (!code) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    ref type_ref(type), value_ref(value), tb_ref(tb);
    std::string error;
    if (value && PyErr_GivenExceptionMatches(type, PyExc_SyntaxError)) {
      ref line(PyObject_GetAttrString(value, "lineno"));
      ref msg(PyObject_GetAttrString(value, "msg"));
      PyErr_Clear();
      long lineno = line && PyLong_Check(line.get()) ? PyLong_AsLong(line.get()) : 0;
      error = f.filename + ":" + std::to_string(lineno) + ": " + reinterpret_cast<PyTypeObject*>(type)->tp_name + ": " +
              utf8_of(msg.get());
    } else {
      ref text(value ? PyObject_CallOneArg(format_exception_only_, value) : nullptr);
      PyErr_Clear();
      error = f.filename + ": " + (text ? utf8_of(text.get()) : "cannot be compiled");
    }
    return error;
  }
  f.code = code.p;
  code.p = nullptr;

  // The top-level code runs once now, so that its errors refuse the load.
  ref seeded(PyObject_CallFunction(begin_call_, "sL", "load", 0LL));
  if (!seeded) PyErr_Clear();
  ref globals(new_namespace(f));
  if (!globals) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value && tb) PyException_SetTraceback(value, tb);
    ref type_ref(type), value_ref(value), tb_ref(tb);
    std::string error;
    if (stop_requested_ || PyErr_GivenExceptionMatches(type, time_limit_exceeded())) {
      error = f.filename + ": its top-level code exceeded the time limit of " + std::to_string(guarded_cpu_ms_) + " ms";
    } else {
      ref text(value ? PyObject_CallFunction(describe_load_error_, "Os", value, f.filename.c_str()) : nullptr);
      PyErr_Clear();
      error = text ? utf8_of(text.get()) : f.filename + ": " + reinterpret_cast<PyTypeObject*>(type)->tp_name;
    }
    f.discard();
    return error;
  }
  bool pass_ctx = true;
  std::string error =
      find_entrypoint(f, globals.get(), pass_ctx) ? std::string() : entrypoint_problem(f, globals.get());
  PyDict_Clear(globals.get());  // functions and their globals form cycles
  if (!error.empty()) f.discard();
  return error;
}

PyObject* py_host::new_namespace(function& f) {
  // A module object in sys.modules, as for an imported module: dataclasses,
  // pickle and typing look classes' modules up there.
  ref module(PyModule_New(f.module_name.c_str()));
  if (!module) return nullptr;
  ref globals(PyModule_GetDict(module.get()));
  Py_XINCREF(globals.get());
  ref file(PyUnicode_FromString(f.filename.c_str()));
  if (!globals || !file || PyDict_SetItemString(globals.get(), "__file__", file.get()) < 0 ||
      PyDict_SetItemString(globals.get(), "__builtins__", PyEval_GetBuiltins()) < 0 ||
      PyDict_SetItemString(PyImport_GetModuleDict(), f.module_name.c_str(), module.get()) < 0)
    return nullptr;
  ref result(PyEval_EvalCode(f.code, globals.get(), globals.get()));
  if (!result) {
    PyDict_Clear(globals.get());
    return nullptr;
  }
  PyObject* out = globals.p;
  globals.p = nullptr;
  return out;
}

PyObject* py_host::find_entrypoint(function& f, PyObject* globals, bool& pass_ctx) {
  PyObject* entry = PyDict_GetItemString(globals, "entrypoint");
  if (!entry || !PyCallable_Check(entry)) return nullptr;
  pass_ctx = true;
  if (PyFunction_Check(entry)) {
    auto* fn_code = reinterpret_cast<PyCodeObject*>(PyFunction_GET_CODE(entry));
    const int positional = fn_code->co_argcount;
    const bool varargs = fn_code->co_flags & CO_VARARGS;
    if (positional < 2 && !varargs) return nullptr;
    pass_ctx = positional >= 3 || varargs;
  }
  return entry;
}

std::string py_host::entrypoint_problem(function& f, PyObject* globals) {
  PyObject* entry = PyDict_GetItemString(globals, "entrypoint");
  if (!entry || !PyCallable_Check(entry)) {
    std::string found = entry ? ", found " + describe_type(entry) : ", found none";
    return f.filename + ": expected `def entrypoint(input, state[, ctx])`" + found;
  }
  auto* fn_code = reinterpret_cast<PyCodeObject*>(PyFunction_GET_CODE(entry));
  const int positional = fn_code->co_argcount;
  return f.filename + ":" + std::to_string(fn_code->co_firstlineno) + ": entrypoint takes " +
         std::to_string(positional) + " positional argument" + (positional == 1 ? "" : "s") +
         ", expected (input, state[, ctx])";
}

}  // namespace flowstate::pyworker
