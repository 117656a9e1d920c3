#pragma once
// The keyword objects of the validator tree. The compiler builds them; each
// checks its value once at compile time and only reads it when validating.

#include <optional>

#include "formats.hpp"
#include "internal.hpp"
#include "json_util.hpp"
#include "regex.hpp"

namespace flowstate::schema::detail {

// A subschema applied by a keyword, with its location segment
// ("properties/a", "allOf/0", "$ref").
struct child {
  const node* schema = nullptr;
  std::string segment;
};

// ---- assertions (keywords_assertions.cpp) ----

enum type_bit : uint8_t {
  t_null = 1,
  t_boolean = 2,
  t_object = 4,
  t_array = 8,
  t_number = 16,
  t_string = 32,
  t_integer = 64
};

class type_kw final : public keyword {
 public:
  type_kw(uint8_t mask, std::string names) : keyword("type"), mask_(mask), names_(std::move(names)) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  uint8_t mask_;
  std::string names_;  // for the message: "string" or "string", "null"
};

class const_kw final : public keyword {
 public:
  explicit const_kw(element value) : keyword("const"), value_(value) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  element value_;
};

class enum_kw final : public keyword {
 public:
  explicit enum_kw(std::vector<element> values) : keyword("enum"), values_(std::move(values)) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  std::vector<element> values_;
};

// minimum, maximum, exclusiveMinimum, exclusiveMaximum of one schema in one
// keyword object (the number is read once).
class number_limit_kw final : public keyword {
 public:
  enum class kind { minimum, maximum, exclusive_minimum, exclusive_maximum };
  struct limit {
    kind k;
    number value;
    std::string name;
  };
  explicit number_limit_kw(std::vector<limit> limits) : keyword(limits.front().name), limits_(std::move(limits)) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  std::vector<limit> limits_;
};

class multiple_of_kw final : public keyword {
 public:
  explicit multiple_of_kw(number divisor) : keyword("multipleOf"), divisor_(divisor) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  number divisor_;
};

// minLength/maxLength, minItems/maxItems, minProperties/maxProperties.
class count_kw final : public keyword {
 public:
  enum class what { string_length, items, properties };
  count_kw(std::string name, what w, bool is_min, uint64_t limit)
      : keyword(std::move(name)), what_(w), is_min_(is_min), limit_(limit) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  what what_;
  bool is_min_;
  uint64_t limit_;
};

class pattern_kw final : public keyword {
 public:
  pattern_kw(std::unique_ptr<regex> re, std::string source)
      : keyword("pattern"), re_(std::move(re)), source_(std::move(source)) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  std::unique_ptr<regex> re_;
  std::string source_;
};

class format_kw final : public keyword {
 public:
  format_kw(format_check check, std::string format) : keyword("format"), check_(check), format_(std::move(format)) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  format_check check_;
  std::string format_;
};

class required_kw final : public keyword {
 public:
  explicit required_kw(std::vector<std::string> names)
      : keyword("required"), names_(std::move(names)), index_(names_) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  std::vector<std::string> names_;
  name_index index_;
};

class unique_items_kw final : public keyword {
 public:
  unique_items_kw() : keyword("uniqueItems") {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;
};

// dependentRequired, and the array form of draft 7 "dependencies".
class dependent_required_kw final : public keyword {
 public:
  struct entry {
    std::string property;
    std::vector<std::string> required;
  };
  dependent_required_kw(std::string name, std::vector<entry> entries)
      : keyword(std::move(name)), entries_(std::move(entries)) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  std::vector<entry> entries_;
};

// ---- applicators (keywords_applicators.cpp) ----

class ref_kw final : public keyword {
 public:
  explicit ref_kw(const node* target) : keyword("$ref"), target_(target) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  const node* target_;
};

class dynamic_ref_kw final : public keyword {
 public:
  dynamic_ref_kw(const node* static_target, std::string anchor, bool dynamic)
      : keyword("$dynamicRef"), target_(static_target), anchor_(std::move(anchor)), dynamic_(dynamic) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  const node* target_;
  std::string anchor_;
  bool dynamic_;
};

class all_of_kw final : public keyword {
 public:
  explicit all_of_kw(std::vector<child> c) : keyword("allOf"), children_(std::move(c)) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  std::vector<child> children_;
};

class any_of_kw final : public keyword {
 public:
  explicit any_of_kw(std::vector<child> c) : keyword("anyOf"), children_(std::move(c)) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  std::vector<child> children_;
};

class one_of_kw final : public keyword {
 public:
  explicit one_of_kw(std::vector<child> c) : keyword("oneOf"), children_(std::move(c)) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  std::vector<child> children_;
};

class not_kw final : public keyword {
 public:
  explicit not_kw(const node* n) : keyword("not"), schema_(n) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  const node* schema_;
};

class if_kw final : public keyword {
 public:
  if_kw(const node* if_schema, const node* then_schema, const node* else_schema)
      : keyword("if"), if_(if_schema), then_(then_schema), else_(else_schema) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  const node* if_;
  const node* then_;  // may be null
  const node* else_;  // may be null
};

// properties + patternProperties + additionalProperties in one pass over the
// instance's members.
class object_properties_kw final : public keyword {
 public:
  struct named {
    std::string name;
    child c;
  };
  struct patterned {
    std::unique_ptr<regex> re;
    child c;
  };
  object_properties_kw(std::vector<named> props, std::vector<patterned> patterns, std::optional<child> additional)
      : keyword("properties"),
        props_(std::move(props)),
        patterns_(std::move(patterns)),
        additional_(std::move(additional)) {
    std::vector<std::string> names;
    for (const auto& p : props_) names.push_back(p.name);
    index_ = name_index(names);
  }
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  std::vector<named> props_;
  name_index index_;
  std::vector<patterned> patterns_;
  std::optional<child> additional_;
};

class property_names_kw final : public keyword {
 public:
  explicit property_names_kw(const node* n) : keyword("propertyNames"), schema_(n) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  const node* schema_;
};

// dependentSchemas, and the schema form of draft 7 "dependencies".
class dependent_schemas_kw final : public keyword {
 public:
  struct entry {
    std::string property;
    child c;
  };
  dependent_schemas_kw(std::string name, std::vector<entry> entries)
      : keyword(std::move(name)), entries_(std::move(entries)) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  std::vector<entry> entries_;
};

// prefixItems + items (2020-12), or items array + additionalItems (07), or a
// single items schema.
class array_items_kw final : public keyword {
 public:
  array_items_kw(std::vector<child> prefix, std::optional<child> rest)
      : keyword("items"), prefix_(std::move(prefix)), rest_(std::move(rest)) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  std::vector<child> prefix_;
  std::optional<child> rest_;
};

class contains_kw final : public keyword {
 public:
  contains_kw(const node* n, uint64_t min, std::optional<uint64_t> max, bool mark_annotations)
      : keyword("contains"), schema_(n), min_(min), max_(max), mark_(mark_annotations) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  const node* schema_;
  uint64_t min_;
  std::optional<uint64_t> max_;
  bool mark_;
};

class unevaluated_kw final : public keyword {
 public:
  unevaluated_kw(bool properties, const node* n)
      : keyword(properties ? "unevaluatedProperties" : "unevaluatedItems"), properties_(properties), schema_(n) {}
  bool apply(const element&, context&, const instance_path&, const keyword_path&, annotations*) const override;

 private:
  bool properties_;
  const node* schema_;
};

}  // namespace flowstate::schema::detail
