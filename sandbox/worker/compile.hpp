#pragma once
// Compiling function sources in either form, shared by loading and --check.
#include <v8.h>

#include <string>

namespace flowstate::worker {

// Sources mentioning `export` or `import` are tried as ES modules first.
bool looks_like_module(const std::string& source);

// `code_cache`, when not empty, is V8's code cache of the same source (from
// create_code_cache): compiling then skips parsing. A rejected cache is
// simply ignored.
v8::MaybeLocal<v8::Module> compile_module(v8::Isolate* isolate, const std::string& filename, const std::string& source,
                                          const std::string& code_cache = {});
v8::MaybeLocal<v8::Script> compile_script(v8::Isolate* isolate, v8::Local<v8::Context> context,
                                          const std::string& filename, const std::string& source,
                                          const std::string& code_cache = {});

// The code cache of a compiled module or script (includes the functions
// compiled so far, so it is best made after the top-level code ran).
std::string create_code_cache(v8::Local<v8::Module> module);

// "functions/x.js:3: SyntaxError: Unexpected token '}'" from a caught exception.
std::string format_message(v8::Isolate* isolate, v8::Local<v8::Context> context, v8::Local<v8::Message> message,
                           const std::string& filename);

// The first `import` of a module as an error, or empty when it has none.
std::string refuse_imports(v8::Isolate* isolate, v8::Local<v8::Context> context, v8::Local<v8::Module> module,
                           const std::string& filename);

std::string to_utf8(v8::Isolate* isolate, v8::Local<v8::Value> value);
v8::Local<v8::String> to_v8(v8::Isolate* isolate, const std::string& text);

}  // namespace flowstate::worker
