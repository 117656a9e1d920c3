#include "json_out.hpp"

#include <charconv>
#include <cmath>

namespace flowstate::pyworker {
namespace {

constexpr int max_depth = 500;

struct problem {
  std::string what;  // empty: none
  std::string path;  // below the value given to to_json
};

// Appends a str's JSON literal; false for a str that is not valid Unicode
// (a lone surrogate).
bool append_str(PyObject* text, std::string& out) {
  Py_ssize_t size;
  const char* utf8 = PyUnicode_AsUTF8AndSize(text, &size);
  if (!utf8) {
    PyErr_Clear();
    return false;
  }
  flowstate::append_json_string(out, std::string_view(utf8, static_cast<std::size_t>(size)));
  return true;
}

problem encode(PyObject* value, int depth, size_t max_bytes, std::string& out) {
  if (out.size() > max_bytes) return {"more than " + std::to_string(max_bytes) + " bytes of JSON", ""};
  if (depth > max_depth) return {"nesting deeper than " + std::to_string(max_depth) + " levels (a cycle?)", ""};
  if (value == Py_None) {
    out += "null";
  } else if (value == Py_True) {
    out += "true";
  } else if (value == Py_False) {
    out += "false";
  } else if (PyUnicode_Check(value)) {
    if (!append_str(value, out)) return {"a str that is not valid Unicode (a lone surrogate)", ""};
  } else if (PyLong_Check(value)) {
    int overflow = 0;
    long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (!overflow) {
      char buffer[24];
      auto end = std::to_chars(buffer, buffer + sizeof buffer, n).ptr;
      out.append(buffer, end);
    } else {
      // Past int64: up to 2^64-1 is still a number the node reads; beyond
      // that JSON would carry it but no reader here keeps it exact.
      unsigned long long u = overflow > 0 ? PyLong_AsUnsignedLongLong(value) : 0;
      if (overflow < 0 || PyErr_Occurred()) {
        PyErr_Clear();
        return {
            "an int beyond 64 bits (below -2^63 or above 2^64-1): send it as a str, or as a float if an "
            "approximation will do",
            ""};
      }
      char buffer[24];
      auto end = std::to_chars(buffer, buffer + sizeof buffer, u).ptr;
      out.append(buffer, end);
    }
  } else if (PyFloat_Check(value)) {
    double d = PyFloat_AS_DOUBLE(value);
    if (std::isnan(d)) return {"NaN", ""};
    if (std::isinf(d)) return {d > 0 ? "Infinity" : "-Infinity", ""};
    char* text = PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, nullptr);
    if (!text) {
      PyErr_Clear();
      return {"a float that cannot be written", ""};
    }
    out += text;
    PyMem_Free(text);
  } else if (PyList_Check(value) || PyTuple_Check(value)) {
    bool list = PyList_Check(value);
    out += '[';
    for (Py_ssize_t i = 0; i < (list ? PyList_GET_SIZE(value) : PyTuple_GET_SIZE(value)); ++i) {
      if (i > 0) out += ',';
      PyObject* item = list ? PyList_GET_ITEM(value, i) : PyTuple_GET_ITEM(value, i);
      Py_INCREF(item);  // user code cannot run here, but stay safe with lists
      problem p = encode(item, depth + 1, max_bytes, out);
      Py_DECREF(item);
      if (!p.what.empty()) return {p.what, "[" + std::to_string(i) + "]" + p.path};
    }
    out += ']';
  } else if (PyDict_Check(value)) {
    out += '{';
    Py_ssize_t position = 0;
    PyObject *key, *item;
    bool first = true;
    while (PyDict_Next(value, &position, &key, &item)) {
      if (!first) out += ',';
      first = false;
      std::string name;
      if (PyUnicode_Check(key)) {
        if (!append_str(key, out)) return {"a key that is not valid Unicode (a lone surrogate)", ""};
      } else if (PyLong_Check(key) && !PyBool_Check(key)) {
        PyObject* text = PyLong_Type.tp_repr(key);
        if (!text) {
          PyErr_Clear();
          return {"an int key too large to write", ""};
        }
        append_str(text, out);
        Py_DECREF(text);
      } else {
        return {"a dict key that is " + describe_type(key) + " (JSON keys are strings)", ""};
      }
      out += ':';
      Py_INCREF(item);
      problem p = encode(item, depth + 1, max_bytes, out);
      Py_DECREF(item);
      if (!p.what.empty()) {
        std::string label;
        if (PyUnicode_Check(key)) {
          const char* utf8 = PyUnicode_AsUTF8(key);
          if (utf8)
            label = utf8;
          else
            PyErr_Clear();
        } else {
          label = "<int key>";
        }
        return {p.what, "." + label + p.path};
      }
    }
    out += '}';
  } else {
    return {describe_type(value), ""};
  }
  return {};
}

}  // namespace

std::string describe_type(PyObject* value) {
  if (value == Py_None) return "None";
  if (PyBool_Check(value)) return "a bool";
  if (PyTuple_Check(value)) {
    Py_ssize_t n = PyTuple_GET_SIZE(value);
    return "a tuple of " + std::to_string(n) + (n == 1 ? " item" : " items");
  }
  std::string name = Py_TYPE(value)->tp_name;
  if (auto dot = name.rfind('.'); dot != std::string::npos) name = name.substr(dot + 1);
  bool vowel = !name.empty() && std::string("aeiouAEIOU").find(name[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + name;
}

std::string to_json(PyObject* value, const std::string& where, size_t max_bytes, std::string& out) {
  problem p = encode(value, 0, max_bytes, out);
  if (p.what.empty()) return {};
  return p.what + " at " + where + p.path;
}

}  // namespace flowstate::pyworker
