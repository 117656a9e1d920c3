#pragma once
// Turns schema documents into the validator tree. compiler_scan.cpp indexes
// documents (resources, anchors, dialects) and resolves references;
// compiler.cpp builds the keyword objects.

#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "internal.hpp"

namespace flowstate::schema::detail {

// Which keywords a schema understands: its draft and, for 2020-12, which
// vocabularies its metaschema enables.
struct dialect {
  draft d = draft::draft2020_12;
  bool applicator = true;
  bool unevaluated = true;
  bool validation = true;
  bool format_assertion = false;
};

// A place in a loaded document: document index and JSON pointer.
struct location {
  size_t doc = 0;
  std::string pointer;
  [[nodiscard]] std::string key() const { return std::to_string(doc) + ":" + pointer; }
};

// What scanning learnt about a subschema.
struct scan_info {
  std::string base;          // base URI for resolving references inside it
  std::string resource_uri;  // the schema resource it belongs to
  dialect dl;
};

class compiler {
 public:
  compiler(const compile_options& options, compiled& out) : options_(options), out_(out) {}

  // Compiles the root document; false with error() set when refused.
  bool compile_root(std::string_view text);
  [[nodiscard]] const compile_error& error() const { return error_; }

 private:
  struct document {
    std::string uri;
    element root;
  };

  // ---- compiler_scan.cpp ----
  std::optional<size_t> add_document(std::string_view text, const std::string& uri, const dialect& default_dialect);
  void scan(size_t doc, const element& e, const std::string& pointer, std::string base, dialect dl,
            std::string resource_uri, bool is_document_root);
  bool dialect_for(std::string_view schema_uri, dialect& out, const location& where);
  bool resolve(const std::string& absolute, const dialect& referrer, location& loc, element& target,
               const location& where);
  const scan_info& info_for(const location& loc, const scan_info& fallback);
  resource* resource_for(const std::string& uri);
  bool refuse(const location& where, std::string message);
  std::string describe(const location& where) const;

  // ---- compiler.cpp ----
  const node* compile_at(const location& loc, const element& e, const scan_info& fallback);
  void build_keywords(node& n, const location& loc, const element& e, const scan_info& info);

  const compile_options& options_;
  compiled& out_;
  std::vector<document> docs_;
  std::unordered_map<std::string, location> resources_;  // absolute URI without fragment -> root
  std::unordered_map<std::string, location> anchors_;    // "uri#name" -> subschema
  std::unordered_set<std::string> dynamic_anchors_;      // "uri#name" of $dynamicAnchor
  std::unordered_map<std::string, std::vector<std::pair<std::string, location>>> dynamic_by_resource_;
  std::unordered_map<std::string, scan_info> infos_;  // location key -> info
  std::unordered_map<std::string, node*> nodes_;      // location key -> node
  std::unordered_map<std::string, resource*> resource_objects_;
  std::unordered_set<std::string> dialects_in_progress_;
  compile_error error_;
  bool failed_ = false;
};

// Navigates a JSON pointer (already percent-decoded) from root.
bool navigate(const element& root, std::string_view pointer, element& out);

}  // namespace flowstate::schema::detail
