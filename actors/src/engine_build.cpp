// Deploys: a revision built from git objects (validated, its functions
// loaded into the project's workers), its routes checked, then activated.
#include <caf/all.hpp>

#include <algorithm>
#include <functional>
#include <future>
#include <map>
#include <set>

#include "driver_schema_check.hpp"
#include "engine_impl.hpp"
#include "flowstate/actors/project_limits.hpp"
#include "flowstate/actors/quota.hpp"
#include "flowstate/drivers/custom.hpp"
#include "flowstate/drivers/flow_topics.hpp"
#include "flowstate/drivers/http_post.hpp"
#include "flowstate/drivers/http_routes.hpp"
#include "flowstate/drivers/http_static.hpp"
#include "flowstate/drivers/influxdb.hpp"
#include "flowstate/drivers/mqtt_config.hpp"
#include "flowstate/drivers/postgres.hpp"
#include "flowstate/runtime/fault.hpp"
#include "flowstate/runtime/file_source.hpp"
#include "flowstate/runtime/git_repo.hpp"
#include "flowstate/runtime/project_loader.hpp"
#include "flowstate/runtime/python_modules.hpp"
#include "flowstate/runtime/secrets.hpp"
#include "flowstate/sandbox/bundle.hpp"
#include "flowstate/sandbox/worker_client.hpp"
#include "records.hpp"
#include "types.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(flowstate::engine_detail::project_ptr)

namespace flowstate::engine_detail {
namespace {

// A load callback whose outcome build() waits for, naming `file`.
std::function<void(bool, std::string)> awaited(load_futures& loads, std::string file) {
  auto promise = std::make_shared<std::promise<std::string>>();
  loads.emplace_back(promise->get_future(), std::move(file));
  return [promise](bool ok, std::string error) {
    promise->set_value(ok ? std::string() : (error.empty() ? "cannot load" : error));
  };
}

// flow.Publish blocks learn the flows subscribed to their topic; a publish
// without a subscriber, and flows that publish to each other in a cycle
// (a message could go round forever), are problems.
void link_topics(project_rt& rt, const project_revision& rev, std::vector<std::string>& problems) {
  std::map<std::string, std::vector<uint32_t>> subscribed;
  for (uint32_t f = 0; f < rt.flows.size(); ++f)
    if (!rt.flows[f].blocks.empty() && rt.flows[f].blocks[0].kind == block_kind::flow_subscribe &&
        !rt.flows[f].blocks[0].topic.empty())
      subscribed[rt.flows[f].blocks[0].topic].push_back(f);
  auto file_of = [&](const flow_rt& flow) {
    auto it = rev.flows.find(flow.name);
    return it != rev.flows.end() ? it->second.file : "flows/" + flow.name + ".yaml";
  };
  std::vector<std::set<uint32_t>> edges(rt.flows.size());
  for (uint32_t f = 0; f < rt.flows.size(); ++f)
    for (auto& b : rt.flows[f].blocks) {
      if (b.kind != block_kind::flow_publish || b.topic.empty()) continue;
      auto it = subscribed.find(b.topic);
      if (it == subscribed.end()) {
        problems.push_back(file_of(rt.flows[f]) + ": flow.Publish " + b.name + ": no flow subscribes to topic \"" +
                           b.topic + "\" (a flow starting with a flow.Subscribe of that topic)");
        continue;
      }
      b.subscribers = it->second;
      edges[f].insert(it->second.begin(), it->second.end());
    }
  // A flow's errors go to its on_error flow (unless it receives errors
  // itself: those are not routed again): a message can travel that way too.
  for (uint32_t f = 0; f < rt.flows.size(); ++f)
    if (rt.flows[f].on_error >= 0 && !rt.flows[f].receives_errors)
      edges[f].insert(static_cast<uint32_t>(rt.flows[f].on_error));
  std::vector<int> mark(rt.flows.size(), 0);  // 0 unseen, 1 on the path, 2 done
  std::vector<uint32_t> path;
  std::function<bool(uint32_t)> visit = [&](uint32_t f) {
    mark[f] = 1;
    path.push_back(f);
    for (uint32_t to : edges[f]) {
      if (mark[to] == 1) {
        std::string names;
        for (auto it = std::find(path.begin(), path.end(), to); it != path.end(); ++it)
          names += rt.flows[*it].name + " -> ";
        problems.push_back(file_of(rt.flows[to]) + ": flows " + names + rt.flows[to].name +
                           " publish to each other (or pass errors on) in a cycle: a message could go round forever");
        return true;
      }
      if (mark[to] == 0 && visit(to)) return true;
    }
    path.pop_back();
    mark[f] = 2;
    return false;
  };
  for (uint32_t f = 0; f < rt.flows.size(); ++f)
    if (mark[f] == 0 && visit(f)) break;
}

}  // namespace

deploy_outcome engine_impl::deploy(const std::string& name, const std::string& revision, const std::string& expected) {
  if (auto hook = std::atomic_load(&deploy_hook_); hook && *hook) return (*hook)(name, revision, expected);
  return deploy_here(name, revision, expected, false);
}

deploy_outcome engine_impl::deploy_here(const std::string& name, const std::string& revision,
                                        const std::string& expected, bool dry_run, uint64_t cluster_deploy) {
  deploy_outcome out;
  project_entry* e = find(name);
  if (!e) return {404, "no project named \"" + name + "\"", "", ""};
  std::lock_guard guard(e->deploy_mutex);
  out.replaced = e->active->revision;
  out.revision = out.replaced;
  if (!expected.empty() && expected != out.replaced) {
    out.http_status = 409;
    out.detail = "the active revision is " + out.replaced + ", not " + expected + " (a concurrent deploy?)";
    return out;
  }
  phase_clock clock(&out.timings_ms);
  auto full = resolve(e->dir, revision);
  if (!full) return {422, "revision " + revision + ": " + full.error(), out.replaced, out.replaced};
  if (*full == out.replaced) return out;
  std::vector<http::route> routes;
  auto rt = build(*e, *full, e->active->epoch + 1, routes, &clock);
  if (!rt) return {422, rt.error(), out.replaced, out.replaced};
  if (auto st = check_routes(*e, **rt, routes); !st) {
    unload((*rt)->fresh_function_ids, *e);
    return {422, st.error(), out.replaced, out.replaced};
  }
  if (dry_run) {
    unload((*rt)->fresh_function_ids, *e);
    out.revision = *full;
    return out;
  }
  (*rt)->cluster_deploy.store(cluster_deploy);
  fault_point("deploy.before_record");
  commit_batch b;
  b.put(column::meta, meta_key("active", e->id), *full);
  if (auto st = store_->write_now(std::move(b), true); !st) return {500, st.error(), out.replaced, out.replaced};
  fault_point("deploy.after_record");
  clock.mark("record");
  {
    std::unique_lock lock(mutex_);
    e->routes = std::move(routes);
  }
  activate(*e, std::move(*rt));
  if (cluster_deploy) dispatch_held_again();  // requests held for this deploy
  fault_point("deploy.after_activate");
  clock.mark("activate");
  out.revision = *full;
  return out;
}

void engine_impl::set_cluster_deploy(const std::string& name, const std::string& revision, uint64_t number) {
  project_entry* e = find(name);
  if (!e) return;
  {
    std::lock_guard guard(e->deploy_mutex);
    if (e->active->revision != revision || e->active->cluster_deploy.load() >= number) return;
    e->active->cluster_deploy.store(number);
  }
  dispatch_held_again();  // requests held for this deploy
}

result<project_ptr> engine_impl::build(project_entry& e, const std::string& revision, uint64_t epoch,
                                       std::vector<http::route>& routes_out, phase_clock* clock) {
  phase_clock none;
  if (!clock) clock = &none;
  auto files = open_git_commit(e.dir, revision);
  if (!files) return fail(files.error());
  auto catalog = kind_catalog::defaults();
  auto rev = load_project(**files, catalog, nullptr, e.parsed.get());
  if (!rev) return fail(rev.error());
  clock->mark("read");
  auto rt = std::make_shared<project_rt>();
  rt->project_id = e.id;
  rt->name = rev->manifest_.name;
  rt->revision = revision;
  rt->epoch = epoch;
  rt->durability = rev->manifest_.durability;
  rt->trace = {rev->manifest_.trace_full_ms, rev->manifest_.trace_keep_ms, rev->manifest_.trace_quota_bytes};
  std::vector<std::string> problems;
  uint64_t max_function_bytes = 0;  // hosted mode: the team's plan's
  std::string plan_name;
  auto ceiling = plan_for(options_.plan, options_.plan_file, rt->name);
  if (options_.hosted_plan) {
    auto hosted = options_.hosted_plan(rt->name);
    if (!hosted) return fail("the plan of project \"" + rt->name + "\" from the control plane: " + hosted.error());
    if (hosted->pool != options_.pool)
      return fail("project " + rt->name + ": its team's projects run on pool \"" + hosted->pool +
                  "\" (dedicated placement), and this node is in pool \"" + options_.pool + "\"; deploy it there" +
                  (hosted->pool_nodes.empty() ? std::string(" (no node of that pool has reported lately)")
                                              : " (--admin " + hosted->pool_nodes + ")"));
    ceiling = overlay(ceiling, hosted->limits);
    // The plan's log retention caps the trace's (flowstate.yaml `trace:`).
    if (const uint64_t most = hosted->log_retention_ms) {
      rt->trace.keep_ms = std::min(rt->trace.keep_ms, most);
      rt->trace.full_ms = std::min(rt->trace.full_ms, most);
    }
    max_function_bytes = hosted->max_function_bytes;
    plan_name = hosted->plan;
    if (!hosted->custom_drivers)
      for (auto& [name, d] : rev->drivers)
        if (d.kind.rfind("npm:", 0) == 0 || d.kind.rfind("python:", 0) == 0)
          problems.push_back(d.file + ": kind " + d.kind + " is a custom driver, which the team's plan (" +
                             hosted->plan + ") does not allow");
  }
  if (options_.meter) {
    auto account = options_.meter->account_for(rt->name);
    if (!account)
      return fail("the executions of project \"" + rt->name + "\" from the control plane: " + account.error());
    rt->quota = std::move(*account);
  }
  auto limits = project_limits(ceiling, rev->manifest_);
  if (!limits) problems.push_back(limits.error());
  // The same workers while the limits stay; new ones when they change.
  auto pools = e.pools;
  if (limits && (!pools || !(pools->limits == *limits))) {
    pools = std::shared_ptr<worker_pools>(new worker_pools(), [g = graveyard_](worker_pools* p) { g->bury(p); });
    pools->limits = *limits;
    pools->generation = next_function_id_++;
  }
  rt->pools = pools;
  rt->timeout_ms = limits ? limits->cpu_ms_per_call : rev->manifest_.timeout_ms;
  rt->http_host = rev->manifest_.http_host;
  rt->http_prefix = rev->manifest_.http_prefix;
  if (options_.hosted_domain) {
    // Hosted mode: the service places TEAM.PROJECT (engine.hpp, hosted_domain).
    const auto dot = rt->name.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == rt->name.size())
      return fail("flowstate.yaml: a hosted project is named TEAM.PROJECT, found \"" + rt->name + "\"");
    const auto team = rt->name.substr(0, dot), project = rt->name.substr(dot + 1);
    rt->http_host = options_.hosted_domain->empty() ? "" : project + "." + team + "." + *options_.hosted_domain;
    rt->http_prefix = options_.hosted_domain->empty() ? "/" + team + "/" + project : "";
  }
  rt->files = http::static_site::load(**files, e.dir);
  if (!pools) return fail(problems.front());
  std::vector<http::route> routes;
  std::map<std::string, uint64_t> function_ids;
  std::vector<std::pair<sandbox::worker_client*, uint64_t>> fresh;  // loaded by this build
  std::vector<std::pair<std::future<std::string>, std::string>> loads;
  const module_set_ref modules = load_module_set(e, **files, *rev, *rt, fresh, loads, problems);
  if (!sink_io_ || sink_io_->stopped()) return fail("the node is shutting down: no deploy now");
  // Driver configurations, `${secret:NAME}` replaced by the secrets'
  // values (docs/secrets.md); the values stay in memory only.
  std::map<std::string, std::string> configs;
  {
    std::optional<std::map<std::string, std::string>> opened;
    for (auto& [name, d] : rev->drivers) {
      configs[name] = d.config_json;
      if (secrets::references(d.config_json).empty()) continue;
      if (!opened) {
        opened.emplace();
        if (!options_.master_key) {
          problems.push_back(d.file +
                             ": uses secrets, and this node has no master key (flowstate serve "
                             "--master-key FILE, or FLOWSTATE_MASTER_KEY)");
          continue;
        }
        auto store = secrets::parse((*files)->read(std::string(secrets::file_name)).value_or(""));
        auto values = store ? secrets::open_all(*store, *options_.master_key, rt->name)
                            : result<std::map<std::string, std::string>>(fail(store.error()));
        if (!values) {
          problems.push_back(values.error());
          continue;
        }
        *opened = std::move(*values);
        for (auto& [secret, value] : *opened) rt->secrets.emplace_back(secret, value);
      }
      auto substituted = secrets::substitute(d.config_json, *opened);
      if (!substituted)
        problems.push_back(d.file + ": " + substituted.error());
      else
        configs[name] = std::move(*substituted);
    }
  }
  for (auto& [fname, fdef] : rev->flows) {
    flow_rt flow;
    flow.name = fname;
    for (std::size_t i = 0; i < fdef.blocks.size(); ++i) {
      const auto& bd = fdef.blocks[i];
      block_rt b;
      b.id = bd.id;
      b.name = bd.name;
      b.key_pointer = bd.key_pointer;
      b.kind_name = bd.kind;
      if (bd.kind == "js.Function" || bd.kind == "py.Function") b.stats = stats_for(e.id, fname, bd.id);
      auto where = fdef.file + ":" + std::to_string(bd.line) + ": ";
      if (options_.project_ids && i > 1 && bd.key_pointer)
        for (std::size_t later = i + 1; later < fdef.blocks.size(); ++later)
          if (fdef.blocks[later].kind == "http.Response") {
            problems.push_back(where + "block " + bd.id +
                               " re-keys its messages (`key:`) and an http.Response comes after it: in a cluster the "
                               "new key may live on another node, which cannot answer the client's connection here. "
                               "Put the http.Response before this block (its input answers the client and the "
                               "message goes on), or end the flow without one (the client gets 202 once the message "
                               "is accepted)");
            break;
          }
      // Hosted mode: the team's registry types before the node's (TEAM.PROJECT).
      const auto registry = options_.hosted_plan && rt->name.find('.') != std::string::npos
                                ? registry_for(rt->name.substr(0, rt->name.find('.')))
                                : registry_lookup_;
      auto typed = [&](const std::optional<std::string>& name, type_check& into, const char* what) {
        if (!name) return;
        auto t = compile_type(*name, **files, registry);
        if (!t)
          problems.push_back(where + "block " + bd.id + ": " + what + " " + t.error());
        else
          into = std::move(*t);
      };
      typed(bd.input_type, b.input, "input");
      typed(bd.output_type, b.output, "output");
      typed(bd.state_type, b.state, "state");
      if (bd.kind == "js.Function" || bd.kind == "py.Function") {
        b.kind = block_kind::function;
        auto& fn = rev->functions.at(bd.name);
        auto worker = worker_for(*pools, fn.language);
        if (!worker) {
          problems.push_back(where + worker.error());
          flow.blocks.push_back(std::move(b));
          continue;
        }
        b.worker = *worker;
        auto it = function_ids.find(bd.name);
        if (it == function_ids.end()) {
          std::string source = fn.source;
          if (fn.language == "js") {
            // npm packages are bundled at deploy, from the project's node_modules.
            auto bundled = sandbox::bundle_js(e.dir, fn.file, fn.source);
            if (!bundled) {
              problems.push_back(bundled.error());
              flow.blocks.push_back(std::move(b));
              continue;
            }
            source = std::move(bundled->source);
          }
          if (max_function_bytes && source.size() > max_function_bytes)
            problems.push_back(fn.file + ": the function is " + std::to_string(source.size()) +
                               " bytes with its bundled packages, above the " + std::to_string(max_function_bytes) +
                               " of the team's plan (" + plan_name + ")");
          // A Python function is reloaded when a module it may import changed.
          const uint64_t module_set = fn.language == "py" ? modules.id : 0;
          auto cache_key = fn.language + '\0' + fn.file + '\0' + source + '\0' + (module_set ? modules.hash : "");
          auto [id, is_new] = cached_id(e, std::move(cache_key), *worker, *rt, fresh);
          it = function_ids.emplace(bd.name, id).first;
          if (is_new) (*worker)->load(id, fn.name, fn.file, std::move(source), awaited(loads, fn.file), module_set);
        }
        b.function_id = it->second;
      } else if (bd.kind == "http.Request") {
        b.kind = block_kind::http_request;
        if (i != 0) problems.push_back(where + "http.Request is a source: it must be the first block");
        auto dit = rev->drivers.find(bd.name);
        auto parsed = http::parse_request_routes(configs.at(bd.name));
        if (!parsed) {
          problems.push_back(dit->second.file + ": " + parsed.error());
        } else {
          for (auto& r : *parsed) {
            r.project_id = e.id;
            r.flow_index = static_cast<uint32_t>(rt->flows.size());
            routes.push_back(std::move(r));
          }
        }
      } else if (bd.kind == "http.Response") {
        b.kind = block_kind::http_response;
      } else if (bd.kind == "flow.Publish" || bd.kind == "flow.Subscribe") {
        const bool subscribe = bd.kind == "flow.Subscribe";
        b.kind = subscribe ? block_kind::flow_subscribe : block_kind::flow_publish;
        if (subscribe && i != 0) problems.push_back(where + "flow.Subscribe is a source: it must be the first block");
        if (!subscribe && i == 0)
          problems.push_back(where + "flow.Publish is a sink: it takes the outputs of the function before it");
        if (subscribe && i == 0 &&
            (fdef.blocks.size() < 2 || fdef.blocks[1].kind.find(".Function") == std::string::npos))
          problems.push_back(where + "flow.Subscribe must be followed by a function block (what receives the topic)");
        auto dit = rev->drivers.find(bd.name);
        auto topic = drivers::flow_topics::parse_topic(configs.at(bd.name), bd.kind);
        if (!topic)
          problems.push_back(dit->second.file + ": " + topic.error());
        else
          b.topic = std::move(*topic);
      } else if (bd.kind == "timer.Interval" || bd.kind == "timer.Cron") {
        b.kind = block_kind::timer;
        if (i != 0) problems.push_back(where + bd.kind + " is a source: it must be the first block");
        if (i == 0 && (fdef.blocks.size() < 2 || fdef.blocks[1].kind.find(".Function") == std::string::npos))
          problems.push_back(where + bd.kind + " must be followed by a function block (what runs at each tick)");
        auto dit = rev->drivers.find(bd.name);
        auto parsed = bd.kind == "timer.Cron" ? drivers::timer::parse_cron(configs.at(bd.name))
                                              : drivers::timer::parse_interval(configs.at(bd.name));
        if (!parsed)
          problems.push_back(dit->second.file + ": " + parsed.error());
        else
          b.timer = std::make_shared<const drivers::timer::interval_config>(std::move(*parsed));
      } else if (bd.kind == "mqtt.Subscribe") {
        b.kind = block_kind::mqtt_subscribe;
        if (i != 0) problems.push_back(where + bd.kind + " is a source: it must be the first block");
        if (i == 0 && (fdef.blocks.size() < 2 || fdef.blocks[1].kind.find(".Function") == std::string::npos))
          problems.push_back(where + bd.kind + " must be followed by a function block (what receives each message)");
        auto dit = rev->drivers.find(bd.name);
        auto parsed = drivers::mqtt::parse_subscribe(configs.at(bd.name));
        if (!parsed) {
          problems.push_back(dit->second.file + ": " + parsed.error());
        } else {
          b.mqtt = std::make_shared<const drivers::mqtt::subscribe_config>(std::move(*parsed));
          b.driver_config = configs.at(bd.name);
        }
      } else if (bd.kind == "mqtt.Publish") {
        b.kind = block_kind::sink;
        if (i == 0) problems.push_back(where + bd.kind + " is a sink: it takes the outputs of the function before it");
        auto dit = rev->drivers.find(bd.name);
        auto parsed = drivers::mqtt::parse_publish(configs.at(bd.name));
        if (!parsed)
          problems.push_back(dit->second.file + ": " + parsed.error());
        else
          b.sink = drivers::mqtt::make_publish_sink(
              *sink_io_, std::move(*parsed), "flowstate-pub-" + new_message_id().substr(0, 12),
              "flow " + fname + ", block " + bd.id,
              [secrets = rt->secrets](std::string line) { return secrets::redact(std::move(line), secrets); });
      } else if (bd.kind == "influxdb.Write") {
        b.kind = block_kind::sink;
        if (i == 0) problems.push_back(where + bd.kind + " is a sink: it takes the outputs of the function before it");
        auto dit = rev->drivers.find(bd.name);
        auto parsed = drivers::influxdb::parse_write(configs.at(bd.name));
        if (!parsed)
          problems.push_back(dit->second.file + ": " + parsed.error());
        else
          b.sink = drivers::influxdb::make_write_sink(*sink_io_, std::move(*parsed));
      } else if (bd.kind == "influxdb.Query") {
        b.kind = block_kind::query;
        if (i == 0 || i + 1 >= fdef.blocks.size() || fdef.blocks[i + 1].kind.find(".Function") == std::string::npos)
          problems.push_back(where + bd.kind +
                             " takes its parameters from the function before it and answers the function after it: "
                             "put it between two function blocks");
        else if (fdef.blocks[i + 1].key_pointer)
          problems.push_back(fdef.file + ":" + std::to_string(fdef.blocks[i + 1].line) + ": block " +
                             fdef.blocks[i + 1].id + " follows " + bd.kind +
                             ": it keeps the query's key (`key:` cannot re-key a query's answer)");
        auto dit = rev->drivers.find(bd.name);
        auto parsed = drivers::influxdb::parse_query(configs.at(bd.name));
        if (!parsed)
          problems.push_back(dit->second.file + ": " + parsed.error());
        else
          b.sink = drivers::influxdb::make_query_sink(*sink_io_, std::move(*parsed));
      } else if (bd.kind == "postgres.Insert" || bd.kind == "postgres.Upsert") {
        b.kind = block_kind::sink;
        if (i == 0) problems.push_back(where + bd.kind + " is a sink: it takes the outputs of the function before it");
        auto parsed = drivers::postgres::parse_write(configs.at(bd.name), bd.kind == "postgres.Upsert");
        if (!parsed)
          problems.push_back(rev->drivers.at(bd.name).file + ": " + parsed.error());
        else
          b.sink = drivers::postgres::make_write_sink(*sink_io_, std::move(*parsed));
      } else if (bd.kind == "postgres.Query") {
        b.kind = block_kind::query;
        if (i == 0 || i + 1 >= fdef.blocks.size() || fdef.blocks[i + 1].kind.find(".Function") == std::string::npos)
          problems.push_back(where + bd.kind +
                             " takes its parameters from the function before it and answers the function after it: "
                             "put it between two function blocks");
        auto parsed = drivers::postgres::parse_query(configs.at(bd.name));
        if (!parsed)
          problems.push_back(rev->drivers.at(bd.name).file + ": " + parsed.error());
        else
          b.sink = drivers::postgres::make_query_sink(*sink_io_, std::move(*parsed));
      } else if (bd.kind == "http.Post") {
        b.kind = block_kind::sink;
        if (i == 0) problems.push_back(where + bd.kind + " is a sink: it takes the outputs of the function before it");
        auto dit = rev->drivers.find(bd.name);
        auto parsed = drivers::http_post::parse(configs.at(bd.name));
        if (!parsed)
          problems.push_back(dit->second.file + ": " + parsed.error());
        else
          b.sink = drivers::http_post::make_sink(*sink_io_, std::move(*parsed));
      } else if (auto custom_kind = drivers::custom::parse_kind(bd.kind); !custom_kind || *custom_kind) {
        const auto& file = rev->drivers.at(bd.name).file;
        if (!custom_kind) {
          problems.push_back(file + ": " + custom_kind.error());
        } else {
          auto built = custom_driver(e, **files, **custom_kind, file, configs.at(bd.name));
          if (!built) {
            problems.push_back(built.error());
          } else if (i == 0) {
            b.kind = block_kind::custom_source;
            if (fdef.blocks.size() < 2 || fdef.blocks[1].kind.find(".Function") == std::string::npos)
              problems.push_back(where + bd.kind + " is a source here: it must be followed by a function block");
            built->name = "flow " + fname + ", block " + bd.id;
            built->redact = [secrets = rt->secrets](std::string line) {
              return secrets::redact(std::move(line), secrets);
            };
            // The source restarts when its file or its code changes: a digest
            // of the code, not a copy compared every second.
            std::size_t code = std::hash<std::string>{}(built->code.js_bundle);
            for (auto& [path, text] : built->code.files)
              code = code * 31 + std::hash<std::string>{}(path + '\0' + text);
            for (auto& wheel : built->code.wheels) code = code * 31 + std::hash<std::string>{}(wheel);
            b.driver_config = configs.at(bd.name) + '\0' + std::to_string(code);
            b.custom = std::make_shared<const drivers::custom::driver_options>(std::move(*built));
          } else {
            // Between two functions it is a query: what its deliver returns
            // is committed as the next function's input.
            const bool query = i + 1 < fdef.blocks.size() &&
                               fdef.blocks[i + 1].kind.find(".Function") != std::string::npos &&
                               fdef.blocks[i - 1].kind.find(".Function") != std::string::npos;
            b.kind = query ? block_kind::query : block_kind::sink;
            if (query && fdef.blocks[i + 1].key_pointer)
              problems.push_back(fdef.file + ":" + std::to_string(fdef.blocks[i + 1].line) + ": block " +
                                 fdef.blocks[i + 1].id + " follows " + bd.kind +
                                 ": it keeps the query's key (`key:` cannot re-key a query's answer)");
            built->name = "flow " + fname + ", block " + bd.id;
            built->redact = [secrets = rt->secrets](std::string line) {
              return secrets::redact(std::move(line), secrets);
            };
            b.sink = drivers::custom::make_sink(*sink_io_, std::move(*built));
          }
        }
      } else {
        problems.push_back(where + bd.kind + " is not available on this node yet");
      }
      flow.blocks.push_back(std::move(b));
    }
    // Only a request has a client to answer.
    if (!flow.blocks.empty() && flow.blocks[0].kind != block_kind::http_request)
      for (std::size_t i = 1; i < flow.blocks.size(); ++i)
        if (flow.blocks[i].kind == block_kind::http_response)
          problems.push_back(fdef.file + ":" + std::to_string(fdef.blocks[i].line) + ": http.Response " +
                             flow.blocks[i].name + ": this flow starts with " + flow.blocks[0].kind_name +
                             ", so there is no request to answer");
    rt->flows.push_back(std::move(flow));
  }
  for (auto& [fname, fdef] : rev->flows) {
    if (!fdef.on_error) continue;
    int from = rt->find_flow(fname), to = rt->find_flow(*fdef.on_error);
    if (from < 0 || to < 0) continue;
    rt->flows[static_cast<std::size_t>(from)].on_error = to;
    rt->flows[static_cast<std::size_t>(to)].receives_errors = true;
    bool has_function = false;
    for (auto& b : rt->flows[static_cast<std::size_t>(to)].blocks) has_function |= b.kind == block_kind::function;
    if (!has_function)
      problems.push_back(fdef.file + ": on_error: flow " + *fdef.on_error + " has no function block to receive errors");
  }
  link_topics(*rt, *rev, problems);
  clock->mark("build");
  for (auto& [future, file] : loads) {
    auto error = future.get();
    if (!error.empty()) problems.push_back(error.rfind(file, 0) == 0 ? error : file + ": " + error);
  }
  clock->mark("functions");
  rt->fresh_function_ids = fresh;
  // Each driver file its kind's parser accepted, against the kind's schema.
  for (auto& [name, d] : rev->drivers) {
    const std::string prefix = d.file + ":";
    if (std::any_of(problems.begin(), problems.end(), [&](const std::string& p) { return p.rfind(prefix, 0) == 0; }))
      continue;
    const auto yaml = (*files)->read(d.file).value_or("");
    for (auto& p : config_schema_problems(d.file, d.kind, d.config_json, yaml)) problems.push_back(std::move(p));
  }
  if (!problems.empty()) {
    unload(fresh, e);
    std::string joined;
    for (auto& p : problems) joined += (joined.empty() ? "" : "\n") + p;
    return fail(joined);
  }
  routes_out = std::move(routes);
  return project_ptr(std::move(rt));
}

std::pair<uint64_t, bool> engine_impl::cached_id(project_entry& e, std::string cache_key,
                                                 sandbox::worker_client* worker, project_rt& rt, loaded_ids& fresh) {
  cache_key = std::to_string(rt.pools->generation) + '\0' + cache_key;  // other workers hold none of it
  if (auto hit = e.loaded.find(cache_key); hit != e.loaded.end()) {
    rt.function_ids.emplace_back(worker, hit->second);
    return {hit->second, false};
  }
  uint64_t id = next_function_id_++;
  rt.function_ids.emplace_back(worker, id);
  fresh.emplace_back(worker, id);
  e.loaded.emplace(std::move(cache_key), id);
  return {id, true};
}

engine_impl::module_set_ref engine_impl::load_module_set(project_entry& e, file_source& files,
                                                         const project_revision& rev, project_rt& rt, loaded_ids& fresh,
                                                         load_futures& loads, std::vector<std::string>& problems) {
  bool has_python = false;
  for (auto& [_, flow] : rev.flows)
    for (auto& block : flow.blocks) has_python |= block.kind == "py.Function";
  if (!has_python) return {};
  auto set = collect_python_modules(files, rev);
  if (!set) {
    problems.push_back(set.error());
    return {};
  }
  auto worker = worker_for(*rt.pools, "py");
  if (set->empty() || !worker) return {};  // a worker that did not start is reported by the blocks
  auto [id, is_new] = cached_id(e, std::string("pymodules") + '\0' + set->hash, *worker, rt, fresh);
  if (is_new) (*worker)->load_modules(id, set->modules, awaited(loads, "functions/ and vendor/"));
  return {id, set->hash};
}

status engine_impl::check_routes(const project_entry& e, const project_rt& rt, const std::vector<http::route>& routes) {
  http::route_table table;
  std::shared_lock lock(mutex_);
  for (auto& [id, other] : projects_) {
    if (id == e.id || !other->active) continue;
    if (other->active->http_host != rt.http_host || other->active->http_prefix != rt.http_prefix) continue;
    for (auto& r : other->routes) (void)table.add(r);
  }
  for (auto& r : routes) {
    auto st = table.add(r);
    if (!st) return fail("flows: " + st.error() + " (of another project on the same host and prefix, or of this one)");
  }
  return status::success();
}

void engine_impl::unload(const std::vector<std::pair<sandbox::worker_client*, uint64_t>>& ids, project_entry& e) {
  std::set<uint64_t> gone;
  for (auto& [worker, id] : ids) {
    worker->unload(id);
    gone.insert(id);
  }
  for (auto it = e.loaded.begin(); it != e.loaded.end();)
    it = gone.count(it->second) ? e.loaded.erase(it) : std::next(it);
}

result<sandbox::worker_client*> engine_impl::worker_for(worker_pools& pools, const std::string& language) {
  if (language != "js" && language != "py") return fail("no worker for language \"" + language + "\"");
  const bool python = language == "py";
  auto& slot = python ? pools.py : pools.js;
  if (slot) return slot.get();
  sandbox::worker_options wo;
  wo.isolation.memory_mb = pools.limits.memory_mb;
  wo.isolation.python = python;
  wo.default_timeout_ms = pools.limits.cpu_ms_per_call;
  wo.wall_ms = pools.limits.wall_ms();
  wo.extra_args = pools.limits.worker_args();
  wo.worker_binary = python ? options_.python_worker_binary : options_.worker_binary;
  auto w = sandbox::worker_client::start(wo);
  if (!w) return fail(std::string("cannot start a ") + (python ? "Python" : "JavaScript") + " worker: " + w.error());
  slot = std::move(*w);
  return slot.get();
}

void engine_impl::activate(project_entry& e, project_ptr rt) {
  if (e.active) {
    // The revision before the previous one is retired: its functions go,
    // except those the previous or the new revision still use.
    std::set<uint64_t> in_use;
    for (auto& [_, id] : e.active->function_ids) in_use.insert(id);
    for (auto& [_, id] : rt->function_ids) in_use.insert(id);
    std::vector<std::pair<sandbox::worker_client*, uint64_t>> retire;
    for (auto& f : e.retired_functions)
      if (!in_use.count(f.second)) retire.push_back(f);
    unload(retire, e);
    e.retired_functions = e.active->function_ids;
    e.retired_pools = e.active->pools;  // the pools before that stop here, unless a revision still runs on them
  }
  if (rt->pools != e.pools) {
    // New workers: what the load cache holds for the others is of no use.
    const std::string current = std::to_string(rt->pools->generation) + '\0';
    for (auto it = e.loaded.begin(); it != e.loaded.end();)
      it = it->first.rfind(current, 0) == 0 ? std::next(it) : e.loaded.erase(it);
    e.pools = rt->pools;
  }
  e.active = rt;
  rebuild_snapshot();
  for (auto& shard : core_.shards) caf::anon_send(shard, rt);
}

void engine_impl::rebuild_snapshot() {
  auto snap = std::make_shared<routing_snapshot>();
  std::shared_lock lock(mutex_);
  for (auto& [id, e] : projects_) {
    if (!e->active) continue;
    snap->projects[id] = e->active;
    site s;
    s.host = e->active->http_host;
    s.prefix = e->active->http_prefix;
    s.project_id = id;
    s.files = e->active->files;
    for (auto& r : e->routes) (void)s.routes.add(r);
    snap->sites.push_back(std::move(s));
  }
  std::stable_sort(snap->sites.begin(), snap->sites.end(), [](const site& a, const site& b) {
    if (a.host.empty() != b.host.empty()) return !a.host.empty();
    return a.prefix.size() > b.prefix.size();
  });
  std::atomic_store(&snapshot_, std::shared_ptr<const routing_snapshot>(std::move(snap)));
}

}  // namespace flowstate::engine_detail
