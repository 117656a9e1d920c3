#include "keywords.hpp"

namespace flowstate::schema::detail {

using simdjson::dom::element_type;

namespace {

constexpr int max_depth = 512;

// The keyword name of a child segment ("properties/a" -> "properties").
std::string_view segment_keyword(std::string_view segment) {
  auto slash = segment.find('/');
  return segment.substr(0, slash);
}

bool apply_child(const child& c, const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                 annotations* ann) {
  keyword_path here{&kp, c.segment};
  return apply_node(*c.schema, e, ctx, ip, here, ann);
}

// Runs f with errors going to a private list; returns f's result and leaves
// the errors in `saved`.
template <class F>
bool with_private_errors(context& ctx, std::vector<validation_error>& saved, F&& f) {
  auto* outer = ctx.errors;
  ctx.errors = outer ? &saved : nullptr;
  bool ok = f();
  ctx.errors = outer;
  return ok;
}

annotations fresh_like(const annotations* ann) {
  annotations a;
  if (ann) a.evaluated.assign(ann->evaluated.size(), 0);
  return a;
}

}  // namespace

bool apply_node(const node& n, const element& instance, context& ctx, const instance_path& ip, const keyword_path& kp,
                annotations* ann) {
  if (n.k == node::kind::always_true) return true;
  if (n.k == node::kind::always_false) {
    if (ctx.collecting()) {
      auto kw = kp.segment.empty() ? std::string_view("false") : segment_keyword(kp.segment);
      ctx.report(ip, kp, kw, json_text(instance) + " is not allowed here (the schema is false)");
    }
    return false;
  }
  if (ctx.depth >= max_depth) {
    if (ctx.collecting()) ctx.report(ip, kp, "$ref", "schema recursion is deeper than 512 levels");
    return false;
  }
  ++ctx.depth;
  const scope_frame* saved_scope = ctx.scope;
  scope_frame frame{ctx.scope, n.res};
  if (ctx.scope == nullptr || ctx.scope->res != n.res) ctx.scope = &frame;

  bool ok = true;
  if (n.tracks_annotations) {
    annotations local;
    local.evaluated.assign(container_size(instance), 0);
    for (const auto& kw : n.keywords) {
      if (!kw->apply(instance, ctx, ip, kp, &local)) {
        ok = false;
        if (!ctx.collecting()) break;
      }
    }
    if (ok && ann) ann->merge(local);
  } else {
    for (const auto& kw : n.keywords) {
      if (!kw->apply(instance, ctx, ip, kp, ann)) {
        ok = false;
        if (!ctx.collecting()) break;
      }
    }
  }
  ctx.scope = saved_scope;
  --ctx.depth;
  return ok;
}

bool ref_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                   annotations* ann) const {
  keyword_path here{&kp, "$ref"};
  return apply_node(*target_, e, ctx, ip, here, ann);
}

bool dynamic_ref_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                           annotations* ann) const {
  const node* target = target_;
  if (dynamic_) {
    for (auto* f = ctx.scope; f != nullptr; f = f->parent) {
      auto it = f->res->dynamic_anchors.find(anchor_);
      if (it != f->res->dynamic_anchors.end()) target = it->second;  // keep the outermost
    }
  }
  keyword_path here{&kp, "$dynamicRef"};
  return apply_node(*target, e, ctx, ip, here, ann);
}

bool all_of_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                      annotations* ann) const {
  bool ok = true;
  for (const auto& c : children_) {
    if (!apply_child(c, e, ctx, ip, kp, ann)) {
      ok = false;
      if (!ctx.collecting()) return false;
    }
  }
  return ok;
}

bool any_of_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                      annotations* ann) const {
  std::vector<validation_error> branch_errors;
  bool any = false;
  for (const auto& c : children_) {
    annotations local = fresh_like(ann);
    bool ok =
        with_private_errors(ctx, branch_errors, [&] { return apply_child(c, e, ctx, ip, kp, ann ? &local : nullptr); });
    if (ok) {
      any = true;
      if (!ann) break;
      ann->merge(local);
    }
  }
  if (any) return true;
  if (!ctx.collecting()) return false;
  for (auto& err : branch_errors) ctx.errors->push_back(std::move(err));
  return fail(ctx, ip, kp, json_text(e) + " does not match any of the anyOf schemas");
}

bool one_of_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                      annotations* ann) const {
  std::vector<validation_error> branch_errors;
  size_t matches = 0;
  std::vector<size_t> matched;
  annotations kept = fresh_like(ann);
  for (size_t i = 0; i < children_.size(); ++i) {
    annotations local = fresh_like(ann);
    bool ok = with_private_errors(ctx, branch_errors,
                                  [&] { return apply_child(children_[i], e, ctx, ip, kp, ann ? &local : nullptr); });
    if (ok) {
      ++matches;
      if (ctx.collecting()) matched.push_back(i);
      if (matches > 1 && !ctx.collecting()) return false;
      if (ann) kept = std::move(local);
    }
  }
  if (matches == 1) {
    if (ann) ann->merge(kept);
    return true;
  }
  if (!ctx.collecting()) return false;
  if (matches == 0) {
    for (auto& err : branch_errors) ctx.errors->push_back(std::move(err));
    return fail(ctx, ip, kp, json_text(e) + " does not match any of the oneOf schemas");
  }
  std::string list;
  for (size_t i : matched) list += (list.empty() ? "" : ", ") + std::to_string(i);
  return fail(ctx, ip, kp, json_text(e) + " matches more than one of the oneOf schemas (" + list + ")");
}

bool not_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                   annotations*) const {
  auto* outer = ctx.errors;
  ctx.errors = nullptr;
  keyword_path here{&kp, "not"};
  bool matched = apply_node(*schema_, e, ctx, ip, here, nullptr);
  ctx.errors = outer;
  if (!matched) return true;
  if (!ctx.collecting()) return false;
  return fail(ctx, ip, kp, json_text(e) + " must not match the schema in \"not\"");
}

bool if_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                  annotations* ann) const {
  auto* outer = ctx.errors;
  ctx.errors = nullptr;
  annotations local = fresh_like(ann);
  keyword_path if_path{&kp, "if"};
  bool cond = apply_node(*if_, e, ctx, ip, if_path, ann ? &local : nullptr);
  ctx.errors = outer;
  if (cond && ann) ann->merge(local);
  const node* branch = cond ? then_ : else_;
  if (!branch) return true;
  keyword_path branch_path{&kp, cond ? "then" : "else"};
  return apply_node(*branch, e, ctx, ip, branch_path, ann);
}

bool object_properties_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                                 annotations* ann) const {
  if (e.type() != element_type::OBJECT) return true;
  bool ok = true;
  size_t index = 0;
  for (auto field : object_of(e)) {
    instance_path child_ip{&ip, field.key, 0, false};
    bool evaluated = false;
    int found = index_.find(field.key);
    if (found >= 0) {
      evaluated = true;
      if (!apply_child(props_[static_cast<size_t>(found)].c, field.value, ctx, child_ip, kp, nullptr)) {
        ok = false;
        if (!ctx.collecting()) return false;
      }
    }
    for (const auto& p : patterns_) {
      if (p.re->search(field.key)) {
        evaluated = true;
        if (!apply_child(p.c, field.value, ctx, child_ip, kp, nullptr)) {
          ok = false;
          if (!ctx.collecting()) return false;
        }
      }
    }
    if (!evaluated && additional_) {
      evaluated = true;
      if (additional_->schema->k == node::kind::always_false) {
        ok = false;
        if (!ctx.collecting()) return false;
        std::string quoted;
        append_json_string(quoted, field.key);
        keyword_path here{&kp, additional_->segment};
        ctx.report(child_ip, here, "additionalProperties", "property " + quoted + " is not allowed");
      } else if (!apply_child(*additional_, field.value, ctx, child_ip, kp, nullptr)) {
        ok = false;
        if (!ctx.collecting()) return false;
      }
    }
    if (evaluated && ann) ann->mark(index);
    ++index;
  }
  return ok;
}

bool property_names_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                              annotations*) const {
  if (e.type() != element_type::OBJECT) return true;
  // A key is not a DOM value: parse it as a JSON string (only schemas with
  // propertyNames pay for this).
  thread_local simdjson::dom::parser key_parser;
  bool ok = true;
  std::string text;
  keyword_path here{&kp, "propertyNames"};
  for (auto field : object_of(e)) {
    text.clear();
    append_json_string(text, field.key);
    element key;
    if (key_parser.parse(text).get(key) != simdjson::SUCCESS) continue;
    instance_path child_ip{&ip, field.key, 0, false};
    if (!apply_node(*schema_, key, ctx, child_ip, here, nullptr)) {
      ok = false;
      if (!ctx.collecting()) return false;
    }
  }
  return ok;
}

bool dependent_schemas_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                                 annotations* ann) const {
  if (e.type() != element_type::OBJECT) return true;
  auto obj = object_of(e);
  bool ok = true;
  element ignored;
  for (const auto& entry : entries_) {
    if (obj.at_key(entry.property).get(ignored) != simdjson::SUCCESS) continue;
    if (!apply_child(entry.c, e, ctx, ip, kp, ann)) {
      ok = false;
      if (!ctx.collecting()) return false;
    }
  }
  return ok;
}

bool array_items_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                           annotations* ann) const {
  if (e.type() != element_type::ARRAY) return true;
  bool ok = true;
  size_t i = 0;
  for (auto item : array_of(e)) {
    const child* c = i < prefix_.size() ? &prefix_[i] : (rest_ ? &*rest_ : nullptr);
    if (!c) break;
    instance_path child_ip{&ip, {}, i, true};
    if (!apply_child(*c, item, ctx, child_ip, kp, nullptr)) {
      ok = false;
      if (!ctx.collecting()) return false;
    }
    if (ann) ann->mark(i);
    ++i;
  }
  return ok;
}

bool contains_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                        annotations* ann) const {
  if (e.type() != element_type::ARRAY) return true;
  auto* outer = ctx.errors;
  ctx.errors = nullptr;
  keyword_path here{&kp, "contains"};
  uint64_t matches = 0;
  size_t i = 0;
  for (auto item : array_of(e)) {
    instance_path child_ip{&ip, {}, i, true};
    if (apply_node(*schema_, item, ctx, child_ip, here, nullptr)) {
      ++matches;
      if (ann && mark_) ann->mark(i);
      if (!ann && matches >= min_ && !max_) break;
    }
    ++i;
  }
  ctx.errors = outer;
  if (matches < min_) {
    if (!ctx.collecting()) return false;
    if (min_ == 1) return fail(ctx, ip, kp, "the array does not contain an item matching the \"contains\" schema");
    keyword_path min_path{&kp, "minContains"};
    ctx.report(ip, min_path, "minContains",
               "the array contains " + std::to_string(matches) + " items matching \"contains\", fewer than " +
                   std::to_string(min_));
    return false;
  }
  if (max_ && matches > *max_) {
    if (!ctx.collecting()) return false;
    keyword_path max_path{&kp, "maxContains"};
    ctx.report(ip, max_path, "maxContains",
               "the array contains " + std::to_string(matches) + " items matching \"contains\", more than " +
                   std::to_string(*max_));
    return false;
  }
  return true;
}

bool unevaluated_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                           annotations* ann) const {
  auto t = e.type();
  if (properties_ ? t != element_type::OBJECT : t != element_type::ARRAY) return true;
  bool ok = true;
  keyword_path here{&kp, name_};
  auto check = [&](size_t i, const element& value, const instance_path& child_ip, std::string_view key) {
    if (ann && i < ann->evaluated.size() && ann->evaluated[i]) return true;
    if (schema_->k == node::kind::always_false) {
      if (ctx.collecting()) {
        std::string what;
        if (properties_) {
          what = "property ";
          append_json_string(what, key);
        } else {
          what = "item " + std::to_string(i);
        }
        ctx.report(child_ip, here, name_, what + " is not allowed (unevaluated)");
      }
      return false;
    }
    if (!apply_node(*schema_, value, ctx, child_ip, here, nullptr)) return false;
    if (ann) ann->mark(i);
    return true;
  };
  size_t i = 0;
  if (properties_) {
    for (auto field : object_of(e)) {
      instance_path child_ip{&ip, field.key, 0, false};
      if (!check(i, field.value, child_ip, field.key)) {
        ok = false;
        if (!ctx.collecting()) return false;
      }
      ++i;
    }
  } else {
    for (auto item : array_of(e)) {
      instance_path child_ip{&ip, {}, i, true};
      if (!check(i, item, child_ip, {})) {
        ok = false;
        if (!ctx.collecting()) return false;
      }
      ++i;
    }
  }
  return ok;
}

}  // namespace flowstate::schema::detail
