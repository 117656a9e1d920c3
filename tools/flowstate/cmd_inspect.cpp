// flowstate state get / errors list: read the node's committed state and
// error queue through the admin API.
#include <simdjson.h>
#include <CLI/CLI.hpp>

#include <cstdio>

#include "admin_client.hpp"
#include "cli_target.hpp"
#include "commands.hpp"
#include "flowstate/drivers/http_types.hpp"
#include "flowstate/runtime/json_text.hpp"
#include "node_files.hpp"

namespace flowstate::cli {
namespace {

// What reaches the terminal is UTF-8 whatever the node sent: bytes that are
// not become U+FFFD; in a table cell (`cell`), control characters become
// \xNN so that a key or message cannot move the cursor or break the row.
std::string printable(std::string_view s, bool cell = false) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    auto n = utf8_sequence_length(s, i);
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      n = 1;
    } else if (cell && (c < 0x20 || c == 0x7F)) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\x%02X", c);
      out += escaped;
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  return out;
}

}  // namespace

void register_state_commands(CLI::App& app) {
  auto* state = app.add_subcommand("state", "Inspect per-key state");
  state->require_subcommand(1);
  auto o = std::make_shared<target_options>();
  auto args = std::make_shared<std::vector<std::string>>(3);
  auto* get = state->add_subcommand("get", "Print the committed state of KEY at block BLOCK of flow FLOW");
  get->add_option("FLOW", (*args)[0])->required();
  get->add_option("BLOCK", (*args)[1])->required();
  get->add_option("KEY", (*args)[2])->required();
  add_target_options(get, *o);
  get->callback([o, args] {
    auto t = connect(*o);
    auto project = resolve_project(t, o->project);
    auto r = admin_request(t, "GET",
                           "/api/v1/projects/" + url_escape(project) + "/flows/" + url_escape((*args)[0]) + "/blocks/" +
                               url_escape((*args)[1]) + "/state" +
                               ((*args)[2].empty() ? std::string() : "/" + url_escape((*args)[2])));
    if (!r) die(r.error());
    if (r->status == 404 && problem_detail(r->body).find("has no state") != std::string::npos) {
      if (o->json)
        std::printf("null\n");
      else
        std::fprintf(stderr, "%s\n", problem_detail(r->body).c_str());
      if (!o->json) throw CLI::RuntimeError(1);
      return;
    }
    if (r->status != 200) die(problem_detail(r->body));
    std::printf("%s\n", r->body.c_str());
  });
}

void register_errors_commands(CLI::App& app) {
  auto* errors = app.add_subcommand("errors", "The error queue");
  errors->require_subcommand(1);
  auto o = std::make_shared<target_options>();
  auto filters = std::make_shared<std::pair<std::string, std::string>>();
  auto* list = errors->add_subcommand("list", "List errors, oldest first");
  add_target_options(list, *o);
  list->add_option("--flow", filters->first, "Only errors of this flow");
  list->add_option("--type", filters->second, "Only errors of this type (Exception, Timeout, ...)");
  list->callback([o, filters] {
    auto t = connect(*o);
    std::string target = "/api/v1/errors?project=" + url_escape(o->project);
    if (!filters->first.empty()) target += "&flow=" + url_escape(filters->first);
    if (!filters->second.empty()) target += "&type=" + url_escape(filters->second);
    auto r = admin_request(t, "GET", target);
    if (!r) die(r.error());
    if (r->status != 200) die(problem_detail(r->body));
    if (o->json) {
      std::printf("%s\n", printable(r->body).c_str());
      return;
    }
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(r->body).get(doc)) die("unexpected answer: " + printable(r->body));
    if (doc.get_array().size() == 0) {
      std::printf("no errors\n");
      return;
    }
    std::printf("%-8s %-20s %-24s %-16s %-16s %s\n", "ID", "TYPE", "AT", "FLOW/BLOCK", "KEY", "MESSAGE");
    for (auto e : doc.get_array()) {
      auto s = [&](const char* k) {
        std::string_view v;
        return e[k].get_string().get(v) ? std::string() : printable(v, true);
      };
      std::printf("%-8s %-20s %-24s %-16s %-16s %s\n", s("id").c_str(), s("type").c_str(), s("at").c_str(),
                  (s("flow") + "/" + s("block")).c_str(), s("key").c_str(), s("message").c_str());
    }
  });
}

namespace {

// errors show|replay|discard ID: one request each.
void add_error_action(CLI::App* errors, const char* name, const char* help, const char* method, const char* suffix) {
  auto o = std::make_shared<target_options>();
  auto id = std::make_shared<std::string>();
  auto* cmd = errors->add_subcommand(name, help);
  cmd->add_option("ID", *id, "The error's id (see errors list)")->required();
  add_target_options(cmd, *o);
  cmd->callback([o, id, method, suffix, name] {
    auto t = connect(*o);
    auto project = resolve_project(t, o->project);
    auto r = admin_request(t, method, "/api/v1/errors/" + url_escape(*id) + suffix + "?project=" + url_escape(project));
    if (!r) die(r.error());
    if (r->status != 200) die(problem_detail(r->body));
    if (o->json || std::string(name) == "show")
      std::printf("%s\n", r->body.c_str());
    else
      std::printf("%s %s\n", std::string(name) == "replay" ? "replayed" : "discarded", id->c_str());
  });
}

}  // namespace

void register_error_actions(CLI::App& app) {
  auto* errors = app.get_subcommand("errors");
  add_error_action(errors, "show", "Print one error record (std:Error JSON)", "GET", "");
  add_error_action(errors, "replay",
                   "Put the failed input back at the tail of its key's queue, to run on the current state and revision",
                   "POST", "/replay");
  add_error_action(errors, "discard", "Remove an error from the queue", "DELETE", "");
}

void register_schema_registry_commands(CLI::App& app) {
  CLI::App* schema = nullptr;
  try {
    schema = app.get_subcommand("schema");
  } catch (const CLI::OptionNotFound&) {
    schema = app.add_subcommand("schema", "JSON Schema tools and the node's schema registry");
  }
  auto o = std::make_shared<target_options>();
  auto args = std::make_shared<std::pair<std::string, std::string>>();
  auto* add = schema->add_subcommand("add", "Add a public type (a fully qualified URL) to the node's schema registry");
  add->add_option("URL", args->first, "The type's URL, as blocks name it")->required();
  add->add_option("FILE", args->second, "The JSON Schema file")->required()->check(CLI::ExistingFile);
  add_target_options(add, *o);
  add->callback([o, args] {
    auto text = read_file(args->second);
    if (!text) die("cannot read " + args->second);
    auto t = connect(*o);
    std::string body = "{\"url\":";
    http::append_json_string(body, args->first);
    body += ",\"schema\":" + *text + "}";
    auto r = admin_request(t, "POST", "/api/v1/schemas", body);
    if (!r) die(r.error());
    if (r->status != 201) die(args->second + ": " + problem_detail(r->body));
    std::printf("added %s\n", args->first.c_str());
  });
}

}  // namespace flowstate::cli
