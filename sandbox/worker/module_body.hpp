#pragma once
// A function's source as the body of a JS function that runs its top-level
// code and returns its entry point. The worker calls that function once per
// call, so module-level variables start afresh for every call and key
// (docs/functions.md, "What is shared between calls"); calling it costs a
// few µs, where compiling a module again per call costs about a hundred.
#include <optional>
#include <string>

namespace flowstate::worker {

// An ES module V8 has accepted (and whose imports were refused): its
// `export` keywords are taken out (`export default function (` gets a name)
// and `return <the default export>;` is appended, in strict mode. Lines keep
// their numbers, so errors and stacks name the same lines. Empty when the
// source has no default export or uses what this scanner does not rewrite
// (`export * from`, `export ... from`, a construct it cannot follow): the
// caller then compiles the module again for every call instead. The result
// may still fail to compile as a function body (top-level `await`,
// `import.meta`): the same fallback holds.
std::optional<std::string> module_as_function_body(const std::string& source);

// A classic script with a global `function entrypoint`: returns it (or
// undefined) at the end; sloppy mode, as a script.
std::string script_as_function_body(const std::string& source);

// The name module_as_function_body gives an anonymous default export.
inline constexpr const char* anonymous_default_name = "__flowstate_default";

}  // namespace flowstate::worker
