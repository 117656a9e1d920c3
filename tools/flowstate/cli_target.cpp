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

}  // namespace flowstate::cli
