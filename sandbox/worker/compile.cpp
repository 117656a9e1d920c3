#include "compile.hpp"

namespace flowstate::worker {

bool looks_like_module(const std::string& source) {
  return source.find("export") != std::string::npos || source.find("import") != std::string::npos;
}

std::string to_utf8(v8::Isolate* isolate, v8::Local<v8::Value> value) {
  if (value->IsString()) {
    auto text = value.As<v8::String>();
    std::string out(static_cast<size_t>(text->Utf8Length(isolate)), '\0');
    text->WriteUtf8(isolate, out.data(), static_cast<int>(out.size()), nullptr,
                    v8::String::NO_NULL_TERMINATION | v8::String::REPLACE_INVALID_UTF8);
    return out;
  }
  v8::String::Utf8Value text(isolate, value);
  return *text ? std::string(*text, text.length()) : std::string();
}

v8::Local<v8::String> to_v8(v8::Isolate* isolate, const std::string& text) {
  return v8::String::NewFromUtf8(isolate, text.data(), v8::NewStringType::kNormal, static_cast<int>(text.size()))
      .ToLocalChecked();
}

namespace {

// A Source takes ownership of its CachedData object, not of the bytes.
v8::ScriptCompiler::CachedData* borrow(const std::string& code_cache) {
  if (code_cache.empty()) return nullptr;
  return new v8::ScriptCompiler::CachedData(reinterpret_cast<const uint8_t*>(code_cache.data()),
                                            static_cast<int>(code_cache.size()),
                                            v8::ScriptCompiler::CachedData::BufferNotOwned);
}

std::string take(v8::ScriptCompiler::CachedData* data) {
  if (!data) return {};
  std::string bytes(reinterpret_cast<const char*>(data->data), static_cast<size_t>(data->length));
  delete data;
  return bytes;
}

}  // namespace

v8::MaybeLocal<v8::Module> compile_module(v8::Isolate* isolate, const std::string& filename, const std::string& source,
                                          const std::string& code_cache) {
  v8::ScriptOrigin origin(isolate, to_v8(isolate, filename), 0, 0, false, -1, {}, false, false,
                          /*is_module=*/true);
  v8::ScriptCompiler::Source compiler_source(to_v8(isolate, source), origin, borrow(code_cache));
  return v8::ScriptCompiler::CompileModule(
      isolate, &compiler_source,
      code_cache.empty() ? v8::ScriptCompiler::kNoCompileOptions : v8::ScriptCompiler::kConsumeCodeCache);
}

v8::MaybeLocal<v8::Script> compile_script(v8::Isolate* isolate, v8::Local<v8::Context> context,
                                          const std::string& filename, const std::string& source,
                                          const std::string& code_cache) {
  v8::ScriptOrigin origin(isolate, to_v8(isolate, filename));
  v8::ScriptCompiler::Source compiler_source(to_v8(isolate, source), origin, borrow(code_cache));
  return v8::ScriptCompiler::Compile(
      context, &compiler_source,
      code_cache.empty() ? v8::ScriptCompiler::kNoCompileOptions : v8::ScriptCompiler::kConsumeCodeCache);
}

std::string create_code_cache(v8::Local<v8::Module> module) {
  return take(v8::ScriptCompiler::CreateCodeCache(module->GetUnboundModuleScript()));
}

std::string format_message(v8::Isolate* isolate, v8::Local<v8::Context> context, v8::Local<v8::Message> message,
                           const std::string& filename) {
  if (message.IsEmpty()) return filename + ": unknown error";
  std::string text = to_utf8(isolate, message->Get());
  constexpr std::string_view uncaught = "Uncaught ";
  if (text.starts_with(uncaught)) text.erase(0, uncaught.size());
  std::string resource = to_utf8(isolate, message->GetScriptResourceName());
  if (resource.empty() || resource == "undefined") resource = filename;
  int line = message->GetLineNumber(context).FromMaybe(0);
  return resource + ":" + std::to_string(line) + ": " + text;
}

std::string refuse_imports(v8::Isolate* isolate, v8::Local<v8::Context> context, v8::Local<v8::Module> module,
                           const std::string& filename) {
  auto requests = module->GetModuleRequests();
  if (requests->Length() == 0) return {};
  auto request = requests->Get(context, 0).As<v8::ModuleRequest>();
  int line = module->SourceOffsetToLocation(request->GetSourceOffset()).GetLineNumber() + 1;
  return filename + ":" + std::to_string(line) + ": import of \"" + to_utf8(isolate, request->GetSpecifier()) +
         "\" is not supported: imports are bundled at deploy, a worker loads one file";
}

}  // namespace flowstate::worker
