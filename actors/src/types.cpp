#include "types.hpp"

#include <simdjson.h>

#include <map>

#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/file_source.hpp"
#include "flowstate/schema/schema.hpp"

namespace flowstate::engine_detail {
namespace {

// Project schemas live under this base URI, so "$ref": "Other.json" inside
// schemas/Telemetry.json resolves to schemas/Other.json.
constexpr std::string_view project_base = "https://project.flowstate.invalid/schemas/";

const std::map<std::string, std::string, std::less<>>& builtin_types() {
  static const std::map<std::string, std::string, std::less<>> types = {
      {"std:HttpRequest", R"({"type":"object","required":["method","path","params","query","headers"],
        "properties":{"route":{"type":"string"},"method":{"type":"string"},"path":{"type":"string"},
        "params":{"type":"object","additionalProperties":{"type":"string"}},
        "query":{"type":"object","additionalProperties":{"type":"string"}},
        "headers":{"type":"object","additionalProperties":{"type":"string"}},"body":true}})"},
      {"std:HttpResponse", R"({"type":"object","properties":{"status":{"type":"integer","minimum":100,"maximum":599},
        "headers":{"type":"object","additionalProperties":{"type":"string"}},"body":true},
        "additionalProperties":false})"},
      {"std:MqttMessage", R"({"type":"object","required":["topic","payload"],"properties":{"topic":{"type":"string"},
        "payload":true,"qos":{"enum":[0,1,2]},"retain":{"type":"boolean"}}})"},
      {"std:Error", R"({"type":"object","required":["id","type","message","flow","block","key","messageId"],
        "properties":{"id":{"type":"string"},"type":{"enum":["PreconditionFailed","PostconditionFailed","Exception",
        "Timeout","ResourceExhausted","Undeliverable","UnspecifiedError"]},"message":{"type":"string"},
        "flow":{"type":"string"},"block":{"type":"string"},"key":{"type":"string"},"messageId":{"type":"string"},
        "revision":{"type":"string"},"at":{"type":"string"},"details":true,"input":true}})"},
  };
  return types;
}

schema::compile_options options_for(file_source* files, const registry_lookup& registry, std::string base) {
  schema::compile_options o;
  o.default_draft = schema::draft::draft2020_12;
  o.base_uri = std::move(base);
  o.resolve = [files, registry](std::string_view uri) -> std::optional<std::string> {
    if (files && uri.substr(0, project_base.size()) == project_base)
      return files->read("schemas/" + std::string(uri.substr(project_base.size())));
    if (registry) return registry(uri);
    return std::nullopt;
  };
  return o;
}

result<type_check> compile_text(const std::string& name, std::string_view text, const schema::compile_options& o) {
  auto v = schema::validator::compile(text, o);
  if (!v) return fail("type \"" + name + "\" is not a valid JSON Schema: " + v.error().to_string());
  return type_check{name, std::make_shared<const schema::validator>(std::move(v.value()))};
}

}  // namespace

result<type_check> compile_type(const std::string& name, file_source& files, const registry_lookup& registry) {
  if (name == "std:any") return type_check{name, nullptr};
  if (name.rfind("std:", 0) == 0) {
    auto it = builtin_types().find(name);
    if (it == builtin_types().end())
      return fail("unknown built-in type \"" + name +
                  "\" (built-ins: std:any, std:HttpRequest, std:HttpResponse, std:MqttMessage, std:Error)");
    return compile_text(name, it->second, options_for(nullptr, nullptr, "urn:flowstate:" + name.substr(4)));
  }
  if (name.find("://") != std::string::npos) {
    auto text = registry ? registry(name) : std::nullopt;
    if (!text)
      return fail("type \"" + name + "\" is not in this node's schema registry (add it with `flowstate schema add " +
                  name + " FILE`; types are never fetched from the network)");
    return compile_text(name, *text, options_for(nullptr, registry, name));
  }
  auto file = "schemas/" + name + ".json";
  auto text = files.read(file);
  if (!text) {
    std::string known;
    for (auto& f : files.list("schemas"))
      if (f.size() > 5 && f.substr(f.size() - 5) == ".json")
        known += (known.empty() ? "" : ", ") + f.substr(0, f.size() - 5);
    return fail("type \"" + name + "\" not found: expected " + file +
                (known.empty() ? std::string(" (schemas/ is empty)") : " (known types: " + known + ")"));
  }
  auto compiled = compile_text(name, *text, options_for(&files, registry, std::string(project_base) + name + ".json"));
  if (!compiled) return fail(file + ": " + compiled.error());
  return compiled;
}

bool check_json(const type_check& t, std::string_view json, std::string& message, std::string& details) {
  if (!t.validator) return true;
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc)) {
    message = "not valid JSON";
    details = "{}";
    return false;
  }
  if (t.validator->is_valid(doc)) return true;
  std::vector<schema::validation_error> errors;
  (void)t.validator->validate(doc, errors);
  details = "{\"type\":";
  http::append_json_string(details, t.name);
  details += ",\"errors\":[";
  for (std::size_t i = 0; i < errors.size(); ++i) {
    auto& e = errors[i];
    if (i) details += ",";
    details += "{\"instanceLocation\":";
    http::append_json_string(details, e.instance_location);
    details += ",\"keywordLocation\":";
    http::append_json_string(details, e.keyword_location);
    details += ",\"keyword\":";
    http::append_json_string(details, e.keyword);
    details += ",\"message\":";
    http::append_json_string(details, e.message);
    details += "}";
  }
  details += "]}";
  if (errors.empty()) {
    message = "does not match " + t.name;
  } else {
    auto& e = errors.front();
    message = "does not match " + t.name + ": " + (e.instance_location.empty() ? "/" : e.instance_location) + ": " +
              e.message + " (" + e.keyword + ")";
  }
  return false;
}

std::optional<std::string> schema_problem(std::string_view schema_json, const registry_lookup& registry) {
  auto v = schema::validator::compile(schema_json, options_for(nullptr, registry, "urn:flowstate:registry"));
  if (!v) return v.error().to_string();
  return std::nullopt;
}

}  // namespace flowstate::engine_detail
