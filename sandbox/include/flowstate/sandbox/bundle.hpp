#pragma once
// Bundling a JS function with the npm packages it imports (docs/functions.md),
// done once at deploy: a worker loads one self-contained file.
#include <string>

#include "flowstate/runtime/result.hpp"

namespace flowstate::sandbox {

struct bundle {
  std::string source;    // what the worker loads
  bool bundled = false;  // false: the source had no import/require and is returned unchanged
};

// `function_file` is relative to `project_dir` ("functions/x.js"); `source`
// is its text (from the working tree or a commit). A source without
// `import`/`require(` comes back unchanged and no process runs. Otherwise
// Debian's esbuild bundles it, resolving packages from
// project_dir/node_modules and relative imports from the function's folder.
// Refused, naming the file and the import:
//   functions/x.js: cannot import "fs": Node built-ins are not available to functions
//   functions/x.js: package "left-pad" not found in node_modules
// Blocks while esbuild runs (tens of ms): call it off the actor threads.
result<bundle> bundle_js(const std::string& project_dir, const std::string& function_file, const std::string& source);

}  // namespace flowstate::sandbox

namespace flowstate::sandbox {

// A custom driver's npm package (docs/drivers.md "Custom drivers") with its
// dependencies, bundled by esbuild for Node.js (CommonJS; Node built-ins
// stay imports), from project_dir/node_modules. `driver_file` names the
// driver file in errors. Blocks while esbuild runs.
result<std::string> bundle_driver(const std::string& project_dir, const std::string& package,
                                  const std::string& driver_file);

}  // namespace flowstate::sandbox
