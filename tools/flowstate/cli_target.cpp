#include "cli_target.hpp"

#include <simdjson.h>
#include <CLI/CLI.hpp>

#include <cctype>
#include <cstdio>

#include "node_files.hpp"

namespace flowstate::cli {

void add_target_options(CLI::App* cmd, target_options& o) {
  cmd->add_option("--data", o.data_dir, "The node's data directory (for its admin token and address)");
  cmd->add_option("--admin", o.admin, "The node's admin address HOST:PORT");
  cmd->add_option("--project", o.project, "Project name (default: the node's only project)");
  cmd->add_flag("--json", o.json, "Print JSON");
}

void die(const std::string& message) {
  std::fprintf(stderr, "%s\n", message.c_str());
  throw CLI::RuntimeError(1);
}

admin_target connect(const target_options& o) {
  auto t = find_admin(o.data_dir.empty() ? default_data_dir() : o.data_dir, o.admin);
  if (!t) die(t.error());
  return *t;
}

std::string resolve_project(const admin_target& t, const std::string& given) {
  if (!given.empty()) return given;
  auto r = admin_request(t, "GET", "/api/v1/projects");
  if (!r) die(r.error());
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array list;
  if (parser.parse(r->body).get(doc) || doc.get_array().get(list)) die("unexpected answer: " + r->body);
  if (list.size() != 1) die("the node serves " + std::to_string(list.size()) + " projects: name one with --project");
  std::string_view name;
  if (list.at(0)["name"].get_string().get(name)) die("unexpected answer: " + r->body);
  return std::string(name);
}

std::string url_escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

// "30s", "10m", "2h", "1d" -> milliseconds; -1 when malformed.
int64_t parse_age_ms(const std::string& text) {
  if (text.size() < 2) return -1;
  const char unit = text.back();
  const std::string digits = text.substr(0, text.size() - 1);
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  const int64_t n = std::stoll(digits);
  switch (unit) {
    case 's':
      return n * 1000;
    case 'm':
      return n * 60000;
    case 'h':
      return n * 3600000;
    case 'd':
      return n * 86400000;
  }
  return -1;
}

}  // namespace flowstate::cli
