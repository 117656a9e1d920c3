// `flowstate secret set|list|rm|rotate-key`: the project's secrets.yaml in
// the working tree (docs/secrets.md). Values come from stdin and are never
// printed; the master key comes from --master-key, $FLOWSTATE_MASTER_KEY,
// $FLOWSTATE_MASTER_KEY_FILE or DATA/master.key (made on first use).
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <sstream>

#include "cli_target.hpp"
#include "commands.hpp"
#include "flowstate/runtime/secrets.hpp"
#include "node_files.hpp"

namespace flowstate::cli {

namespace {

namespace fs = std::filesystem;

struct secret_options {
  std::string project = ".";
  std::string data_dir;
  std::string master_key;
  std::string name;
};

std::string project_name(const std::string& dir) {
  try {
    auto doc = YAML::LoadFile(dir + "/flowstate.yaml");
    auto name = doc["name"].as<std::string>("");
    if (name.empty()) die(dir + "/flowstate.yaml: no `name:` (secrets are bound to the project's name)");
    return name;
  } catch (const YAML::Exception& e) {
    die(dir + "/flowstate.yaml: " + e.msg + " (is " + dir + " a project? use --project DIR)");
  }
}

secrets::store load(const std::string& dir) {
  std::ifstream in(dir + "/" + std::string(secrets::file_name));
  std::stringstream text;
  if (in) text << in.rdbuf();
  auto s = secrets::parse(text.str());
  if (!s) die(dir + "/" + s.error());
  return *s;
}

void save(const std::string& dir, const secrets::store& s) {
  const std::string path = dir + "/" + std::string(secrets::file_name);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << secrets::render(s);
    if (!out.flush()) die(tmp + ": cannot write it");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) die(path + ": " + ec.message());
}

secrets::master_key master(const secret_options& o, bool create) {
  const std::string data = o.data_dir.empty() ? default_data_dir() : o.data_dir;
  const std::string default_file = data + "/master.key";
  auto k = secrets::find_master_key(o.master_key, default_file);
  if (!k) die(k.error());
  if (*k) return **k;
  if (!create)
    die("no master key: give --master-key FILE, set FLOWSTATE_MASTER_KEY, or make one with `flowstate secret set`");
  std::error_code ec;
  fs::create_directories(data, ec);
  auto made = secrets::create_master_key(default_file);
  if (!made) die(made.error());
  std::fprintf(stderr,
               "flowstate secret: made a master key in %s: keep a copy outside git; every node that runs this "
               "project needs it (--master-key or FLOWSTATE_MASTER_KEY)\n",
               default_file.c_str());
  return *made;
}

void add_common(CLI::App* cmd, secret_options& o) {
  cmd->add_option("--project", o.project, "The project's directory (default: the current one)");
  cmd->add_option("--data", o.data_dir, "Data directory holding master.key (default $FLOWSTATE_DATA)");
  cmd->add_option("--master-key", o.master_key, "File holding the master key (64 hex digits)");
}

}  // namespace

void register_secret_commands(CLI::App& app) {
  auto* secret = app.add_subcommand("secret", "Encrypted secrets of a project (secrets.yaml), for driver settings");
  secret->require_subcommand(1);
  auto o = std::make_shared<secret_options>();

  auto* set =
      secret->add_subcommand("set", "Set secret NAME to the value read from stdin (a trailing newline is dropped)");
  set->add_option("NAME", o->name)->required();
  add_common(set, *o);
  set->callback([o] {
    if (!secrets::valid_name(o->name))
      die("\"" + o->name + "\" is not a secret name: 1 to 64 letters, digits or _, not starting with a digit");
    const std::string project = project_name(o->project);
    auto s = load(o->project);
    auto key = master(*o, true);
    std::string value((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (!value.empty() && value.back() == '\n') value.pop_back();
    if (!value.empty() && value.back() == '\r') value.pop_back();
    if (value.empty()) die("no value on stdin (echo -n VALUE | flowstate secret set " + o->name + ")");
    if (auto st = secrets::set(s, key, project, o->name, value); !st) die(st.error());
    save(o->project, s);
    std::fprintf(stderr, "flowstate secret: %s set in %s/secrets.yaml; commit it and deploy\n", o->name.c_str(),
                 o->project.c_str());
  });

  auto* list = secret->add_subcommand("list", "List the secrets' names (never their values)");
  add_common(list, *o);
  list->callback([o] {
    auto s = load(o->project);
    for (auto& [name, v] : s.values) std::printf("%s\t(data key %u)\n", name.c_str(), v.key);
  });

  auto* rm = secret->add_subcommand("rm", "Remove secret NAME");
  rm->add_option("NAME", o->name)->required();
  add_common(rm, *o);
  rm->callback([o] {
    auto s = load(o->project);
    if (auto st = secrets::remove(s, o->name); !st) die(st.error());
    save(o->project, s);
  });

  auto* rotate = secret->add_subcommand(
      "rotate-key", "Encrypt every value with a new data key (the old ones stay, for older revisions)");
  add_common(rotate, *o);
  rotate->callback([o] {
    auto s = load(o->project);
    if (auto st = secrets::rotate_key(s, master(*o, false), project_name(o->project)); !st) die(st.error());
    save(o->project, s);
    std::fprintf(stderr, "flowstate secret: data key %u now encrypts every value\n", s.wrapped_keys.rbegin()->first);
  });
}

}  // namespace flowstate::cli
