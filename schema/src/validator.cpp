#include <simdjson.h>

#include <fstream>
#include <sstream>

#include "compiler.hpp"
#include "flowstate/schema/schema.hpp"

namespace flowstate::schema {

std::optional<draft> parse_draft(std::string_view text) {
  if (text == "07" || text == "7" || text == "draft7" || text == "draft-07") return draft::draft7;
  if (text == "2020-12" || text == "draft2020-12" || text == "2020") return draft::draft2020_12;
  return std::nullopt;
}

std::string compile_error::to_string() const {
  if (location.empty()) return message;
  return location + ": " + message;
}

expected<validator, compile_error> validator::compile(std::string_view schema_json, const compile_options& options) {
  auto c = std::make_shared<detail::compiled>();
  detail::compiler comp(options, *c);
  if (!comp.compile_root(schema_json)) return comp.error();
  return validator(std::move(c));
}

expected<validator, compile_error> validator::metaschema(draft d) {
  std::string_view uri =
      d == draft::draft7 ? "http://json-schema.org/draft-07/schema" : "https://json-schema.org/draft/2020-12/schema";
  auto text = embedded_metaschema(uri);
  if (!text) return compile_error{"", "no embedded metaschema for " + std::string(uri)};
  compile_options options;
  options.default_draft = d;
  options.base_uri = std::string(uri);
  return compile(*text, options);
}

bool validator::is_valid(const simdjson::dom::element& instance) const {
  detail::context ctx;
  detail::instance_path ip;
  detail::keyword_path kp;
  return detail::apply_node(*c_->root, instance, ctx, ip, kp, nullptr);
}

bool validator::validate(const simdjson::dom::element& instance, std::vector<validation_error>& errors) const {
  detail::context ctx;
  ctx.errors = &errors;
  detail::instance_path ip;
  detail::keyword_path kp;
  return detail::apply_node(*c_->root, instance, ctx, ip, kp, nullptr);
}

draft validator::root_draft() const { return c_->root_draft; }

resolver directory_resolver(std::vector<std::pair<std::string, std::string>> prefix_to_dir) {
  return [map = std::move(prefix_to_dir)](std::string_view uri) -> std::optional<std::string> {
    for (const auto& [prefix, dir] : map) {
      if (uri.substr(0, prefix.size()) != prefix) continue;
      std::string rest(uri.substr(prefix.size()));
      if (rest.find("..") != std::string::npos) return std::nullopt;
      std::string path = dir;
      if (!path.empty() && path.back() != '/') path.push_back('/');
      path += rest;
      std::ifstream in(path, std::ios::binary);
      if (!in) continue;
      std::ostringstream text;
      text << in.rdbuf();
      return text.str();
    }
    return std::nullopt;
  };
}

}  // namespace flowstate::schema
