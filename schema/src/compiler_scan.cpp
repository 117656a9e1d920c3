#include <charconv>

#include "compiler.hpp"
#include "json_util.hpp"
#include "uri.hpp"

namespace flowstate::schema::detail {

using simdjson::dom::element_type;

namespace {

constexpr std::string_view single_schema_keywords[] = {
    "additionalProperties", "propertyNames",        "contains", "not", "if", "then", "else", "items", "additionalItems",
    "unevaluatedItems",     "unevaluatedProperties"};
constexpr std::string_view schema_map_keywords[] = {"properties",  "patternProperties", "$defs",
                                                    "definitions", "dependentSchemas",  "dependencies"};
constexpr std::string_view schema_array_keywords[] = {"allOf", "anyOf", "oneOf", "prefixItems", "items"};

bool is_schema_value(const element& e) { return e.type() == element_type::OBJECT || e.type() == element_type::BOOL; }

std::string strip_empty_fragment(std::string uri) {
  if (!uri.empty() && uri.back() == '#') uri.pop_back();
  return uri;
}

}  // namespace

bool navigate(const element& root, std::string_view pointer, element& out) {
  element cur = root;
  size_t pos = 0;
  while (pos < pointer.size()) {
    if (pointer[pos] != '/') return false;
    auto next = pointer.find('/', pos + 1);
    auto raw = pointer.substr(pos + 1, next == std::string_view::npos ? std::string_view::npos : next - pos - 1);
    std::string token;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '~' && i + 1 < raw.size() && (raw[i + 1] == '0' || raw[i + 1] == '1')) {
        token.push_back(raw[i + 1] == '0' ? '~' : '/');
        ++i;
      } else {
        token.push_back(raw[i]);
      }
    }
    if (cur.type() == element_type::OBJECT) {
      if (object_of(cur).at_key(token).get(cur) != simdjson::SUCCESS) return false;
    } else if (cur.type() == element_type::ARRAY) {
      if (token.empty() || token.find_first_not_of("0123456789") != std::string::npos) return false;
      size_t index = 0;
      if (std::from_chars(token.data(), token.data() + token.size(), index).ec != std::errc()) return false;
      if (array_of(cur).at(index).get(cur) != simdjson::SUCCESS) return false;
    } else {
      return false;
    }
    pos = next == std::string_view::npos ? pointer.size() : next;
  }
  out = cur;
  return true;
}

std::string compiler::describe(const location& where) const {
  if (where.doc == 0 || where.doc >= docs_.size()) return where.pointer;
  return docs_[where.doc].uri + "#" + where.pointer;
}

bool compiler::refuse(const location& where, std::string message) {
  if (!failed_) {
    failed_ = true;
    error_ = compile_error{describe(where), std::move(message)};
  }
  return false;
}

std::optional<size_t> compiler::add_document(std::string_view text, const std::string& uri,
                                             const dialect& default_dialect) {
  auto parser = std::make_unique<simdjson::dom::parser>();
  element root;
  auto err = parser->parse(text.data(), text.size()).get(root);
  size_t index = docs_.size();
  if (err != simdjson::SUCCESS) {
    refuse(location{},
           (uri.empty() ? std::string("schema") : uri) + " is not valid JSON: " + simdjson::error_message(err));
    return std::nullopt;
  }
  out_.documents.push_back(std::move(parser));
  docs_.push_back(document{uri, root});
  location loc{index, ""};
  resources_.emplace(uri, loc);
  scan(index, root, "", uri, default_dialect, uri, true);
  if (failed_) return std::nullopt;
  return index;
}

void compiler::scan(size_t doc, const element& e, const std::string& pointer, std::string base, dialect dl,
                    std::string resource_uri, bool is_document_root) {
  location loc{doc, pointer};
  if (e.type() != element_type::OBJECT) {
    infos_.emplace(loc.key(), scan_info{base, resource_uri, dl});
    return;
  }
  auto obj = object_of(e);
  element v;
  std::string_view id;
  bool has_id = obj.at_key("$id").get(v) == simdjson::SUCCESS && v.get_string().get(id) == simdjson::SUCCESS;
  std::string_view schema_uri;
  if ((is_document_root || has_id) && obj.at_key("$schema").get(v) == simdjson::SUCCESS &&
      v.get_string().get(schema_uri) == simdjson::SUCCESS) {
    if (!dialect_for(schema_uri, dl, location{doc, pointer + "/$schema"})) return;
  }
  bool draft7 = dl.d == draft::draft7;
  bool has_ref = obj.at_key("$ref").get(v) == simdjson::SUCCESS;
  if (draft7 && has_ref) {  // draft 7: "$ref" makes its siblings, "$id" included, ignored
    infos_.emplace(loc.key(), scan_info{base, resource_uri, dl});
    return;
  }
  if (has_id) {
    if (draft7 && !id.empty() && id[0] == '#') {
      anchors_.emplace(base + std::string(id), loc);
    } else {
      std::string_view without, fragment;
      std::string absolute = resolve_uri(base, id);
      split_fragment(absolute, without, fragment);
      base = std::string(without);
      resource_uri = base;
      resources_.emplace(base, loc);
      if (!fragment.empty()) anchors_.emplace(base + "#" + std::string(fragment), loc);
    }
  }
  if (!draft7) {
    std::string_view name;
    if (obj.at_key("$anchor").get(v) == simdjson::SUCCESS && v.get_string().get(name) == simdjson::SUCCESS)
      anchors_.emplace(base + "#" + std::string(name), loc);
    if (obj.at_key("$dynamicAnchor").get(v) == simdjson::SUCCESS && v.get_string().get(name) == simdjson::SUCCESS) {
      std::string key = base + "#" + std::string(name);
      anchors_.emplace(key, loc);
      dynamic_anchors_.insert(key);
      dynamic_by_resource_[resource_uri].emplace_back(std::string(name), loc);
    }
  }
  infos_.emplace(loc.key(), scan_info{base, resource_uri, dl});

  for (auto field : obj) {
    auto key = field.key;
    std::string child_pointer = pointer + "/" + pointer_escape(key);
    bool single = false, map = false, array = false;
    for (auto k : single_schema_keywords) single |= k == key;
    for (auto k : schema_map_keywords) map |= k == key;
    for (auto k : schema_array_keywords) array |= k == key;
    if (single && is_schema_value(field.value)) {
      scan(doc, field.value, child_pointer, base, dl, resource_uri, false);
    } else if (map && field.value.type() == element_type::OBJECT) {
      for (auto member : object_of(field.value))
        if (is_schema_value(member.value))
          scan(doc, member.value, child_pointer + "/" + pointer_escape(member.key), base, dl, resource_uri, false);
    } else if (array && field.value.type() == element_type::ARRAY) {
      size_t i = 0;
      for (auto item : array_of(field.value))
        scan(doc, item, child_pointer + "/" + std::to_string(i++), base, dl, resource_uri, false);
    }
    if (failed_) return;
  }
}

bool compiler::dialect_for(std::string_view schema_uri_text, dialect& out, const location& where) {
  std::string uri = strip_empty_fragment(std::string(schema_uri_text));
  bool assert_formats = out.format_assertion;
  if (uri == "http://json-schema.org/draft-07/schema" || uri == "http://json-schema.org/draft-06/schema" ||
      uri == "http://json-schema.org/draft-04/schema") {
    out = dialect{draft::draft7, true, false, true, assert_formats};
    return true;
  }
  if (uri == "https://json-schema.org/draft/2020-12/schema" || uri == "https://json-schema.org/draft/2019-09/schema") {
    out = dialect{};
    return true;
  }
  // A custom metaschema: its own "$schema" gives the draft, its
  // "$vocabulary" the keywords.
  if (!dialects_in_progress_.insert(uri).second) {
    out = dialect{};
    return true;
  }
  location loc;
  element meta;
  bool ok = resolve(uri, dialect{}, loc, meta, where);
  dialects_in_progress_.erase(uri);
  if (!ok) return false;
  dialect result{};
  element v;
  std::string_view parent;
  if (meta.type() == element_type::OBJECT) {
    auto obj = object_of(meta);
    if (obj.at_key("$schema").get(v) == simdjson::SUCCESS && v.get_string().get(parent) == simdjson::SUCCESS &&
        strip_empty_fragment(std::string(parent)) != uri) {
      if (!dialect_for(parent, result, where)) return false;
    }
    if (result.d == draft::draft2020_12 && obj.at_key("$vocabulary").get(v) == simdjson::SUCCESS &&
        v.type() == element_type::OBJECT) {
      result.applicator = result.unevaluated = result.validation = false;
      for (auto entry : object_of(v)) {
        std::string_view vocab = entry.key;
        bool required = false;
        if (entry.value.get_bool().get(required) != simdjson::SUCCESS) required = false;
        const std::string_view prefix = "https://json-schema.org/draft/2020-12/vocab/";
        std::string_view name = vocab.substr(0, prefix.size()) == prefix ? vocab.substr(prefix.size()) : "";
        if (name == "applicator")
          result.applicator = true;
        else if (name == "unevaluated")
          result.unevaluated = true;
        else if (name == "validation")
          result.validation = true;
        else if (name == "format-assertion")
          result.format_assertion = true;
        else if (name == "core" || name == "meta-data" || name == "format-annotation" || name == "content") {
        } else if (required) {
          return refuse(where, "metaschema " + uri + " requires the unknown vocabulary " + std::string(vocab));
        }
      }
    }
  }
  result.format_assertion = result.format_assertion || assert_formats;
  out = result;
  return true;
}

bool compiler::resolve(const std::string& absolute, const dialect& referrer, location& loc, element& target,
                       const location& where) {
  std::string_view without, fragment_raw;
  split_fragment(absolute, without, fragment_raw);
  std::string uri(without);
  std::string fragment = percent_decode(fragment_raw);
  auto it = resources_.find(uri);
  if (it == resources_.end()) {
    std::optional<std::string> text;
    if (auto embedded = embedded_metaschema(uri))
      text = std::string(*embedded);
    else if (options_.resolve)
      text = options_.resolve(uri);
    if (!text) return refuse(where, "cannot resolve " + absolute + ": no document at " + uri);
    if (!add_document(*text, uri, referrer)) return false;
    it = resources_.find(uri);
  }
  if (fragment.empty()) {
    loc = it->second;
  } else if (fragment[0] == '/') {
    loc = location{it->second.doc, it->second.pointer + fragment};
  } else {
    auto anchor = anchors_.find(uri + "#" + fragment);
    if (anchor == anchors_.end())
      return refuse(where, "cannot resolve " + absolute + ": no anchor \"" + fragment + "\"");
    loc = anchor->second;
  }
  if (!navigate(docs_[loc.doc].root, loc.pointer, target))
    return refuse(where, "cannot resolve " + absolute + ": no value at " + describe(loc));
  return true;
}

const scan_info& compiler::info_for(const location& loc, const scan_info& fallback) {
  auto it = infos_.find(loc.key());
  if (it != infos_.end()) return it->second;
  // Not a place scanning knew as a schema: inherit from the nearest ancestor.
  std::string pointer = loc.pointer;
  while (!pointer.empty()) {
    pointer.erase(pointer.rfind('/'));
    auto up = infos_.find(location{loc.doc, pointer}.key());
    if (up != infos_.end()) return infos_.emplace(loc.key(), up->second).first->second;
  }
  return infos_.emplace(loc.key(), fallback).first->second;
}

resource* compiler::resource_for(const std::string& uri) {
  auto it = resource_objects_.find(uri);
  if (it != resource_objects_.end()) return it->second;
  out_.resources.push_back(std::make_unique<resource>());
  resource* r = out_.resources.back().get();
  r->uri = uri;
  resource_objects_.emplace(uri, r);
  auto dyn = dynamic_by_resource_.find(uri);
  if (dyn != dynamic_by_resource_.end()) {
    auto anchors = dyn->second;  // compile_at may add to the map
    for (const auto& [name, loc] : anchors) {
      element e;
      if (!navigate(docs_[loc.doc].root, loc.pointer, e)) continue;
      r->dynamic_anchors[name] = compile_at(loc, e, scan_info{uri, uri, dialect{}});
    }
  }
  return r;
}

}  // namespace flowstate::schema::detail
