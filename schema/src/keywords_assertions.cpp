#include <cmath>

#include "keywords.hpp"

namespace flowstate::schema::detail {

using simdjson::dom::element_type;

namespace {

std::string instance_pointer(const instance_path& ip) {
  std::vector<const instance_path*> chain;
  for (auto* p = &ip; p != nullptr; p = p->parent) chain.push_back(p);
  std::string out;
  // The last element is the root frame, which has no token.
  for (size_t k = chain.size() - 1; k-- > 0;) {
    out.push_back('/');
    if (chain[k]->is_index)
      out += std::to_string(chain[k]->index);
    else
      out += pointer_escape(chain[k]->key);
  }
  return out;
}

std::string keyword_pointer(const keyword_path& kp) {
  std::vector<std::string_view> chain;
  for (auto* p = &kp; p != nullptr; p = p->parent)
    if (!p->segment.empty()) chain.push_back(p->segment);
  std::string out;
  for (size_t k = chain.size(); k-- > 0;) {
    out.push_back('/');
    out += chain[k];
  }
  return out;
}

uint8_t instance_type_bits(const element& e) {
  switch (e.type()) {
    case element_type::NULL_VALUE:
      return t_null;
    case element_type::BOOL:
      return t_boolean;
    case element_type::OBJECT:
      return t_object;
    case element_type::ARRAY:
      return t_array;
    case element_type::STRING:
      return t_string;
    case element_type::INT64:
    case element_type::UINT64:
      return t_number | t_integer;
    case element_type::DOUBLE: {
      double d = e.get_double().value_unsafe();
      return std::isfinite(d) && std::floor(d) == d ? t_number | t_integer : t_number;
    }
  }
  return 0;
}

}  // namespace

void context::report(const instance_path& ip, const keyword_path& kp, std::string_view keyword,
                     std::string message) const {
  errors->push_back(
      validation_error{instance_pointer(ip), keyword_pointer(kp), std::string(keyword), std::move(message)});
}

bool keyword::fail(context& ctx, const instance_path& ip, const keyword_path& kp, std::string message) const {
  if (ctx.collecting()) {
    keyword_path here{&kp, name_};
    ctx.report(ip, here, name_, std::move(message));
  }
  return false;
}

size_t container_size(const element& e) {
  if (e.type() == element_type::OBJECT) return object_of(e).size();
  if (e.type() == element_type::ARRAY) return array_of(e).size();
  return 0;
}

bool type_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                    annotations*) const {
  auto t = e.type();
  if ((mask_ & t_number) && (t == element_type::DOUBLE || t == element_type::INT64)) return true;
  if (instance_type_bits(e) & mask_) return true;
  if (!ctx.collecting()) return false;
  return fail(ctx, ip, kp, json_text(e) + " is not of type " + names_);
}

bool const_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                     annotations*) const {
  if (json_equal(e, value_)) return true;
  if (!ctx.collecting()) return false;
  return fail(ctx, ip, kp, json_text(e) + " is not equal to the constant " + json_text(value_));
}

bool enum_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                    annotations*) const {
  for (const auto& v : values_)
    if (json_equal(e, v)) return true;
  if (!ctx.collecting()) return false;
  std::string list;
  for (const auto& v : values_) list += (list.empty() ? "" : ", ") + json_text(v, 40);
  return fail(ctx, ip, kp, json_text(e) + " is not one of [" + list + "]");
}

bool number_limit_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                            annotations*) const {
  auto t = e.type();
  if (t != element_type::INT64 && t != element_type::DOUBLE && t != element_type::UINT64) return true;
  bool ok = true;
  for (const auto& l : limits_) {
    int c = compare(e, l.value);
    bool pass = false;
    const char* what = "";
    switch (l.k) {
      case kind::minimum:
        pass = c >= 0;
        what = " is less than the minimum of ";
        break;
      case kind::maximum:
        pass = c <= 0;
        what = " is greater than the maximum of ";
        break;
      case kind::exclusive_minimum:
        pass = c > 0;
        what = " is less than or equal to the exclusive minimum of ";
        break;
      case kind::exclusive_maximum:
        pass = c < 0;
        what = " is greater than or equal to the exclusive maximum of ";
        break;
    }
    if (pass) continue;
    ok = false;
    if (!ctx.collecting()) return false;
    keyword_path here{&kp, l.name};
    ctx.report(ip, here, l.name, json_text(e) + what + l.value.text());
  }
  return ok;
}

bool multiple_of_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                           annotations*) const {
  if (!is_number(e)) return true;
  bool ok;
  if (divisor_.is_int && e.type() == element_type::INT64) {
    ok = e.get_int64().value_unsafe() % divisor_.i == 0;
  } else {
    double q = as_double(e) / divisor_.d;
    if (!std::isfinite(q))
      ok = false;
    else
      ok = std::fabs(q - std::round(q)) <= 1e-9 * std::max(1.0, std::fabs(q)) && std::fabs(q - std::round(q)) < 1e-6;
  }
  if (ok) return true;
  if (!ctx.collecting()) return false;
  return fail(ctx, ip, kp, json_text(e) + " is not a multiple of " + divisor_.text());
}

bool count_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                     annotations*) const {
  uint64_t n;
  const char* unit;
  switch (what_) {
    case what::string_length:
      if (e.type() != element_type::STRING) return true;
      n = utf8_length(e.get_string().value_unsafe());
      unit = " characters";
      break;
    case what::items:
      if (e.type() != element_type::ARRAY) return true;
      n = array_of(e).size();
      unit = " items";
      break;
    default:
      if (e.type() != element_type::OBJECT) return true;
      n = object_of(e).size();
      unit = " properties";
      break;
  }
  if (is_min_ ? n >= limit_ : n <= limit_) return true;
  if (!ctx.collecting()) return false;
  std::string subject =
      what_ == what::string_length ? json_text(e) : std::string(type_name(e) == "array" ? "the array" : "the object");
  return fail(ctx, ip, kp,
              subject + (is_min_ ? " has fewer than " : " has more than ") + std::to_string(limit_) + unit + " (" +
                  std::to_string(n) + ")");
}

bool pattern_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                       annotations*) const {
  if (e.type() != element_type::STRING) return true;
  if (re_->search(e.get_string().value_unsafe())) return true;
  if (!ctx.collecting()) return false;
  std::string quoted;
  append_json_string(quoted, source_);
  return fail(ctx, ip, kp, json_text(e) + " does not match the pattern " + quoted);
}

bool format_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                      annotations*) const {
  if (e.type() != element_type::STRING) return true;
  if (check_(e.get_string().value_unsafe())) return true;
  if (!ctx.collecting()) return false;
  return fail(ctx, ip, kp, json_text(e) + " is not a valid \"" + format_ + "\"");
}

bool required_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                        annotations*) const {
  if (e.type() != element_type::OBJECT) return true;
  auto obj = object_of(e);
  if (names_.size() <= 64) {
    // One pass over the members instead of a scan per required name.
    uint64_t seen = 0;
    for (auto field : obj) {
      int i = index_.find(field.key);
      if (i >= 0) seen |= uint64_t{1} << i;
    }
    uint64_t all = names_.size() == 64 ? ~uint64_t{0} : (uint64_t{1} << names_.size()) - 1;
    if (seen == all) return true;
    if (!ctx.collecting()) return false;
  }
  bool ok = true;
  for (const auto& name : names_) {
    element ignored;
    if (obj.at_key(name).get(ignored) == simdjson::SUCCESS) continue;
    ok = false;
    if (!ctx.collecting()) return false;
    std::string quoted;
    append_json_string(quoted, name);
    fail(ctx, ip, kp, "required property " + quoted + " is missing");
  }
  return ok;
}

bool unique_items_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                            annotations*) const {
  if (e.type() != element_type::ARRAY) return true;
  auto arr = array_of(e);
  size_t i = 0;
  for (auto a = arr.begin(); a != arr.end(); ++a, ++i) {
    auto b = a;
    size_t j = i + 1;
    for (++b; b != arr.end(); ++b, ++j) {
      if (json_equal(*a, *b)) {
        if (!ctx.collecting()) return false;
        return fail(ctx, ip, kp,
                    "items " + std::to_string(i) + " and " + std::to_string(j) + " are equal (" + json_text(*a, 40) +
                        "), items must be unique");
      }
    }
  }
  return true;
}

bool dependent_required_kw::apply(const element& e, context& ctx, const instance_path& ip, const keyword_path& kp,
                                  annotations*) const {
  if (e.type() != element_type::OBJECT) return true;
  auto obj = object_of(e);
  bool ok = true;
  element ignored;
  for (const auto& entry : entries_) {
    if (obj.at_key(entry.property).get(ignored) != simdjson::SUCCESS) continue;
    for (const auto& name : entry.required) {
      if (obj.at_key(name).get(ignored) == simdjson::SUCCESS) continue;
      ok = false;
      if (!ctx.collecting()) return false;
      std::string a, b;
      append_json_string(a, name);
      append_json_string(b, entry.property);
      fail(ctx, ip, kp, "property " + a + " is required when " + b + " is present");
    }
  }
  return ok;
}

}  // namespace flowstate::schema::detail
