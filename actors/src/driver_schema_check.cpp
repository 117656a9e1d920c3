#include "driver_schema_check.hpp"

#include <simdjson.h>

#include <map>
#include <optional>

#include "flowstate/drivers/config_schemas.hpp"
#include "flowstate/schema/schema.hpp"

namespace flowstate::engine_detail {
namespace {

// Every kind's schema, compiled once. A schema that does not compile is a
// bug of this build: its kind's files are refused with the reason.
struct compiled_schemas {
  std::map<std::string, schema::validator, std::less<>> ok;
  std::map<std::string, std::string, std::less<>> broken;
};

const compiled_schemas& schemas() {
  static const compiled_schemas all = [] {
    compiled_schemas c;
    schema::compile_options options;
    options.default_draft = schema::draft::draft7;
    for (auto& [kind, text] : drivers::config_schemas()) {
      auto v = schema::validator::compile(text, options);
      if (v)
        c.ok.emplace(std::string(kind), std::move(v.value()));
      else
        c.broken.emplace(std::string(kind), v.error().to_string());
    }
    return c;
  }();
  return all;
}

struct yaml_line {
  int indent = 0;         // of the content (after "- " for a list item)
  bool item = false;      // starts with "- "
  std::string_view text;  // the content
};

std::vector<yaml_line> yaml_lines(std::string_view text) {
  std::vector<yaml_line> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    auto end = text.find('\n', at);
    if (end == std::string_view::npos) end = text.size();
    auto line = text.substr(at, end - at);
    yaml_line l;
    std::size_t i = line.find_first_not_of(' ');
    if (i != std::string_view::npos && line[i] != '#') {
      l.indent = int(i);
      if (line.substr(i, 2) == "- " || line.substr(i) == "-") {
        l.item = true;
        auto j = line.find_first_not_of(' ', i + 1);
        l.indent = j == std::string_view::npos ? int(i) + 2 : int(j);
        l.text = j == std::string_view::npos ? std::string_view() : line.substr(j);
      } else {
        l.text = line.substr(i);
      }
    } else {
      l.indent = -1;  // blank or a comment
    }
    out.push_back(l);
    at = end + 1;
  }
  return out;
}

}  // namespace

int yaml_line_of(std::string_view yaml, std::string_view pointer) {
  const auto lines = yaml_lines(yaml);
  std::size_t from = 0, to = lines.size();
  int parent_indent = -1, found = 1;
  std::size_t at = 1;
  while (!pointer.empty() && at <= pointer.size()) {
    auto end = pointer.find('/', at);
    if (end == std::string_view::npos) end = pointer.size();
    std::string seg;
    for (std::size_t i = at; i < end; ++i)
      if (pointer[i] == '~' && i + 1 < end)
        seg += pointer[++i] == '1' ? '/' : '~';
      else
        seg += pointer[i];
    at = end + 1;
    const bool index = !seg.empty() && seg.find_first_not_of("0123456789") == std::string::npos;
    long n = index ? std::stol(seg) : -1;
    std::optional<std::size_t> hit;
    int hit_indent = 0;
    for (std::size_t i = from; i < to && !hit; ++i) {
      const auto& l = lines[i];
      if (l.indent < 0) continue;
      if (index) {
        if (l.item && l.indent > parent_indent && n-- == 0) hit = i, hit_indent = l.indent;
      } else if (l.indent > parent_indent &&
                 (l.text.rfind(seg + ":", 0) == 0 || l.text.rfind("\"" + seg + "\":", 0) == 0)) {
        hit = i, hit_indent = l.indent;
      }
    }
    if (!hit) break;
    found = int(*hit) + 1;
    // The value's block: the lines after it indented deeper.
    from = *hit;
    std::size_t next = *hit + 1;
    while (next < to && (lines[next].indent < 0 || lines[next].indent > hit_indent ||
                         (index && lines[next].indent == hit_indent && !lines[next].item)))
      ++next;
    to = next;
    parent_indent = index ? hit_indent - 1 : hit_indent;
    if (index)
      from = *hit;  // the item's first key shares its line
    else
      from = *hit + 1;
  }
  return found;
}

std::vector<std::string> config_schema_problems(const std::string& file, std::string_view kind,
                                                std::string_view config_json, std::string_view yaml) {
  const auto& all = schemas();
  if (auto b = all.broken.find(kind); b != all.broken.end())
    return {file + ": the schema of " + std::string(kind) + " in this build is broken: " + b->second};
  auto it = all.ok.find(kind);
  if (it == all.ok.end()) return {};
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(config_json.data(), config_json.size()).get(doc)) return {file + ": not a JSON document"};
  std::vector<schema::validation_error> errors;
  if (it->second.validate(doc, errors)) return {};
  std::vector<std::string> out;
  for (auto& e : errors)
    out.push_back(file + ":" + std::to_string(yaml_line_of(yaml, e.instance_location)) + ": " +
                  (e.instance_location.empty() ? std::string("/") : e.instance_location) + ": " + e.message +
                  " (drivers/schemas/" + std::string(kind) + ".json " + e.keyword_location + ")");
  return out;
}

}  // namespace flowstate::engine_detail
