#include "compiler.hpp"

#include <cmath>
#include <cstdint>
#include <functional>

#include "keywords.hpp"
#include "uri.hpp"

namespace flowstate::schema::detail {

using simdjson::dom::element_type;

bool compiler::compile_root(std::string_view text) {
  dialect dl;
  dl.d = options_.default_draft;
  if (dl.d == draft::draft7) dl.unevaluated = false;
  auto doc = add_document(text, options_.base_uri, dl);
  if (!doc) return false;
  const scan_info& info = info_for(location{*doc, ""}, scan_info{options_.base_uri, options_.base_uri, dl});
  out_.root_draft = info.dl.d;
  out_.root = compile_at(location{*doc, ""}, docs_[*doc].root, info);
  return !failed_;
}

const node* compiler::compile_at(const location& loc, const element& e, const scan_info& fallback) {
  auto key = loc.key();
  auto found = nodes_.find(key);
  if (found != nodes_.end()) return found->second;
  out_.nodes.push_back(std::make_unique<node>());
  node* n = out_.nodes.back().get();
  nodes_.emplace(key, n);
  scan_info info = info_for(loc, fallback);
  n->res = resource_for(info.resource_uri);
  if (e.type() == element_type::BOOL) {
    n->k = e.get_bool().value_unsafe() ? node::kind::always_true : node::kind::always_false;
    return n;
  }
  if (e.type() != element_type::OBJECT) {
    refuse(loc, "expected a schema (an object or a boolean), got " + json_text(e));
    return n;
  }
  build_keywords(*n, loc, e, info);
  return n;
}

namespace {

// Reads keyword values, refusing bad ones with their location.
struct reader {
  std::function<bool(const location&, std::string)> refuse;
  location at;

  location where(std::string_view keyword) const {
    return location{at.doc, at.pointer + "/" + pointer_escape(keyword)};
  }
  bool number_value(std::string_view kw, const element& v, number& out) {
    if (!is_number(v)) return refuse(where(kw), "expected a number, got " + json_text(v));
    out = number::of(v);
    return true;
  }
  bool count_value(std::string_view kw, const element& v, uint64_t& out) {
    if (is_number(v)) {
      double d = as_double(v);
      if (d >= 0 && std::floor(d) == d) {
        // A count past 2^64 (a float like 1e30) means the same as 2^64 - 1:
        // no string, array or object is that long.
        constexpr double past_max = 18446744073709551616.0;
        out = v.type() == element_type::DOUBLE   ? (d >= past_max ? UINT64_MAX : static_cast<uint64_t>(d))
              : v.type() == element_type::UINT64 ? v.get_uint64().value_unsafe()
                                                 : static_cast<uint64_t>(v.get_int64().value_unsafe());
        return true;
      }
    }
    return refuse(where(kw), "expected a non-negative integer, got " + json_text(v));
  }
  bool string_list(std::string_view kw, const element& v, std::vector<std::string>& out, location loc) {
    if (v.type() != element_type::ARRAY) return refuse(loc, "expected an array of strings, got " + json_text(v));
    for (auto item : array_of(v)) {
      std::string_view s;
      if (item.get_string().get(s) != simdjson::SUCCESS)
        return refuse(loc, "expected an array of strings, got " + json_text(v));
      out.emplace_back(s);
    }
    return true;
  }
};

uint8_t type_bit_of(std::string_view name) {
  if (name == "null") return t_null;
  if (name == "boolean") return t_boolean;
  if (name == "object") return t_object;
  if (name == "array") return t_array;
  if (name == "number") return t_number;
  if (name == "string") return t_string;
  if (name == "integer") return t_integer;
  return 0;
}

}  // namespace

void compiler::build_keywords(node& n, const location& loc, const element& e, const scan_info& info) {
  const dialect& dl = info.dl;
  const bool draft7 = dl.d == draft::draft7;
  auto obj = object_of(e);
  reader rd{[this](const location& l, std::string m) { return refuse(l, std::move(m)); }, loc};
  auto get = [&](std::string_view kw, element& v) { return obj.at_key(kw).get(v) == simdjson::SUCCESS; };
  auto sub = [&](std::string segment, const element& v) -> child {
    location child_loc{loc.doc, loc.pointer + "/" + segment};
    return child{compile_at(child_loc, v, info), std::move(segment)};
  };
  auto schema_value = [&](std::string_view kw, const element& v) {
    if (v.type() == element_type::OBJECT || v.type() == element_type::BOOL) return true;
    return refuse(rd.where(kw), "expected a schema (an object or a boolean), got " + json_text(v));
  };
  auto schema_array = [&](std::string_view kw, const element& v, std::vector<child>& out) {
    if (v.type() != element_type::ARRAY || array_of(v).size() == 0)
      return refuse(rd.where(kw), "expected a non-empty array of schemas, got " + json_text(v));
    size_t i = 0;
    for (auto item : array_of(v)) {
      std::string seg = pointer_escape(kw) + "/" + std::to_string(i);
      if (!schema_value(std::string(kw) + "/" + std::to_string(i), item)) return false;
      out.push_back(sub(seg, item));
      ++i;
    }
    return true;
  };
  auto resolve_ref = [&](std::string_view kw, const element& v, location& target_loc, element& target) {
    std::string_view ref;
    if (v.get_string().get(ref) != simdjson::SUCCESS)
      return refuse(rd.where(kw), "expected a URI reference string, got " + json_text(v));
    return resolve(resolve_uri(info.base, ref), dl, target_loc, target, rd.where(kw));
  };

  std::vector<std::unique_ptr<keyword>> first, middle, last;
  element v;

  if (get("$ref", v)) {
    location target_loc;
    element target;
    if (!resolve_ref("$ref", v, target_loc, target)) return;
    middle.push_back(std::make_unique<ref_kw>(compile_at(target_loc, target, info)));
    if (draft7) {  // siblings of "$ref" are ignored in draft 7
      n.keywords = std::move(middle);
      return;
    }
  }
  if (!draft7 && get("$dynamicRef", v)) {
    location target_loc;
    element target;
    if (!resolve_ref("$dynamicRef", v, target_loc, target)) return;
    std::string_view ref = v.get_string().value_unsafe();
    std::string absolute = resolve_uri(info.base, ref);
    std::string_view without, fragment;
    split_fragment(absolute, without, fragment);
    bool dynamic = !fragment.empty() && fragment[0] != '/' && dynamic_anchors_.count(absolute) > 0;
    middle.push_back(
        std::make_unique<dynamic_ref_kw>(compile_at(target_loc, target, info), std::string(fragment), dynamic));
  }

  if (dl.validation) {
    if (get("type", v)) {
      uint8_t mask = 0;
      std::string names;
      auto add = [&](const element& t) {
        std::string_view name;
        uint8_t bit = 0;
        if (t.get_string().get(name) == simdjson::SUCCESS) bit = type_bit_of(name);
        if (!bit)
          return refuse(
              rd.where("type"),
              "expected a type name (null, boolean, object, array, number, string, integer), got " + json_text(t));
        mask |= bit;
        if (bit == t_number) mask |= t_integer;
        names += (names.empty() ? "\"" : ", \"") + std::string(name) + "\"";
        return true;
      };
      if (v.type() == element_type::ARRAY) {
        for (auto t : array_of(v))
          if (!add(t)) return;
      } else if (!add(v)) {
        return;
      }
      first.push_back(std::make_unique<type_kw>(mask, names));
    }
    if (get("const", v)) middle.push_back(std::make_unique<const_kw>(v));
    if (get("enum", v)) {
      if (v.type() != element_type::ARRAY)
        return (void)refuse(rd.where("enum"), "expected an array, got " + json_text(v));
      std::vector<element> values;
      for (auto item : array_of(v)) values.push_back(item);
      middle.push_back(std::make_unique<enum_kw>(std::move(values)));
    }
    using lk = number_limit_kw::kind;
    struct limit_def {
      const char* name;
      lk kind;
    };
    std::vector<number_limit_kw::limit> limits;
    for (auto def :
         {limit_def{"minimum", lk::minimum}, limit_def{"maximum", lk::maximum},
          limit_def{"exclusiveMinimum", lk::exclusive_minimum}, limit_def{"exclusiveMaximum", lk::exclusive_maximum}}) {
      number limit;
      if (!get(def.name, v)) continue;
      if (!rd.number_value(def.name, v, limit)) return;
      limits.push_back({def.kind, limit, def.name});
    }
    if (!limits.empty()) middle.push_back(std::make_unique<number_limit_kw>(std::move(limits)));
    if (get("multipleOf", v)) {
      number divisor;
      if (!rd.number_value("multipleOf", v, divisor)) return;
      if (divisor.d <= 0)
        return (void)refuse(rd.where("multipleOf"), "expected a number greater than 0, got " + json_text(v));
      middle.push_back(std::make_unique<multiple_of_kw>(divisor));
    }
    using cw = count_kw::what;
    struct count_def {
      const char* name;
      cw what;
      bool is_min;
    };
    for (auto def :
         {count_def{"minLength", cw::string_length, true}, count_def{"maxLength", cw::string_length, false},
          count_def{"minItems", cw::items, true}, count_def{"maxItems", cw::items, false},
          count_def{"minProperties", cw::properties, true}, count_def{"maxProperties", cw::properties, false}}) {
      uint64_t limit;
      if (!get(def.name, v)) continue;
      if (!rd.count_value(def.name, v, limit)) return;
      middle.push_back(std::make_unique<count_kw>(def.name, def.what, def.is_min, limit));
    }
    if (get("pattern", v)) {
      std::string_view source;
      if (v.get_string().get(source) != simdjson::SUCCESS)
        return (void)refuse(rd.where("pattern"), "expected a regular expression string, got " + json_text(v));
      std::string why;
      auto re = regex::compile(source, why);
      if (!re) return (void)refuse(rd.where("pattern"), "invalid regular expression " + json_text(v) + ": " + why);
      middle.push_back(std::make_unique<pattern_kw>(std::move(re), std::string(source)));
    }
    if (get("required", v)) {
      std::vector<std::string> names;
      if (!rd.string_list("required", v, names, rd.where("required"))) return;
      if (!names.empty()) middle.push_back(std::make_unique<required_kw>(std::move(names)));
    }
    if (get("uniqueItems", v)) {
      bool unique = false;
      if (v.get_bool().get(unique) != simdjson::SUCCESS)
        return (void)refuse(rd.where("uniqueItems"), "expected a boolean, got " + json_text(v));
      if (unique) middle.push_back(std::make_unique<unique_items_kw>());
    }
    if (!draft7 && get("dependentRequired", v)) {
      if (v.type() != element_type::OBJECT)
        return (void)refuse(rd.where("dependentRequired"), "expected an object, got " + json_text(v));
      std::vector<dependent_required_kw::entry> entries;
      for (auto member : object_of(v)) {
        dependent_required_kw::entry entry{std::string(member.key), {}};
        location l{loc.doc, loc.pointer + "/dependentRequired/" + pointer_escape(member.key)};
        if (!rd.string_list("dependentRequired", member.value, entry.required, l)) return;
        entries.push_back(std::move(entry));
      }
      middle.push_back(std::make_unique<dependent_required_kw>("dependentRequired", std::move(entries)));
    }
  }
  if (get("format", v) && (options_.format_assertion || dl.format_assertion)) {
    std::string_view name;
    if (v.get_string().get(name) != simdjson::SUCCESS)
      return (void)refuse(rd.where("format"), "expected a format name string, got " + json_text(v));
    if (auto check = find_format(name)) middle.push_back(std::make_unique<format_kw>(check, std::string(name)));
  }

  if (dl.applicator) {
    for (const char* kw : {"allOf", "anyOf", "oneOf"}) {
      if (!get(kw, v)) continue;
      std::vector<child> children;
      if (!schema_array(kw, v, children)) return;
      std::string_view k = kw;
      if (k == "allOf")
        middle.push_back(std::make_unique<all_of_kw>(std::move(children)));
      else if (k == "anyOf")
        middle.push_back(std::make_unique<any_of_kw>(std::move(children)));
      else
        middle.push_back(std::make_unique<one_of_kw>(std::move(children)));
    }
    if (get("not", v)) {
      if (!schema_value("not", v)) return;
      middle.push_back(std::make_unique<not_kw>(sub("not", v).schema));
    }
    if (get("if", v)) {
      if (!schema_value("if", v)) return;
      const node* if_node = sub("if", v).schema;
      const node* then_node = nullptr;
      const node* else_node = nullptr;
      if (get("then", v)) {
        if (!schema_value("then", v)) return;
        then_node = sub("then", v).schema;
      }
      if (get("else", v)) {
        if (!schema_value("else", v)) return;
        else_node = sub("else", v).schema;
      }
      // Without then/else, "if" still contributes annotations.
      middle.push_back(std::make_unique<if_kw>(if_node, then_node, else_node));
    }
    // Objects.
    std::vector<object_properties_kw::named> props;
    std::vector<object_properties_kw::patterned> patterns;
    std::optional<child> additional;
    if (get("properties", v)) {
      if (v.type() != element_type::OBJECT)
        return (void)refuse(rd.where("properties"), "expected an object of schemas, got " + json_text(v));
      for (auto member : object_of(v)) {
        std::string seg = "properties/" + pointer_escape(member.key);
        if (!schema_value(seg, member.value)) return;
        props.push_back({std::string(member.key), sub(seg, member.value)});
      }
    }
    if (get("patternProperties", v)) {
      if (v.type() != element_type::OBJECT)
        return (void)refuse(rd.where("patternProperties"), "expected an object of schemas, got " + json_text(v));
      for (auto member : object_of(v)) {
        std::string seg = "patternProperties/" + pointer_escape(member.key);
        if (!schema_value(seg, member.value)) return;
        std::string why;
        auto re = regex::compile(member.key, why);
        if (!re) return (void)refuse(rd.where(seg), "invalid regular expression: " + why);
        patterns.push_back({std::move(re), sub(seg, member.value)});
      }
    }
    if (get("additionalProperties", v)) {
      if (!schema_value("additionalProperties", v)) return;
      additional = sub("additionalProperties", v);
    }
    if (!props.empty() || !patterns.empty() || additional)
      middle.push_back(
          std::make_unique<object_properties_kw>(std::move(props), std::move(patterns), std::move(additional)));
    if (get("propertyNames", v)) {
      if (!schema_value("propertyNames", v)) return;
      middle.push_back(std::make_unique<property_names_kw>(sub("propertyNames", v).schema));
    }
    const char* dep_kw = draft7 ? "dependencies" : "dependentSchemas";
    if (get(dep_kw, v)) {
      if (v.type() != element_type::OBJECT)
        return (void)refuse(rd.where(dep_kw), "expected an object, got " + json_text(v));
      std::vector<dependent_schemas_kw::entry> schemas;
      std::vector<dependent_required_kw::entry> required;
      for (auto member : object_of(v)) {
        std::string seg = std::string(dep_kw) + "/" + pointer_escape(member.key);
        if (draft7 && member.value.type() == element_type::ARRAY) {
          dependent_required_kw::entry entry{std::string(member.key), {}};
          if (!rd.string_list(dep_kw, member.value, entry.required, rd.where(seg))) return;
          required.push_back(std::move(entry));
          continue;
        }
        if (!schema_value(seg, member.value)) return;
        schemas.push_back({std::string(member.key), sub(seg, member.value)});
      }
      if (!required.empty()) middle.push_back(std::make_unique<dependent_required_kw>(dep_kw, std::move(required)));
      if (!schemas.empty()) middle.push_back(std::make_unique<dependent_schemas_kw>(dep_kw, std::move(schemas)));
    }
    // Arrays.
    std::vector<child> prefix;
    std::optional<child> rest;
    if (draft7) {
      if (get("items", v)) {
        if (v.type() == element_type::ARRAY) {
          size_t i = 0;
          for (auto item : array_of(v)) {
            std::string seg = "items/" + std::to_string(i++);
            if (!schema_value(seg, item)) return;
            prefix.push_back(sub(seg, item));
          }
          element additional_items;
          if (get("additionalItems", additional_items)) {
            if (!schema_value("additionalItems", additional_items)) return;
            rest = sub("additionalItems", additional_items);
          }
        } else {
          if (!schema_value("items", v)) return;
          rest = sub("items", v);
        }
      }
    } else {
      if (get("prefixItems", v) && !schema_array("prefixItems", v, prefix)) return;
      if (get("items", v)) {
        if (!schema_value("items", v)) return;
        rest = sub("items", v);
      }
    }
    if (!prefix.empty() || rest) middle.push_back(std::make_unique<array_items_kw>(std::move(prefix), std::move(rest)));
    if (get("contains", v)) {
      if (!schema_value("contains", v)) return;
      const node* contains_node = sub("contains", v).schema;
      uint64_t min = 1;
      std::optional<uint64_t> max;
      if (!draft7 && dl.validation) {
        element m;
        if (get("minContains", m) && !rd.count_value("minContains", m, min)) return;
        uint64_t mx;
        if (get("maxContains", m)) {
          if (!rd.count_value("maxContains", m, mx)) return;
          max = mx;
        }
      }
      middle.push_back(std::make_unique<contains_kw>(contains_node, min, max, !draft7));
    }
  }
  if (!draft7 && dl.unevaluated) {
    for (bool properties : {false, true}) {
      const char* kw = properties ? "unevaluatedProperties" : "unevaluatedItems";
      if (!get(kw, v)) continue;
      if (!schema_value(kw, v)) return;
      last.push_back(std::make_unique<unevaluated_kw>(properties, sub(kw, v).schema));
      n.tracks_annotations = true;
    }
  }
  for (auto* group : {&first, &middle, &last})
    for (auto& kw : *group) n.keywords.push_back(std::move(kw));
}

}  // namespace flowstate::schema::detail
