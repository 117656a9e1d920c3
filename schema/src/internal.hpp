#pragma once
// The validator tree: nodes (one per subschema) holding keyword objects, and
// the per-call context that carries paths, errors and annotations.

#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "flowstate/schema/schema.hpp"

namespace flowstate::schema::detail {

using simdjson::dom::element;

// Instance location as a linked list on the C stack: built for free while
// walking, turned into a string only when an error is reported.
struct instance_path {
  const instance_path* parent = nullptr;
  std::string_view key;  // property name (unescaped) when !is_index
  size_t index = 0;
  bool is_index = false;
};

// Keyword location, same idea; segment is already an escaped pointer part
// without the leading '/', e.g. "properties/a" or "$ref".
struct keyword_path {
  const keyword_path* parent = nullptr;
  std::string_view segment;
};

// Which properties (by position in the instance object) or items (by index)
// were evaluated, for unevaluatedProperties / unevaluatedItems.
struct annotations {
  std::vector<uint8_t> evaluated;
  void mark(size_t i) {
    if (i < evaluated.size()) evaluated[i] = 1;
  }
  void mark_all() { std::fill(evaluated.begin(), evaluated.end(), uint8_t{1}); }
  void merge(const annotations& other) {
    for (size_t i = 0; i < evaluated.size() && i < other.evaluated.size(); ++i) evaluated[i] |= other.evaluated[i];
  }
};

struct node;

// A schema resource (a document root or a subschema with "$id"): the unit of
// the dynamic scope for "$dynamicRef".
struct resource {
  std::string uri;
  std::unordered_map<std::string, const node*> dynamic_anchors;
};

// Resources entered so far, innermost first.
struct scope_frame {
  const scope_frame* parent = nullptr;
  const resource* res = nullptr;
};

struct context {
  std::vector<validation_error>* errors = nullptr;  // null: stop at first failure
  const scope_frame* scope = nullptr;
  int depth = 0;

  [[nodiscard]] bool collecting() const { return errors != nullptr; }
  void report(const instance_path& ip, const keyword_path& kp, std::string_view keyword, std::string message) const;
};

class keyword {
 public:
  explicit keyword(std::string name) : name_(std::move(name)) {}
  virtual ~keyword() = default;
  // Applies the keyword to the instance the node is applied to. kp is the
  // node's location; the keyword appends its own name. ann is non-null when
  // the caller tracks evaluated properties/items of this instance.
  virtual bool apply(const element& instance, context& ctx, const instance_path& ip, const keyword_path& kp,
                     annotations* ann) const = 0;
  [[nodiscard]] const std::string& name() const { return name_; }

 protected:
  // Reports at kp + "/" + name_.
  bool fail(context& ctx, const instance_path& ip, const keyword_path& kp, std::string message) const;

  std::string name_;
};

struct node {
  enum class kind { always_true, always_false, object } k = kind::object;
  const resource* res = nullptr;
  std::vector<std::unique_ptr<keyword>> keywords;
  // True when this node has unevaluatedProperties/unevaluatedItems: it then
  // tracks annotations of its own keywords.
  bool tracks_annotations = false;
};

// Applies a node to an instance (the one entry point for subschemas).
bool apply_node(const node& n, const element& instance, context& ctx, const instance_path& ip, const keyword_path& kp,
                annotations* ann);

// Number of properties or items of an object/array instance (0 otherwise).
size_t container_size(const element& e);

struct compiled {
  std::vector<std::unique_ptr<simdjson::dom::parser>> documents;  // owns const/enum values
  std::vector<std::unique_ptr<node>> nodes;
  std::vector<std::unique_ptr<resource>> resources;
  const node* root = nullptr;
  draft root_draft = draft::draft2020_12;
};

}  // namespace flowstate::schema::detail
