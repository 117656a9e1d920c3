#pragma once
#include "flowstate/runtime/json_text.hpp"
// Python values to JSON text, refusing what JSON cannot say (NaN, Infinity,
// sets, bytes, objects, cycles) with a description of what and where.
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <string>

namespace flowstate::pyworker {

// Appends the JSON text of `value` to `out`. On failure returns what came and
// where below `where` ("a set at output.items[2]"); stops once `out` is longer
// than `max_bytes` and reports the size.
std::string to_json(PyObject* value, const std::string& where, size_t max_bytes, std::string& out);

// "a list", "an int", "a tuple of 3 items", "a Decimal" ...
std::string describe_type(PyObject* value);

// A JSON string literal of UTF-8 text.
using flowstate::json_quote;

}  // namespace flowstate::pyworker
