#pragma once
// The modules Python functions may import besides the standard library
// (docs/functions.md): every .py file under functions/ and vendor/, named by
// its path under that folder (functions/helpers.py is `helpers`,
// vendor/attr/_make.py is `attr._make`). The Python worker serves them from
// memory; it cannot read the project directory.
#include <cstddef>
#include <set>
#include <string>
#include <vector>

#include "flowstate/runtime/file_source.hpp"
#include "flowstate/runtime/project.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate {

struct python_module {
  std::string name;      // "attr._make"
  std::string filename;  // "vendor/attr/_make.py": named in tracebacks and load errors
  std::string source;    // empty for a folder without __init__.py (a namespace package)
  bool is_package = false;
};

struct python_module_set {
  std::vector<python_module> modules;  // sorted by name
  std::string hash;                    // of names, files and sources: equal sets, equal hashes
  bool empty() const { return modules.empty(); }
};

// Sources of all modules together; more is refused at deploy.
inline constexpr size_t max_python_modules_bytes = size_t{64} << 20;

// The modules of `files`, leaving out the files that `revision`'s
// py.Function blocks run: a function's own file is not a module, so that
// changing one function reloads only it.
result<python_module_set> collect_python_modules(file_source& files, const project_revision& revision);

// The same, leaving out `skip_files` (paths like "functions/counter.py").
// functions/ wins over vendor/ for a name, a package over a module in the
// same folder; paths with a segment that is not an ASCII identifier
// (foo-1.0.dist-info), __pycache__, and files that are not .py are skipped.
result<python_module_set> collect_python_modules(file_source& files, const std::set<std::string>& skip_files,
                                                 size_t max_bytes = max_python_modules_bytes);

}  // namespace flowstate
