#include "check.hpp"

#include <v8.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "compile.hpp"

namespace flowstate::worker {

int check_files(v8::Isolate* isolate, const std::vector<std::string>& files) {
  v8::Isolate::Scope isolate_scope(isolate);
  v8::HandleScope scope(isolate);
  v8::Local<v8::Context> context = v8::Context::New(isolate);
  v8::Context::Scope context_scope(context);
  int failed = 0;
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::printf("%s: cannot be read\n", file.c_str());
      ++failed;
      continue;
    }
    std::stringstream text;
    text << in.rdbuf();
    const std::string source = text.str();
    v8::HandleScope file_scope(isolate);
    v8::TryCatch try_catch(isolate);
    bool ok = looks_like_module(source) ? !compile_module(isolate, file, source).IsEmpty()
                                        : !compile_script(isolate, context, file, source).IsEmpty();
    if (!ok && looks_like_module(source)) {
      // A classic script that only mentions `export` in a comment or string.
      v8::TryCatch script_try(isolate);
      ok = !compile_script(isolate, context, file, source).IsEmpty();
    }
    if (!ok) {
      std::printf("%s\n", format_message(isolate, context, try_catch.Message(), file).c_str());
      ++failed;
    }
  }
  std::fflush(stdout);
  return failed ? 1 : 0;
}

}  // namespace flowstate::worker
