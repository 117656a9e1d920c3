// Custom drivers (docs/drivers.md "Custom drivers"): the package a driver
// file names, built into what its process runs; custom sources, one process
// per source block of an active revision (started and stopped by the timer
// actor's wake, like mqtt.Subscribe), each message accepted by one commit
// before the driver's emit is acknowledged. Custom sinks are built with the
// revision (engine_build.cpp) and fed by the sinks actor.
#include <filesystem>

#include "engine_impl.hpp"
#include "flowstate/drivers/custom.hpp"
#include "flowstate/runtime/file_source.hpp"
#include "flowstate/runtime/python_modules.hpp"
#include "flowstate/runtime/secrets.hpp"
#include "flowstate/sandbox/bundle.hpp"
#include "source_sync.hpp"

namespace flowstate::engine_detail {

namespace custom = drivers::custom;

struct engine_impl::custom_source {
  std::string identity;  // configuration and code: a change restarts the process
  std::shared_ptr<custom::source> handle;
};

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A Python driver's code: every .py file under vendor/ (the package and what
// it imports) and the wheels there; the package must be one of them.
result<custom::package_code> python_code(file_source& files, const custom::kind_name& k, const std::string& file) {
  custom::package_code code;
  code.kind = k;
  const std::string top = k.package.substr(0, k.package.find('.'));
  const std::string path = k.package.substr(0, k.package.find('.')) == k.package
                               ? k.package
                               : std::string(k.package).replace(k.package.find('.'), 1, "/");
  std::size_t bytes = 0;
  bool found = false;
  for (const auto& name : files.list_tree("vendor")) {
    const std::string rel = name.substr(std::string("vendor/").size());
    if (ends_with(name, ".py")) {
      auto text = files.read(name);
      if (!text) continue;
      bytes += text->size();
      found |= rel == path + ".py" || rel.rfind(top + "/", 0) == 0;
      code.files.emplace(rel, std::move(*text));
    } else if (ends_with(name, ".whl") && rel.find('/') == std::string::npos) {
      auto bytes_of = files.read(name);
      if (!bytes_of) continue;
      bytes += bytes_of->size();
      // A wheel's file name starts with its distribution name, "-" as "_".
      std::string dist = rel.substr(0, rel.find('-'));
      for (auto& c : dist) c = c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string wanted = top;
      for (auto& c : wanted) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      found |= dist == wanted;
      code.wheels.push_back(std::move(*bytes_of));
    }
  }
  if (bytes > max_python_modules_bytes)
    return fail(file + ": vendor/ holds more than 64 MiB of Python modules and wheels (the limit for a driver)");
  if (!found)
    return fail(file + ": Python package " + k.package + " not found: expected vendor/" + top +
                "/__init__.py, vendor/" + path + ".py or a wheel vendor/" + top + "-VERSION-py3-none-any.whl");
  return code;
}

}  // namespace

result<custom::driver_options> engine_impl::custom_driver(project_entry& e, file_source& files,
                                                          const custom::kind_name& k, const std::string& file,
                                                          const std::string& config_json) {
  custom::driver_options o;
  auto config = custom::parse_config(config_json);
  if (!config) return fail(file + ": " + config.error());
  o.config = std::move(*config);
  if (k.lang == custom::language::js) {
    auto bundle = sandbox::bundle_driver(e.dir, k.package, file);
    if (!bundle) return fail(bundle.error());
    o.code.kind = k;
    o.code.js_bundle = std::move(*bundle);
  } else {
    auto code = python_code(files, k, file);
    if (!code) return fail(code.error());
    o.code = std::move(*code);
  }
  o.js_binary = options_.driver_js_binary.empty()
                    ? (std::filesystem::path(options_.worker_binary).parent_path() / "flowstate-driver-js").string()
                    : options_.driver_js_binary;
  return o;
}

void engine_impl::sync_custom_sources() {
  if (!ready_.load() || core_.draining.load()) return;
  auto wanted = active_sources(block_kind::custom_source);
  std::vector<std::shared_ptr<custom_source>> stop;
  {
    std::lock_guard lock(mqtt_mutex_);
    stop = prune_sources(custom_sources_, wanted);
  }
  for (auto& s : stop) s->handle->stop();
  for (auto& [id, at] : wanted) {
    const auto& [rt, f] = at;
    const auto& flow = rt->flows[f];
    const auto& block = flow.blocks[0];
    auto source = std::make_shared<custom_source>();
    source->identity = block.driver_config;
    custom::source_handlers h;
    const uint32_t project = rt->project_id;
    const std::string flow_name = flow.name, block_id = block.id;
    h.on_emit = [this, project, flow_name, block_id](custom::emitted&& m,
                                                     std::function<void(bool, std::string)> acked) {
      auto snap = std::atomic_load(&snapshot_);
      auto found = snap->projects.find(project);
      const int fi = found == snap->projects.end() ? -1 : found->second->find_flow(flow_name);
      // Still this source (a deploy may have replaced the flow meanwhile).
      const auto* flow = fi < 0 ? nullptr : &found->second->flows[static_cast<std::size_t>(fi)];
      if (!flow || flow->blocks.size() < 2 || flow->blocks[0].kind != block_kind::custom_source ||
          flow->blocks[0].id != block_id)
        return acked(false, "the source is not deployed any more");
      auto done = [acked](bool ok) { acked(ok, ok ? std::string() : "not committed: the node could not write it"); };
      const std::string key = m.key.value_or(block_id);
      accept_message(found->second, static_cast<uint32_t>(fi), {}, {}, std::move(m.payload_json), key, m.id, key,
                     "custom", std::move(done));
    };
    h.may_read = [this, project] { return sources_may_read(project); };
    source->handle = custom::start_source(*sink_io_, *block.custom, std::move(h));
    std::lock_guard lock(mqtt_mutex_);
    custom_sources_[id] = std::move(source);
  }
}

void engine_impl::stop_custom_sources() {
  std::map<std::string, std::shared_ptr<custom_source>> all;
  {
    std::lock_guard lock(mqtt_mutex_);
    all.swap(custom_sources_);
  }
  for (auto& [_, s] : all) s->handle->stop();
}

}  // namespace flowstate::engine_detail
