#include "return_value.hpp"

#include <cmath>
#include <string>
#include <vector>

namespace flowstate::worker {
namespace {

constexpr int max_depth = 1000;

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

// JSON pointer escaping of one key.
void append_key(std::string& path, const std::string& key) {
  path += '/';
  for (char c : key) {
    if (c == '~')
      path += "~0";
    else if (c == '/')
      path += "~1";
    else
      path += c;
  }
}

// Walks a value the way JSON.stringify would, but refuses what stringify
// would silently change or drop: NaN, Infinity, BigInt, functions, symbols,
// undefined in arrays, cycles, and objects that are not plain data. The path
// is kept as handles and spelled out only for an error.
class json_checker {
 public:
  json_checker(v8::Isolate* isolate, v8::Local<v8::Context> context, bool enabled)
      : isolate_(isolate), context_(context), enabled_(enabled) {}

  // Empty when `value` is JSON data, else "NaN at /body/x".
  std::string check(v8::Local<v8::Value> value) {
    if (!enabled_) return {};
    path_.clear();
    problem_.clear();
    walk(value, 0);
    return problem_;
  }

 private:
  struct step {
    v8::Local<v8::Value> key;  // empty for an array index
    uint32_t index = 0;
  };

  bool fail(std::string what) {
    std::string path;
    for (auto& s : path_) {
      if (s.key.IsEmpty())
        path += "/" + std::to_string(s.index);
      else
        append_key(path, to_utf8(isolate_, s.key));
    }
    problem_ = std::move(what) + " at " + (path.empty() ? std::string("the top level") : path);
    return false;
  }

  bool walk(v8::Local<v8::Value> value, int depth) {
    if (value->IsString() || value->IsNull() || value->IsBoolean()) return true;
    if (value->IsNumber()) {
      double number = value.As<v8::Number>()->Value();
      if (std::isnan(number)) return fail("NaN");
      if (std::isinf(number)) return fail(number > 0 ? "Infinity" : "-Infinity");
      return true;
    }
    if (value->IsUndefined()) return fail("undefined");
    if (value->IsBigInt()) return fail("a BigInt");
    if (value->IsSymbol()) return fail("a symbol");
    if (value->IsFunction()) return fail("a function");
    if (!value->IsObject()) return fail(describe_type(value));
    if (value->IsDate()) return true;  // stringified as its ISO text
    if (value->IsProxy()) return fail("a Proxy");
    if (value->IsMap() || value->IsSet() || value->IsWeakMap() || value->IsWeakSet())
      return fail(describe_type(value) + " (convert it to an object or array)");
    if (value->IsPromise()) return fail("a Promise");
    if (value->IsArrayBuffer() || value->IsArrayBufferView() || value->IsSharedArrayBuffer())
      return fail("binary data (" + describe_type(value) + ")");
    if (value->IsRegExp()) return fail("a RegExp");
    if (value->IsNumberObject() || value->IsStringObject() || value->IsBooleanObject()) return true;
    if (depth >= max_depth) return fail("nesting deeper than " + std::to_string(max_depth));

    auto object = value.As<v8::Object>();
    for (auto& ancestor : ancestors_)
      if (ancestor == object) return fail("a cycle");
    ancestors_.push_back(object);
    bool ok = value->IsArray() ? walk_array(object.As<v8::Array>(), depth) : walk_object(object, depth);
    ancestors_.pop_back();
    return ok;
  }

  bool walk_array(v8::Local<v8::Array> array, int depth) {
    const uint32_t length = array->Length();
    for (uint32_t i = 0; i < length; ++i) {
      path_.push_back({{}, i});
      v8::Local<v8::Value> element;
      if (!array->Get(context_, i).ToLocal(&element)) return fail("an element that threw");
      if (!walk(element, depth + 1)) return false;
      path_.pop_back();
    }
    return true;
  }

  bool walk_object(v8::Local<v8::Object> object, int depth) {
    v8::Local<v8::Array> keys;
    if (!object->GetOwnPropertyNames(context_, v8::ONLY_ENUMERABLE, v8::KeyConversionMode::kConvertToString)
             .ToLocal(&keys))
      return fail("an object whose keys cannot be read");
    const uint32_t count = keys->Length();
    for (uint32_t i = 0; i < count; ++i) {
      v8::Local<v8::Value> key;
      v8::Local<v8::Value> property;
      if (!keys->Get(context_, i).ToLocal(&key)) return fail("an unreadable key");
      path_.push_back({key, 0});
      if (!object->Get(context_, key).ToLocal(&property)) return fail("a property that threw");
      // Like JSON, an undefined property is simply absent.
      if (!property->IsUndefined() && !walk(property, depth + 1)) return false;
      path_.pop_back();
    }
    return true;
  }

  v8::Isolate* isolate_;
  v8::Local<v8::Context> context_;
  bool enabled_;
  std::vector<step> path_;
  std::string problem_;
  std::vector<v8::Local<v8::Object>> ancestors_;
};

const char* const expected_shape = R"(expected an object with "output", "outputs" and/or "state")";

void exception(CallReply* reply, std::string message) {
  reply->clear_outputs();
  reply->set_state_change(CallReply::UNCHANGED);
  reply->clear_state_json();
  reply->set_status(CallReply::EXCEPTION);
  reply->set_error_message(std::move(message));
}

// Appends the JSON text of an already checked value.
bool stringify(v8::Isolate* isolate, v8::Local<v8::Context> context, v8::Local<v8::Value> value, std::string* out) {
  v8::Local<v8::String> text;
  if (!v8::JSON::Stringify(context, value).ToLocal(&text)) return false;
  *out = to_utf8(isolate, text);
  return true;
}

}  // namespace

std::string describe_type(v8::Local<v8::Value> value) {
  if (value->IsUndefined()) return "undefined";
  if (value->IsNull()) return "null";
  if (value->IsBoolean()) return "a boolean";
  if (value->IsNumber()) return "a number";
  if (value->IsString()) return "a string";
  if (value->IsBigInt()) return "a BigInt";
  if (value->IsSymbol()) return "a symbol";
  if (value->IsFunction()) return "a function";
  if (value->IsArray()) return "an array";
  if (value->IsPromise()) return "a Promise";
  if (value->IsMap()) return "a Map";
  if (value->IsSet()) return "a Set";
  if (value->IsWeakMap()) return "a WeakMap";
  if (value->IsWeakSet()) return "a WeakSet";
  if (value->IsDate()) return "a Date";
  if (value->IsTypedArray()) return "a typed array";
  if (value->IsArrayBuffer() || value->IsSharedArrayBuffer()) return "an ArrayBuffer";
  if (value->IsDataView()) return "a DataView";
  return "an object";
}

cached_names::cached_names(v8::Isolate* isolate) {
  v8::HandleScope scope(isolate);
  auto make = [&](v8::Eternal<v8::String>& slot, const char* text) {
    slot.Set(isolate, v8::String::NewFromUtf8(isolate, text, v8::NewStringType::kInternalized).ToLocalChecked());
  };
  make(output, "output");
  make(outputs, "outputs");
  make(state, "state");
  make(default_export, "default");
  make(entrypoint, "entrypoint");
}

void read_return_value(v8::Isolate* isolate, v8::Local<v8::Context> context, const cached_names& names,
                       v8::Local<v8::Function> is_plain_json, v8::Local<v8::Value> returned, CallReply* reply) {
  reply->set_status(CallReply::OK);
  reply->set_state_change(CallReply::UNCHANGED);
  if (returned->IsUndefined()) return;  // a filter, state unchanged
  if (!returned->IsObject() || returned->IsArray() || returned->IsFunction() || returned->IsProxy()) {
    return exception(reply, std::string(expected_shape) + ", got " + describe_type(returned));
  }
  auto object = returned.As<v8::Object>();
  v8::Local<v8::Array> keys;
  if (!object->GetOwnPropertyNames(context, v8::ONLY_ENUMERABLE, v8::KeyConversionMode::kConvertToString)
           .ToLocal(&keys))
    return exception(reply, "the returned object's keys cannot be read");

  v8::Local<v8::Value> output, outputs, state;
  bool has_output = false, has_outputs = false, has_state = false;
  for (uint32_t i = 0; i < keys->Length(); ++i) {
    v8::Local<v8::Value> key, value;
    if (!keys->Get(context, i).ToLocal(&key) || !object->Get(context, key).ToLocal(&value)) return;
    if (value->IsUndefined()) continue;  // like JSON: an undefined property is absent
    if (key->StrictEquals(names.output.Get(isolate))) {
      output = value;
      has_output = true;
    } else if (key->StrictEquals(names.outputs.Get(isolate))) {
      outputs = value;
      has_outputs = true;
    } else if (key->StrictEquals(names.state.Get(isolate))) {
      state = value;
      has_state = true;
    } else {
      return exception(reply,
                       std::string(expected_shape) + ", got an object with the key \"" + to_utf8(isolate, key) + "\"");
    }
  }
  if (has_output && has_outputs)
    return exception(reply, std::string(expected_shape) +
                                R"(, got both "output" and "outputs" (use "outputs" for several messages))");

  // One check of the whole returned object covers output, outputs and state.
  v8::Local<v8::Value> plain_result;
  const bool plain = is_plain_json->Call(context, v8::Undefined(isolate), 1, &returned).ToLocal(&plain_result) &&
                     plain_result->IsTrue();
  json_checker checker(isolate, context, !plain);
  if (has_output) {
    if (std::string problem = checker.check(output); !problem.empty())
      return exception(reply, "output contains " + problem);
    if (!stringify(isolate, context, output, reply->add_outputs())) return;
  }
  if (has_outputs) {
    if (!outputs->IsArray()) return exception(reply, "\"outputs\" must be an array, got " + describe_type(outputs));
    auto array = outputs.As<v8::Array>();
    for (uint32_t i = 0; i < array->Length(); ++i) {
      v8::Local<v8::Value> element;
      if (!array->Get(context, i).ToLocal(&element)) return;
      if (element->IsUndefined()) return exception(reply, "outputs[" + std::to_string(i) + "] is undefined");
      if (std::string problem = checker.check(element); !problem.empty())
        return exception(reply, "outputs[" + std::to_string(i) + "] contains " + problem);
      if (!stringify(isolate, context, element, reply->add_outputs())) return;
    }
  }
  if (has_state) {
    if (state->IsNull()) {
      reply->set_state_change(CallReply::DELETE);
    } else {
      if (std::string problem = checker.check(state); !problem.empty())
        return exception(reply, "state contains " + problem);
      if (!stringify(isolate, context, state, reply->mutable_state_json())) return;
      reply->set_state_change(CallReply::SET);
    }
  }
}

}  // namespace flowstate::worker
