#pragma once
// Private to the Python worker: owned references, and a loaded function.
#include "py_host.hpp"

namespace flowstate::pyworker {

// Owns one reference.
struct ref {
  PyObject* p = nullptr;
  ref() = default;
  explicit ref(PyObject* o) : p(o) {}
  ref(const ref&) = delete;
  ref& operator=(const ref&) = delete;
  ~ref() { Py_XDECREF(p); }
  PyObject* get() const { return p; }
  explicit operator bool() const { return p != nullptr; }
};

// A call's module namespace: cleared when the call ends, which breaks the
// cycles between it and the functions defined in it.
struct namespace_ref : ref {
  using ref::ref;
  ~namespace_ref() {
    if (p) PyDict_Clear(p);
  }
};

// The UTF-8 of a str, or "" (error cleared) when it has none.
inline std::string utf8_of(PyObject* text) {
  if (!text || !PyUnicode_Check(text)) return {};
  Py_ssize_t size;
  const char* utf8 = PyUnicode_AsUTF8AndSize(text, &size);
  if (!utf8) {
    PyErr_Clear();
    return {};
  }
  return std::string(utf8, static_cast<size_t>(size));
}

struct py_host::function {
  uint64_t id = 0;
  uint64_t module_set = 0;  // the module set it imports from; 0: none
  std::string name, filename, module_name, source;
  // Compiled once; its top-level code runs in a new namespace for every call.
  PyObject* code = nullptr;

  void discard() {
    if (code && PyDict_GetItemString(PyImport_GetModuleDict(), module_name.c_str()))
      PyDict_DelItemString(PyImport_GetModuleDict(), module_name.c_str());
    Py_CLEAR(code);
  }
  ~function() { discard(); }
};

}  // namespace flowstate::pyworker
