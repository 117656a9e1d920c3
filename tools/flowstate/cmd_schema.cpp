// `flowstate schema check`: validate NDJSON instances from stdin against a
// schema, one JSON result line per instance.
#include <simdjson.h>
#include <unistd.h>
#include "flowstate/runtime/json_text.hpp"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "flowstate/schema/schema.hpp"

namespace flowstate::cli {

namespace {

namespace fs_schema = flowstate::schema;

struct check_options {
  std::string schema_file;
  std::string draft = "2020-12";
  std::vector<std::string> maps;
  bool format_assertion = false;
};

using flowstate::append_json_string;

void append_errors(std::string& out, const std::vector<fs_schema::validation_error>& errors) {
  out += "{\"valid\":false,\"errors\":[";
  bool first = true;
  for (const auto& e : errors) {
    if (!first) out.push_back(',');
    first = false;
    out += "{\"instanceLocation\":";
    append_json_string(out, e.instance_location);
    out += ",\"keywordLocation\":";
    append_json_string(out, e.keyword_location);
    out += ",\"keyword\":";
    append_json_string(out, e.keyword);
    out += ",\"error\":";
    append_json_string(out, e.message);
    out.push_back('}');
  }
  out += "]}\n";
}

// Refuses with exit code 2 and the message on stderr.
[[noreturn]] void refuse(const std::string& message) {
  std::cerr << "flowstate schema check: " << message << "\n";
  throw CLI::RuntimeError(2);
}

std::string absolute_file_uri(const std::string& path) {
  std::string abs = path;
  if (abs.empty() || abs[0] != '/') {
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) abs = std::string(cwd) + "/" + path;
  }
  return "file://" + abs;
}

void run_check(const check_options& opts) {
  std::ifstream in(opts.schema_file, std::ios::binary);
  if (!in) refuse(opts.schema_file + ": cannot read the schema file");
  std::ostringstream text;
  text << in.rdbuf();

  fs_schema::compile_options copts;
  auto d = fs_schema::parse_draft(opts.draft);
  if (!d) refuse("--draft: expected 2020-12 or 07, got \"" + opts.draft + "\"");
  copts.default_draft = *d;
  copts.format_assertion = opts.format_assertion;
  copts.base_uri = absolute_file_uri(opts.schema_file);
  std::vector<std::pair<std::string, std::string>> maps;
  for (const auto& m : opts.maps) {
    auto eq = m.find('=');
    if (eq == std::string::npos || eq == 0) refuse("--map: expected URL_PREFIX=DIR, got \"" + m + "\"");
    maps.emplace_back(m.substr(0, eq), m.substr(eq + 1));
  }
  maps.emplace_back("file://", "/");  // siblings of the schema file
  copts.resolve = fs_schema::directory_resolver(std::move(maps));

  auto compiled = fs_schema::validator::compile(text.str(), copts);
  if (!compiled) refuse(opts.schema_file + ": " + compiled.error().to_string());
  const fs_schema::validator& validator = compiled.value();

  simdjson::dom::parser parser;
  std::vector<fs_schema::validation_error> errors;
  std::string out;
  out.reserve(1 << 17);
  // Input buffer with simdjson's padding after the data, refilled in chunks;
  // each line is parsed in place.
  std::vector<char> buf(1 << 20);
  size_t start = 0, end = 0;
  bool eof = false;
  auto handle_line = [&](const char* line, size_t len) {
    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t')) --len;
    size_t skip = 0;
    while (skip < len && (line[skip] == ' ' || line[skip] == '\t')) ++skip;
    if (skip == len) return;
    simdjson::dom::element doc;
    auto err = parser.parse(line + skip, len - skip, false).get(doc);
    if (err != simdjson::SUCCESS) {
      out +=
          "{\"valid\":false,\"errors\":[{\"instanceLocation\":\"\",\"keywordLocation\":\"\",\"keyword\":\"\","
          "\"error\":";
      append_json_string(out, std::string("not valid JSON: ") + simdjson::error_message(err));
      out += "}]}\n";
    } else {
      errors.clear();  // keeps its capacity: no allocation for valid instances
      if (validator.validate(doc, errors))
        out += "{\"valid\":true}\n";
      else
        append_errors(out, errors);
    }
    if (out.size() >= (1 << 16)) {
      std::fwrite(out.data(), 1, out.size(), stdout);
      out.clear();
    }
  };
  while (true) {
    // Find complete lines in [start, end).
    const char* base = buf.data();
    while (true) {
      const char* nl = static_cast<const char*>(std::memchr(base + start, '\n', end - start));
      if (!nl) break;
      handle_line(base + start, static_cast<size_t>(nl - (base + start)));
      start = static_cast<size_t>(nl - base) + 1;
    }
    if (eof) {
      if (start < end) {
        std::memset(buf.data() + end, ' ', simdjson::SIMDJSON_PADDING);
        handle_line(buf.data() + start, end - start);
      }
      break;
    }
    // Move the partial line to the front; grow when one line fills the buffer.
    std::memmove(buf.data(), buf.data() + start, end - start);
    end -= start;
    start = 0;
    if (buf.size() - end < (1 << 16) + simdjson::SIMDJSON_PADDING) buf.resize(buf.size() * 2);
    ssize_t n = read(STDIN_FILENO, buf.data() + end, buf.size() - end - simdjson::SIMDJSON_PADDING);
    if (n <= 0)
      eof = true;
    else
      end += static_cast<size_t>(n);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

void register_schema_commands(CLI::App& app) {
  auto* schema = app.add_subcommand("schema", "JSON Schema tools");
  schema->require_subcommand(1);
  auto opts = std::make_shared<check_options>();
  auto* check = schema->add_subcommand("check", "validate NDJSON instances from stdin against a schema");
  check->add_option("SCHEMA", opts->schema_file, "schema file (JSON)")->required();
  check->add_option("--draft", opts->draft, "draft when the schema has no $schema: 2020-12 or 07")
      ->capture_default_str();
  check->add_option("--map", opts->maps, "resolve $ref URLs under URL_PREFIX from DIR (URL_PREFIX=DIR)");
  check->add_flag("--format-assertion", opts->format_assertion, "make \"format\" an assertion");
  check->callback([opts] { run_check(*opts); });
}

}  // namespace flowstate::cli
