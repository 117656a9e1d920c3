// Loads and validates a project revision (docs/project-format.md).
#include "flowstate/runtime/project_loader.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "flowstate/runtime/utf8.hpp"
#include "flowstate/runtime/yaml_limits.hpp"
#include "project_detail.hpp"

namespace flowstate {

// The loader only reads the documents (through const nodes: yaml-cpp's
// non-const operator[] would add entries), so a cached document is shared,
// not copied.
class parse_cache {
 public:
  // Documents by text.
  std::unordered_map<std::string, YAML::Node> previous;  // the last load's
  std::unordered_map<std::string, YAML::Node> current;   // this load's

  // A driver file's outcome depends on its path and text only.
  struct driver_outcome {
    std::optional<driver_def> def;
    std::vector<project_problem> problems;
    bool broken = false;
    std::optional<int> kind_line;
  };
  // By path + '\0' + text.
  std::unordered_map<std::string, driver_outcome> drivers_previous, drivers_current;
  // Flows of a load without any problem, by path + '\0' + text: such a flow
  // is reused when every function and driver it names resolves the same way
  // and its on_error flow exists (what its checks looked at elsewhere).
  std::unordered_map<std::string, flow_def> flows_previous, flows_current;

  void rotate() {
    previous.swap(current);
    current.clear();
    drivers_previous.swap(drivers_current);
    drivers_current.clear();
    flows_previous.swap(flows_current);
    flows_current.clear();
  }
};

namespace {
template <class Map>
const typename Map::mapped_type* find_either(const Map& first, const Map& second, const std::string& key) {
  if (auto it = first.find(key); it != first.end()) return &it->second;
  if (auto it = second.find(key); it != second.end()) return &it->second;
  return nullptr;
}
}  // namespace

std::shared_ptr<parse_cache> make_parse_cache() { return std::make_shared<parse_cache>(); }

kind_catalog kind_catalog::defaults() {
  kind_catalog k;
  k.function_kinds = {{"js.Function", "js"}, {"py.Function", "py"}};
  k.driver_kinds = {"http.Request",   "http.Response",   "timer.Interval",  "timer.Cron",    "flow.Publish",
                    "flow.Subscribe", "http.Post",       "mqtt.Subscribe",  "mqtt.Publish",  "influxdb.Write",
                    "influxdb.Query", "postgres.Insert", "postgres.Upsert", "postgres.Query"};
  return k;
}

std::string project_problem::to_string() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ": " + message;
}

namespace {

using detail::did_you_mean;

const std::vector<std::string> manifest_keys = {"name",  "durability", "timeout", "timeout_ms",
                                                "trace", "http",       "limits"};
const std::vector<std::string> manifest_http_keys = {"host", "prefix"};
const std::vector<std::string> manifest_trace_keys = {"full", "keep", "quota"};
const std::vector<std::string> flow_keys = {"blocks", "on_error"};
const std::vector<std::string> block_keys = {"id", "key", "input", "output", "state"};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

using detail::describe;
using detail::line_of;
using detail::parse_duration_ms;

bool is_nonempty_scalar(const YAML::Node& node) { return node.IsScalar() && !node.Scalar().empty(); }

// map[key] for a map without yaml-cpp's cost for an absent key (it formats
// the key through a std::stringstream for an error message nobody reads):
// a deploy of a thousand flows looks up many optional keys that are absent.
// An undefined node (false in a test) when the key is not there.
YAML::Node member(const YAML::Node& map, std::string_view key) {
  if (!map.IsMap()) return map[std::string(key)];
  for (const auto& entry : map)
    if (entry.first.IsScalar() && entry.first.Scalar() == key) return entry.second;
  return YAML::Node(YAML::NodeType::Undefined);
}

// RFC 6901, restricted to the form docs/project-format.md allows: "/a/b", "~0" and "~1" escapes.
std::optional<std::string> json_pointer_problem(const std::string& pointer) {
  if (pointer.empty() || pointer[0] != '/')
    return "expected a JSON pointer starting with \"/\" (e.g. \"/deviceId\"), found " + quoted(pointer);
  for (size_t i = 0; i < pointer.size(); ++i) {
    if (pointer[i] == '~' && (i + 1 == pointer.size() || (pointer[i + 1] != '0' && pointer[i + 1] != '1')))
      return "expected \"~\" to be followed by 0 or 1 in JSON pointer " + quoted(pointer);
  }
  return std::nullopt;
}

class loader {
 public:
  loader(file_source& files, const kind_catalog& kinds, parse_cache* cache)
      : files_(files), kinds_(kinds), cache_(cache) {
    for (const auto& [kind, language] : kinds_.function_kinds) {
      all_kinds_.push_back(kind);
      languages_.insert(language);
    }
    for (const auto& kind : kinds_.driver_kinds) {
      all_kinds_.push_back(kind);
      driver_kind_list_.push_back(kind);
    }
  }

  std::vector<project_problem> run(project_revision& out) {
    rev_.commit = files_.revision();
    load_manifest();
    load_functions();
    load_drivers();
    load_flows();
    if (cache_) {
      if (problems_.empty())
        for (auto& [key, name] : flow_keys_)
          if (auto it = rev_.flows.find(name); it != rev_.flows.end()) cache_->flows_current.emplace(key, it->second);
      cache_->rotate();
    }
    // The manifest first, then by path and line.
    auto order = [](const project_problem& p) {
      return std::make_tuple(p.file != "flowstate.yaml", std::cref(p.file), p.line);
    };
    std::stable_sort(problems_.begin(), problems_.end(),
                     [&](const auto& a, const auto& b) { return order(a) < order(b); });
    out = std::move(rev_);
    return std::move(problems_);
  }

 private:
  void problem(const std::string& file, int line, std::string message) {
    problems_.push_back({file, line, std::move(message)});
  }

  // False after recording the first byte of `text` that is not UTF-8:
  // project files are UTF-8 text, and what a worker is sent must be.
  bool check_utf8(const std::string& file, std::string_view text) {
    if (!is_valid_utf8(file)) {
      std::string shown;
      for (std::size_t i = 0; i < file.size();) {
        auto at = invalid_utf8_at(std::string_view(file).substr(i));
        shown += file.substr(i, at);
        if (at == std::string_view::npos) break;
        shown += '?';
        i += at + 1;
      }
      problem(shown, 0, "expected a UTF-8 file name, found bytes that are not (shown as ?)");
      return false;
    }
    auto at = invalid_utf8_at(text);
    if (at == std::string_view::npos) return true;
    static constexpr char hex[] = "0123456789abcdef";
    auto byte = static_cast<unsigned char>(text[at]);
    auto line_start = text.rfind('\n', at == 0 ? 0 : at - 1);
    line_start = line_start == std::string_view::npos || at == 0 ? 0 : line_start + 1;
    problem(file, 1 + static_cast<int>(std::count(text.begin(), text.begin() + at, '\n')),
            std::string("expected UTF-8 text, found byte 0x") + hex[byte >> 4] + hex[byte & 0xF] + " at column " +
                std::to_string(at - line_start + 1));
    return false;
  }

  // The parsed document, or nullopt after recording why not.
  std::optional<YAML::Node> parse(const std::string& file) {
    auto text = files_.read(file);
    if (!text) {
      problem(file, 0, "expected a readable file, found none");
      return std::nullopt;
    }
    if (!check_utf8(file, *text)) return std::nullopt;
    if (cache_) {
      for (auto* docs : {&cache_->previous, &cache_->current}) {
        if (auto hit = docs->find(*text); hit != docs->end()) {
          YAML::Node doc = hit->second;
          cache_->current.emplace(std::move(*text), doc);
          return doc;
        }
      }
    }
    try {
      auto docs = YAML::LoadAll(*text);
      if (docs.size() > 1) {
        problem(file, line_of(docs[1], 0),
                "a second YAML document (after ---): a project file holds one; remove the --- line or the rest");
        return std::nullopt;
      }
      YAML::Node doc = docs.empty() ? YAML::Node() : docs.front();
      if (auto bad = yaml_limits_problem(doc)) {
        problem(file, bad->line, "invalid YAML: " + bad->message);
        return std::nullopt;
      }
      if (cache_) cache_->current.emplace(std::move(*text), doc);
      return doc;
    } catch (const YAML::ParserException& e) {
      problem(file, e.mark.line >= 0 ? e.mark.line + 1 : 0, "invalid YAML: " + e.msg);
    } catch (const YAML::Exception& e) {
      problem(file, 0, std::string("invalid YAML: ") + e.what());
    }
    return std::nullopt;
  }

  // Reports keys of `map` outside `allowed` and repeated keys.
  void check_keys(const std::string& file, const YAML::Node& map, const std::vector<std::string>& allowed,
                  const std::string& where, bool skip_first = false) {
    std::set<std::string> seen;
    bool first = true;
    for (const auto& entry : map) {
      if (std::exchange(first, false) && skip_first) continue;
      const int line = line_of(entry.first, 1);
      std::string key = entry.first.IsScalar() ? entry.first.Scalar() : detail::yaml_to_json(entry.first);
      if (!seen.insert(key).second) {
        problem(file, line, where + "key " + quoted(key) + " appears twice; expected each key once");
      } else if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string expected;
        for (const auto& k : allowed) expected += (expected.empty() ? "" : ", ") + k;
        std::string hint;
        if (skip_first && std::find(all_kinds_.begin(), all_kinds_.end(), key) != all_kinds_.end())
          hint = " (a block has one kind: is a \"- \" missing before " + quoted(key) + "?)";
        else
          hint = did_you_mean(key, allowed);
        problem(file, line, where + "unknown key " + quoted(key) + "; expected one of " + expected + hint);
      }
    }
  }

  void load_manifest() {
    const std::string file = "flowstate.yaml";
    if (!files_.read(file)) {
      problem(file, 0, "expected a manifest flowstate.yaml at the project root with at least `name:`, found none");
      return;
    }
    auto doc = parse(file);
    if (!doc) return;
    const YAML::Node& root = *doc;
    if (!root.IsMap()) {
      problem(file, line_of(root, 1), "expected a map with at least `name:`, found " + describe(root));
      return;
    }
    check_keys(file, root, manifest_keys, "");
    manifest& m = rev_.manifest_;
    const YAML::Node name = root["name"];
    if (!name) {
      problem(file, 1, "expected `name:` (the project's name), found none");
    } else if (!is_nonempty_scalar(name)) {
      problem(file, line_of(name, 1), "expected `name:` to be a non-empty string, found " + describe(name));
    } else if (auto bad = project_name_problem(name.Scalar()); !bad.empty()) {
      problem(file, line_of(name, 1), bad);
    } else {
      m.name = name.Scalar();
    }
    if (const YAML::Node d = root["durability"]) {
      std::string text = d.IsScalar() ? d.Scalar() : "";
      if (text == "sync") {
        m.durability = durability_mode::sync;
      } else if (text == "relaxed") {
        m.durability = durability_mode::relaxed;
      } else {
        problem(file, line_of(d, 1),
                "expected `durability:` to be sync or relaxed, found " + describe(d) +
                    did_you_mean(text, {"sync", "relaxed"}));
      }
    }
    const YAML::Node timeout = root["timeout"];
    const YAML::Node timeout_ms = root["timeout_ms"];
    if (timeout && timeout_ms) {
      problem(file, line_of(timeout_ms, 1), "expected one of `timeout:` and `timeout_ms:`, found both");
    } else if (timeout) {
      auto ms = timeout.IsScalar() ? parse_duration_ms(timeout.Scalar()) : std::nullopt;
      if (!ms)
        problem(file, line_of(timeout, 1),
                "expected `timeout:` to be a positive duration like 5s or 500ms, found " + describe(timeout));
      else
        m.timeout_ms = static_cast<uint32_t>(*ms);
      m.limits.cpu_ms = {m.timeout_ms, line_of(timeout, 1)};
    } else if (timeout_ms) {
      auto ms = timeout_ms.IsScalar() ? parse_duration_ms(timeout_ms.Scalar() + "ms") : std::nullopt;
      if (!ms)
        problem(file, line_of(timeout_ms, 1),
                "expected `timeout_ms:` to be a positive whole number of milliseconds, found " + describe(timeout_ms));
      else
        m.timeout_ms = static_cast<uint32_t>(*ms);
      m.limits.cpu_ms = {m.timeout_ms, line_of(timeout_ms, 1)};
    }
    if (const YAML::Node limits = root["limits"]) {
      if (!limits.IsMap())
        problem(file, line_of(limits, 1),
                "expected `limits:` to be a map of wall, memory, output, state and/or logs, found " + describe(limits));
      else
        detail::read_limits(limits, "limits.", false, m.limits,
                            [&](int line, std::string message) { problem(file, line, std::move(message)); });
    }
    if (const YAML::Node trace = root["trace"]) load_trace_settings(file, trace, m);
    if (const YAML::Node http = root["http"]) {
      if (!http.IsMap()) {
        problem(file, line_of(http, 1),
                "expected `http:` to be a map with `host:` and/or `prefix:`, found " + describe(http));
      } else {
        check_keys(file, http, manifest_http_keys, "http.");
        if (const YAML::Node host = http["host"]) {
          if (!is_nonempty_scalar(host))
            problem(file, line_of(host, 1), "expected `http.host:` to be a host name, found " + describe(host));
          else
            m.http_host = host.Scalar();
        }
        if (const YAML::Node prefix = http["prefix"]) {
          std::string text = prefix.IsScalar() ? prefix.Scalar() : "";
          if (text.size() < 2 || text.front() != '/' || text.back() == '/')
            problem(file, line_of(prefix, 1),
                    "expected `http.prefix:` like /todo (a leading /, no trailing /), found " + describe(prefix));
          else
            m.http_prefix = text;
        }
      }
    }
  }

  // `trace: {full: 24h, keep: 30d, quota: 1GiB}`.
  void load_trace_settings(const std::string& file, const YAML::Node& trace, manifest& m) {
    if (trace.IsNull() || (trace.IsMap() && trace.size() == 0)) return;
    if (!trace.IsMap()) {
      problem(file, line_of(trace, 1),
              "expected `trace:` to be a map of full, keep and/or quota, found " + describe(trace));
      return;
    }
    check_keys(file, trace, manifest_trace_keys, "trace.");
    auto retention = [&](const char* key, uint64_t& out) {
      const YAML::Node value = trace[key];
      if (!value) return;
      // `full: 0` (or 0s, 0m...): no payloads at all, metadata only.
      static const std::set<std::string> zeros = {"0", "0s", "0m", "0h", "0d"};
      const bool zero = std::string(key) == "full" && value.IsScalar() && zeros.count(value.Scalar());
      auto ms = zero               ? std::optional<uint64_t>(0)
                : value.IsScalar() ? detail::parse_retention_ms(value.Scalar())
                                   : std::nullopt;
      if (!ms)
        problem(file, line_of(value, 1),
                std::string("expected `trace.") + key + ":` to be a duration like 24h, 30d or 90m, found " +
                    describe(value));
      else
        out = *ms;
    };
    retention("full", m.trace_full_ms);
    retention("keep", m.trace_keep_ms);
    if (const YAML::Node quota = trace["quota"]) {
      auto bytes = quota.IsScalar() ? detail::parse_size_bytes(quota.Scalar()) : std::nullopt;
      if (!bytes)
        problem(file, line_of(quota, 1),
                "expected `trace.quota:` to be a size like 1GiB or 200MiB, found " + describe(quota));
      else
        m.trace_quota_bytes = *bytes;
    }
    if (m.trace_keep_ms < m.trace_full_ms)
      problem(file, line_of(trace, 1),
              "expected `trace.keep:` (how long events are kept) to be at least `trace.full:`");
  }

  void load_functions() {
    for (const auto& name : files_.list("functions")) {
      auto dot = name.rfind('.');
      if (dot == std::string::npos || dot == 0) continue;
      std::string stem = name.substr(0, dot), language = name.substr(dot + 1);
      if (!languages_.count(language)) continue;  // helpers, READMEs, ...
      const std::string file = "functions/" + name;
      auto source = files_.read(file);
      if (!source || !check_utf8(file, *source)) continue;
      auto [it, inserted] = rev_.functions.try_emplace(stem);
      if (!inserted) {
        problem(file, 0,
                "function " + quoted(stem) + " is also defined by " + it->second.file +
                    "; expected one file per function name");
        continue;
      }
      it->second = function_def{stem, language, file, std::move(*source)};
    }
  }

  void load_drivers() {
    for (const auto& name : files_.list("drivers")) {
      if (ends_with(name, ".yml")) {
        problem("drivers/" + name, 0, "expected the extension .yaml, found .yml");
        continue;
      }
      if (!ends_with(name, ".yaml")) continue;
      const std::string file = "drivers/" + name;
      const std::string driver_name = name.substr(0, name.size() - 5);
      std::string key;
      if (auto text = cache_ ? files_.read(file) : std::nullopt) {
        key = file + '\0' + *text;
        if (replay_driver(key, driver_name)) continue;
      }
      const std::size_t before = problems_.size();
      load_driver(file, driver_name);
      if (!key.empty()) record_driver(std::move(key), driver_name, before);
    }
  }

  bool replay_driver(const std::string& key, const std::string& driver_name) {
    const auto* hit = find_either(cache_->drivers_previous, cache_->drivers_current, key);
    if (!hit) return false;
    auto outcome = *hit;
    problems_.insert(problems_.end(), outcome.problems.begin(), outcome.problems.end());
    if (outcome.def) rev_.drivers.emplace(driver_name, *outcome.def);
    if (outcome.broken) broken_drivers_.insert(driver_name);
    if (outcome.kind_line) driver_kind_lines_[driver_name] = *outcome.kind_line;
    cache_->drivers_current.emplace(key, std::move(outcome));
    return true;
  }

  void record_driver(std::string key, const std::string& driver_name, std::size_t problems_before) {
    parse_cache::driver_outcome outcome;
    if (auto it = rev_.drivers.find(driver_name); it != rev_.drivers.end()) outcome.def = it->second;
    outcome.problems.assign(problems_.begin() + static_cast<std::ptrdiff_t>(problems_before), problems_.end());
    outcome.broken = broken_drivers_.count(driver_name) > 0;
    if (auto it = driver_kind_lines_.find(driver_name); it != driver_kind_lines_.end()) outcome.kind_line = it->second;
    cache_->drivers_current.emplace(std::move(key), std::move(outcome));
  }

  void load_driver(const std::string& file, const std::string& driver_name) {
    auto doc = parse(file);
    if (!doc) {
      broken_drivers_.insert(driver_name);
      return;
    }
    const YAML::Node& root = *doc;
    driver_def d{driver_name, "", file, ""};
    if (!root.IsMap()) {
      problem(file, line_of(root, 1), "expected a map with `kind:`, found " + describe(root));
      broken_drivers_.insert(driver_name);
      return;
    }
    const YAML::Node kind = member(root, "kind");
    if (!kind) {
      problem(file, 1, "expected `kind:` (one of the driver kinds), found none");
    } else if (!is_nonempty_scalar(kind)) {
      problem(file, line_of(kind, 1), "expected `kind:` to be a driver kind name, found " + describe(kind));
    } else {
      d.kind = kind.Scalar();
      driver_kind_lines_[driver_name] = line_of(kind, 1);
      if (!is_driver_kind(d.kind)) {
        std::string why = kinds_.function_kinds.count(d.kind)
                              ? "; " + d.kind + " is a function kind, which needs no driver file"
                              : did_you_mean(d.kind, driver_kind_list_);
        problem(file, line_of(kind, 1), "unknown driver kind " + quoted(d.kind) + why);
      }
    }
    d.config_json = detail::yaml_to_json(root);
    rev_.drivers.emplace(driver_name, std::move(d));
  }

  void load_flows() {
    std::vector<std::string> flow_files;
    for (const auto& name : files_.list("flows")) {
      if (ends_with(name, ".yml")) {
        problem("flows/" + name, 0, "expected the extension .yaml, found .yml");
      } else if (ends_with(name, ".yaml")) {
        flow_files.push_back(name);
        flow_names_.push_back(name.substr(0, name.size() - 5));
      }
    }
    for (size_t i = 0; i < flow_files.size(); ++i) load_flow(flow_names_[i], "flows/" + flow_files[i]);
  }

  void load_flow(const std::string& flow_name, const std::string& file) {
    if (auto text = cache_ ? files_.read(file) : std::nullopt) {
      std::string key = file + '\0' + *text;
      const bool reused = replay_flow(key);
      flow_keys_.emplace_back(std::move(key), flow_name);
      if (reused) return;
    }
    load_flow_from_text(flow_name, file);
  }

  // A cached flow whose references resolve as they did: used as it is.
  bool replay_flow(const std::string& key) {
    const flow_def* hit = find_either(cache_->flows_previous, cache_->flows_current, key);
    if (!hit) return false;
    for (const auto& b : hit->blocks) {
      if (b.is_function) {
        auto kind = kinds_.function_kinds.find(b.kind);
        auto fn = rev_.functions.find(b.name);
        if (kind == kinds_.function_kinds.end() || fn == rev_.functions.end() || fn->second.language != kind->second)
          return false;
      } else {
        auto driver = rev_.drivers.find(b.name);
        if (!is_driver_kind(b.kind) || driver == rev_.drivers.end() || driver->second.kind != b.kind) return false;
      }
    }
    if (hit->on_error && std::find(flow_names_.begin(), flow_names_.end(), *hit->on_error) == flow_names_.end())
      return false;
    rev_.flows.emplace(hit->name, *hit);
    return true;
  }

  void load_flow_from_text(const std::string& flow_name, const std::string& file) {
    auto doc = parse(file);
    if (!doc) return;
    const YAML::Node& root = *doc;
    flow_def flow{flow_name, file, {}, std::nullopt};
    if (root.IsNull()) {
      problem(file, 1, "empty flow: expected `blocks:` with at least one block, found an empty file");
      return;
    }
    if (!root.IsMap()) {
      problem(file, line_of(root, 1), "expected a map with `blocks:`, found " + describe(root));
      return;
    }
    check_keys(file, root, flow_keys, "");
    const YAML::Node blocks = member(root, "blocks");
    if (!blocks) {
      problem(file, 1, "expected `blocks:` (a list of blocks), found none");
    } else if (blocks.IsNull() || (blocks.IsSequence() && blocks.size() == 0)) {
      problem(file, line_of(blocks, 1), "empty flow: expected at least one block under `blocks:`, found none");
    } else if (!blocks.IsSequence()) {
      problem(file, line_of(blocks, 1), "expected `blocks:` to be a list of blocks, found " + describe(blocks));
    } else {
      std::map<std::string, int> id_lines;
      int index = 0;
      for (const auto& entry : blocks) {
        if (auto block = load_block(file, entry, ++index, id_lines)) flow.blocks.push_back(std::move(*block));
      }
    }
    if (const YAML::Node on_error = member(root, "on_error")) {
      const int line = line_of(on_error, 1);
      if (!is_nonempty_scalar(on_error)) {
        problem(file, line, "expected `on_error:` to name a flow, found " + describe(on_error));
      } else if (on_error.Scalar() == flow_name) {
        problem(file, line, "expected `on_error:` to name another flow, found this flow itself");
      } else if (std::find(flow_names_.begin(), flow_names_.end(), on_error.Scalar()) == flow_names_.end()) {
        problem(file, line,
                "`on_error:` names flow " + quoted(on_error.Scalar()) + ", but flows/" + on_error.Scalar() +
                    ".yaml does not exist" + did_you_mean(on_error.Scalar(), flow_names_));
      } else {
        flow.on_error = on_error.Scalar();
      }
    }
    rev_.flows.emplace(flow_name, std::move(flow));
  }

  std::optional<block_def> load_block(const std::string& file, const YAML::Node& entry, int index,
                                      std::map<std::string, int>& id_lines) {
    block_def b;
    b.line = line_of(entry, 1);
    const std::string position = "block " + std::to_string(index);
    if (!entry.IsMap() || entry.size() == 0) {
      problem(file, b.line, position + ": expected a map like `- js.Function: counter`, found " + describe(entry));
      return std::nullopt;
    }
    const auto first = *entry.begin();
    if (!first.first.IsScalar() || !is_nonempty_scalar(first.second)) {
      problem(file, b.line,
              position + ": expected `kind: name` first (e.g. `- js.Function: counter`), found " +
                  describe(first.first) + ": " + describe(first.second));
      return std::nullopt;
    }
    b.kind = first.first.Scalar();
    b.name = first.second.Scalar();
    const std::string where = position + " (" + b.kind + " " + b.name + "): ";
    bool ok = check_reference(file, b, where);
    const size_t before = problems_.size();
    check_keys(file, entry, block_keys, where, /*skip_first=*/true);
    ok = ok && problems_.size() == before;

    auto string_field = [&](const char* key) -> std::optional<std::string> {
      const YAML::Node value = member(entry, key);
      if (!value) return std::nullopt;
      if (!is_nonempty_scalar(value)) {
        problem(file, line_of(value, b.line),
                where + "expected `" + key + ":` to be a non-empty string, found " + describe(value));
        ok = false;
        return std::nullopt;
      }
      return value.Scalar();
    };
    b.id = string_field("id").value_or(b.name);
    b.key_pointer = string_field("key");
    if (b.key_pointer) {
      if (auto why = json_pointer_problem(*b.key_pointer)) {
        problem(file, line_of(member(entry, "key"), b.line), where + "`key:` " + *why);
        ok = false;
      }
    }
    b.input_type = string_field("input");
    b.output_type = string_field("output");
    b.state_type = string_field("state");

    auto [it, inserted] = id_lines.emplace(b.id, b.line);
    if (!inserted) {
      problem(file, b.line,
              where + "duplicate block id " + quoted(b.id) + " (first used on line " + std::to_string(it->second) +
                  "); expected ids unique within a flow: give one of them a different `id:`");
      ok = false;
    }
    if (!ok) return std::nullopt;
    return b;
  }

  // Checks the block's kind and that the function or driver it names exists.
  bool check_reference(const std::string& file, block_def& b, const std::string& where) {
    if (auto f = kinds_.function_kinds.find(b.kind); f != kinds_.function_kinds.end()) {
      b.is_function = true;
      const std::string& language = f->second;
      const std::string expected = "functions/" + b.name + "." + language;
      auto it = rev_.functions.find(b.name);
      if (it != rev_.functions.end() && it->second.language == language) return true;
      if (it != rev_.functions.end()) {
        problem(file, b.line,
                where + "expected " + expected + ", found " + it->second.file + " (a " + it->second.language +
                    " function" + kind_for_language(it->second.language) + ")");
        return false;
      }
      std::vector<std::string> same_language;
      for (const auto& [name, def] : rev_.functions)
        if (def.language == language) same_language.push_back(name);
      problem(
          file, b.line,
          where + "expected function file " + expected + ", found no such file" + did_you_mean(b.name, same_language));
      return false;
    }
    if (is_driver_kind(b.kind)) {
      const std::string expected = "drivers/" + b.name + ".yaml";
      auto it = rev_.drivers.find(b.name);
      if (it == rev_.drivers.end()) {
        if (broken_drivers_.count(b.name)) return false;  // already reported in the driver file
        std::vector<std::string> names;
        for (const auto& [name, def] : rev_.drivers) names.push_back(name);
        problem(file, b.line,
                where + "expected driver file " + expected + ", found no such file" + did_you_mean(b.name, names));
        return false;
      }
      if (it->second.kind.empty()) return false;  // missing kind: reported in the driver file
      if (it->second.kind != b.kind) {
        problem(file, b.line,
                where + "kind mismatch: the block is " + b.kind + " but " + expected + ":" +
                    std::to_string(driver_kind_lines_[b.name]) + " declares kind " + it->second.kind +
                    "; expected the same kind in both");
        return false;
      }
      return true;
    }
    problem(file, b.line, where + "unknown kind " + quoted(b.kind) + known_kinds_hint(b.kind));
    return false;
  }

  std::string kind_for_language(const std::string& language) const {
    for (const auto& [kind, lang] : kinds_.function_kinds)
      if (lang == language) return "; use " + kind;
    return "";
  }

  std::string known_kinds_hint(const std::string& wrong) const {
    std::string hint = did_you_mean(wrong, all_kinds_);
    if (!hint.empty()) return hint;
    std::string list;
    for (const auto& k : all_kinds_) list += (list.empty() ? "" : ", ") + k;
    return "; expected one of " + list;
  }

  file_source& files_;
  const kind_catalog& kinds_;
  parse_cache* cache_ = nullptr;
  // A built-in kind, or a custom driver's (npm:NAME, python:NAME: the
  // engine checks the package).
  bool is_driver_kind(const std::string& kind) const {
    return kinds_.driver_kinds.count(kind) || kind.rfind("npm:", 0) == 0 || kind.rfind("python:", 0) == 0;
  }

  std::vector<std::string> all_kinds_, driver_kind_list_, flow_names_;
  std::set<std::string> languages_, broken_drivers_;
  std::map<std::string, int> driver_kind_lines_;
  std::vector<std::pair<std::string, std::string>> flow_keys_;  // (path + '\0' + text, flow name), with a cache
  project_revision rev_;
  std::vector<project_problem> problems_;
};

}  // namespace

result<project_revision> load_project(file_source& files, const kind_catalog& kinds,
                                      std::vector<project_problem>* problems, parse_cache* cache) {
  if (problems) problems->clear();
  std::vector<project_problem> found;
  project_revision revision;
  try {
    found = loader(files, kinds, cache).run(revision);
  } catch (const std::exception& e) {
    found.push_back({"", 0, std::string("internal error while loading the project: ") + e.what()});
  }
  if (found.empty()) return revision;
  std::string message;
  for (const auto& p : found) message += (message.empty() ? "" : "\n") + p.to_string();
  if (problems) *problems = std::move(found);
  return fail(std::move(message));
}

std::string project_name_problem(std::string_view name) {
  auto ok = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  };
  const bool valid = !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), ok) &&
                     ok(name.front()) && name.front() != '.' && name.front() != '-' && name.find("..") == name.npos;
  if (valid) return {};
  return "`name:` " + json_quote(name.substr(0, 80)) +
         " is not a project name: up to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (it "
         "goes into URLs and folder names)";
}

result<std::string> project_name_of(file_source& files) {
  auto text = files.read("flowstate.yaml");
  if (!text) return fail("flowstate.yaml: not found at " + files.revision());
  try {
    YAML::Node root = YAML::Load(*text);
    if (yaml_limits_problem(root)) return fail("flowstate.yaml: its aliases nest too deep or expand too far");
    if (root.IsMap() && root["name"] && root["name"].IsScalar() && !root["name"].Scalar().empty())
      return root["name"].Scalar();
  } catch (const YAML::Exception& e) {
    return fail("flowstate.yaml:" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return fail("flowstate.yaml: expected `name:` (the project's name), found none");
}

}  // namespace flowstate
