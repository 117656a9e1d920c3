#include "admin_routes.hpp"
#include "flowstate/runtime/file_source.hpp"
#include "flowstate/runtime/git_repo.hpp"
#include "flowstate/runtime/utf8.hpp"

#include <simdjson.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>

#include "flowstate/actors/engine.hpp"
#include "flowstate/drivers/config_schemas.hpp"
#include "flowstate/drivers/http_routes.hpp"
#include "flowstate/sandbox/isolation.hpp"
#include "flowstate/ui_server/admin_api.hpp"
#include "proposal_routes.hpp"
#include "trace_followers.hpp"
#include "ui_page.hpp"

namespace flowstate::admin {

std::string admin_call::param(std::string_view name) const {
  for (auto& [k, v] : params)
    if (k == name) return v;
  return {};
}

std::string admin_call::query_param(std::string_view name) const {
  std::size_t i = 0;
  while (i < query.size()) {
    auto amp = query.find('&', i);
    if (amp == std::string_view::npos) amp = query.size();
    auto pair = query.substr(i, amp - i);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name)
      return eq == std::string_view::npos ? "" : http::percent_decode(pair.substr(eq + 1));
    i = amp + 1;
  }
  return {};
}

namespace {

http::response json(int status, std::string body) {
  http::response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

std::string json_array(const std::vector<std::string>& items) {
  std::string out = "[";
  for (auto& item : items) {
    if (out.size() > 1) out += ',';
    out += item;
  }
  return out + "]";
}

// A whole number query parameter: `fallback` when absent, nullopt when not digits.
std::optional<int64_t> number_param(const admin_call& call, std::string_view name, int64_t fallback) {
  auto text = call.query_param(name);
  if (text.empty()) return fallback;
  if (text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoll(text);
}

// The project of an error operation: ?project=, or the only one.
std::string errors_project(const admin_services& s, const admin_call& call) {
  auto project = call.query_param("project");
  if (!project.empty()) return project;
  auto projects = s.e.projects();
  return projects.size() == 1 ? projects.front().name : "";
}

// Reasons the node cannot take work; empty when ready. A new readiness
// condition is one more check here (and one more value in the docs).
std::vector<std::string> unready_reasons(const engine& e) {
  std::vector<std::string> out;
  if (e.isolation().level == sandbox::sandbox_level::none)
    out.emplace_back("sandbox unavailable: this node runs no function: " + e.isolation().summary());
  else if (!e.ready())
    out.emplace_back("not ready: projects are loading, recovery is running, or the store cannot write");
  return out;
}

// The web UI's page and script (ui-server/web/), built into the binary.
void send_asset(const http::responder_ptr& reply, const char* content_type, const char* body) {
  http::response r;
  r.content_type = content_type;
  r.body = body;
  r.headers.emplace_back("Cache-Control", "no-cache");
  reply->send(std::move(r));
}

void get_ui(admin_services&, const admin_call&, const http::responder_ptr& reply) {
  send_asset(reply, "text/html; charset=utf-8", ui_page_html());
}

void get_ui_script(admin_services&, const admin_call&, const http::responder_ptr& reply) {
  send_asset(reply, "text/javascript; charset=utf-8", ui_script_js());
}

void get_ui_editor(admin_services&, const admin_call&, const http::responder_ptr& reply) {
  send_asset(reply, "text/javascript; charset=utf-8", ui_editor_js());
}

void get_healthz(admin_services&, const admin_call&, const http::responder_ptr& reply) {
  reply->send(json(200, R"({"status":"ok"})"));
}

void get_readyz(admin_services& s, const admin_call&, const http::responder_ptr& reply) {
  // The workers' sandbox level is always shown; a node where none can be set
  // up is unready for good (functions do not run; docs/security.md).
  const auto& iso = s.e.isolation();
  std::string level = "\"sandbox\":\"" + std::string(sandbox::level_name(iso.level)) + "\",\"sandboxDetail\":";
  http::append_json_string(level, iso.summary());
  auto reasons = unready_reasons(s.e);
  if (reasons.empty())
    return reply->send(
        json(200, "{\"status\":\"ready\",\"in_flight\":" + std::to_string(s.e.in_flight()) + "," + level + "}"));
  std::string body = iso.level == sandbox::sandbox_level::none ? R"({"status":"sandbox unavailable","reasons":[)"
                                                               : R"({"status":"not ready","reasons":[)";
  for (std::size_t i = 0; i < reasons.size(); ++i) {
    if (i) body += ',';
    http::append_json_string(body, reasons[i]);
  }
  reply->send(json(503, body + "]," + level + "}"));
}

// A tenant's view of the metrics (hosted mode): only the series labelled
// with one of its team's projects (project="TEAM.*"), and the HELP and TYPE
// lines of their families; the node-wide series are the node's own.
std::string tenant_metrics(const std::string& all, const std::string& team) {
  const std::string a = "{project=\"" + team + ".", b = ",project=\"" + team + ".";
  std::string out, header;
  std::size_t at = 0;
  while (at < all.size()) {
    auto end = all.find('\n', at);
    if (end == std::string::npos) end = all.size();
    std::string_view line(all.data() + at, end - at);
    at = end + 1;
    if (line.rfind("# HELP ", 0) == 0) {
      header.assign(line).append("\n");
    } else if (line.rfind("# TYPE ", 0) == 0) {
      header.append(line).append("\n");
    } else if (!line.empty() && line[0] != '#') {
      const auto labels = line.substr(0, line.find('}') == std::string_view::npos ? 0 : line.find('}'));
      if (labels.find(a) == std::string_view::npos && labels.find(b) == std::string_view::npos) continue;
      out += header;  // the family's HELP and TYPE, before its first kept sample
      header.clear();
      out.append(line).append("\n");
    }
  }
  return out;
}

void get_metrics(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  http::response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = call.tenant_team.empty() ? s.e.metrics_text() : tenant_metrics(s.e.metrics_text(), call.tenant_team);
  reply->send(std::move(r));
}

void get_openapi(admin_services&, const admin_call&, const http::responder_ptr& reply) {
  reply->send(json(200, openapi_json()));
}

void get_projects(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  std::string out = "[";
  for (auto& p : s.e.projects()) {
    if (!call.tenant_team.empty() && p.name.rfind(call.tenant_team + ".", 0) != 0) continue;  // another tenant's
    if (out.size() > 1) out += ",";
    out += "{\"name\":";
    http::append_json_string(out, p.name);
    out += ",\"dir\":";
    http::append_json_string(out, p.dir);
    out += ",\"id\":" + std::to_string(p.id) + ",\"revision\":";
    http::append_json_string(out, p.revision);
    const auto& l = p.limits;
    out += ",\"limits\":{\"timeoutMs\":" + std::to_string(l.cpu_ms_per_call) +
           ",\"wallMs\":" + std::to_string(l.wall_ms()) + ",\"memoryMiB\":" + std::to_string(l.memory_mb) +
           ",\"outputBytes\":" + std::to_string(l.max_output_bytes) +
           ",\"stateBytes\":" + std::to_string(l.max_state_bytes) + ",\"logBytes\":" + std::to_string(l.max_log_bytes) +
           "},\"trace\":{\"fullMs\":" + std::to_string(p.trace_full_ms) +
           ",\"keepMs\":" + std::to_string(p.trace_keep_ms) + "}}";
  }
  reply->send(json(200, out + "]"));
}

void send_deploy_outcome(const deploy_outcome& out, const http::responder_ptr& reply);

void post_deploy(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view revision, expected;
  if (parser.parse(call.req.body).get(doc) || doc["revision"].get_string().get(revision))
    return reply->send(
        http::problem(400, "bad request", "expected a JSON body {\"revision\": COMMIT, \"expected\": COMMIT}"));
  if (doc["expected"].get_string().get(expected)) expected = {};
  auto out = s.e.deploy(call.param("project"), std::string(revision), std::string(expected));
  send_deploy_outcome(out, reply);
}

// A remote deploy: the body is a pack of git objects (the revision and its
// history, less what the node is known to have), kept in the project's
// repository here; then the revision is deployed. A new project is created.
void post_push(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  const auto revision = call.query_param("revision");
  if (revision.empty())
    return reply->send(http::problem(400, "bad request", "?revision=COMMIT: the commit to deploy, in the pack"));
  auto out = s.e.push(call.param("project"), call.req.body, revision, call.query_param("expected"));
  send_deploy_outcome(out, reply);
}

// A deploy's answer: 200 with the revision, what it replaced and where the
// time went, or the problem.
void send_deploy_outcome(const deploy_outcome& out, const http::responder_ptr& reply) {
  if (out.http_status != 200)
    return reply->send(
        http::problem(out.http_status, out.http_status == 409 ? "conflict" : "deploy refused", out.detail));
  std::string body = "{\"revision\":";
  http::append_json_string(body, out.revision);
  body += ",\"replaced\":";
  http::append_json_string(body, out.replaced);
  body += ",\"timingsMs\":{";
  for (std::size_t i = 0; i < out.timings_ms.size(); ++i) {
    if (i) body += ',';
    http::append_json_string(body, out.timings_ms[i].first);
    char ms[32];
    std::snprintf(ms, sizeof ms, ":%.3f", out.timings_ms[i].second);
    body += ms;
  }
  reply->send(json(200, body + "}}"));
}

// The project's entry, or nullopt.
std::optional<project_info> find_project(admin_services& s, const std::string& name) {
  for (auto& p : s.e.projects())
    if (p.name == name) return p;
  return std::nullopt;
}

// History: the active revision and the ones before it, newest first.
void get_revisions(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  auto limit = number_param(call, "limit", 50);
  if (!limit || *limit < 1) return reply->send(http::problem(400, "bad request", "expected limit as a whole number"));
  auto found = find_project(s, call.param("project"));
  if (!found) return reply->send(http::problem(404, "not found", "no project " + call.param("project")));
  auto entries = history(found->dir, found->revision, static_cast<std::size_t>(std::min<int64_t>(*limit, 1000)));
  if (!entries) return reply->send(http::problem(500, "internal error", entries.error()));
  std::string out = "[";
  for (auto& e : *entries) {
    if (out.size() > 1) out += ',';
    out += "{\"revision\":";
    http::append_json_string(out, e.revision);
    out += ",\"parents\":[";
    for (std::size_t i = 0; i < e.parents.size(); ++i) {
      if (i) out += ',';
      http::append_json_string(out, e.parents[i]);
    }
    out += "],\"author\":";
    http::append_json_string(out, e.author);
    out += ",\"email\":";
    http::append_json_string(out, e.email);
    out += ",\"timeMs\":" + std::to_string(e.time_ms) + ",\"message\":";
    http::append_json_string(out, e.message);
    out += std::string(",\"active\":") + (e.revision == found->revision ? "true" : "false") + "}";
  }
  reply->send(json(200, out + "]"));
}

// What a revision changed (against its first parent, or `against`).
void get_revision_diff(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  auto found = find_project(s, call.param("project"));
  if (!found) return reply->send(http::problem(404, "not found", "no project " + call.param("project")));
  const std::string revision = call.param("revision");
  std::string against = call.query_param("against");
  if (against.empty()) {
    auto own = history(found->dir, revision, 1);
    if (!own) return reply->send(http::problem(404, "not found", own.error()));
    if (!own->empty() && !own->front().parents.empty()) against = own->front().parents.front();
  }
  auto text = diff(found->dir, against, revision);
  if (!text) return reply->send(http::problem(404, "not found", text.error()));
  http::response r;
  r.content_type = "text/x-diff; charset=utf-8";
  r.body = std::move(*text);
  reply->send(std::move(r));
}

// A revision's files with their text (the active revision by default): what
// the UI's editor loads. A file that is not UTF-8 text comes without it.
void get_files(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  auto found = find_project(s, call.param("project"));
  if (!found) return reply->send(http::problem(404, "not found", "no project " + call.param("project")));
  std::string revision = call.query_param("revision");
  if (revision.empty()) revision = found->revision;
  auto source = open_git_commit(found->dir, revision);
  if (!source) return reply->send(http::problem(404, "not found", source.error()));
  std::string out = "{\"revision\":";
  http::append_json_string(out, (*source)->revision());
  out += ",\"files\":[";
  bool first = true;
  for (auto& path : (*source)->list_tree("")) {
    auto text = (*source)->read(path);
    if (!text) continue;
    out += first ? "{\"path\":" : ",{\"path\":";
    first = false;
    http::append_json_string(out, path);
    out += ",\"size\":" + std::to_string(text->size());
    if (text->size() <= (1u << 20) && is_valid_utf8(*text)) {
      out += ",\"text\":";
      http::append_json_string(out, *text);
    }
    out += "}";
  }
  reply->send(json(200, out + "]}"));
}

// Roll back = deploy an earlier revision's files as a new revision on top
// of the active one (history only grows).
void post_rollback(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view to, expected, message;
  if (parser.parse(call.req.body).get(doc) || doc["to"].get_string().get(to) ||
      doc["expected"].get_string().get(expected))
    return reply->send(http::problem(400, "bad request",
                                     "expected a JSON body {\"to\": REVISION, \"expected\": ACTIVE REVISION, "
                                     "\"message\": TEXT}"));
  if (doc["message"].get_string().get(message)) message = {};
  const std::string project = call.param("project");
  auto found = find_project(s, project);
  if (!found) return reply->send(http::problem(404, "not found", "no project " + project));
  if (expected != found->revision)
    return reply->send(http::problem(409, "conflict",
                                     "the project changed since " + std::string(expected.substr(0, 12)) + ": it runs " +
                                         found->revision.substr(0, 12) + " now"));
  auto target = history(found->dir, std::string(to), 1);
  if (!target || target->empty())
    return reply->send(http::problem(404, "not found", target ? "no revision " + std::string(to) : target.error()));
  std::string text(message);
  if (text.empty()) {
    const auto& m = target->front().message;
    text = "Roll back to " + std::string(to.substr(0, 12)) + ": " + m.substr(0, m.find('\n'));
  }
  auto commit =
      commit_tree_of(found->dir, std::string(to), found->revision, text, s.edit_author_name, s.edit_author_email);
  if (!commit) return reply->send(http::problem(422, "roll back refused", commit.error()));
  if (auto kept = keep_commit(found->dir, *commit); !kept)
    return reply->send(http::problem(500, "internal error", kept.error()));
  send_deploy_outcome(s.e.deploy(project, *commit, found->revision), reply);
}

// Edits from the UI: files changed on top of a revision, checked without
// committing them to any branch, and (with apply) committed as a new
// revision on top of it and deployed. `base` must be the active revision to
// apply: a concurrent change is a conflict, never a lost edit.
void post_edits(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view base, message;
  simdjson::dom::object files;
  constexpr const char* shape =
      "expected a JSON body {\"base\": COMMIT, \"files\": {PATH: TEXT or null}, \"message\": TEXT, \"apply\": "
      "BOOL}";
  if (parser.parse(call.req.body).get(doc) || doc["base"].get_string().get(base) ||
      doc["files"].get_object().get(files))
    return reply->send(http::problem(400, "bad request", shape));
  if (doc["message"].get_string().get(message)) message = {};
  bool apply = false;
  if (auto a = doc["apply"]; !a.error() && a.get_bool().get(apply))
    return reply->send(http::problem(400, "bad request", "apply: expected true or false"));
  std::map<std::string, std::optional<std::string>> edits;
  if (!read_file_edits(files, edits, reply)) return;
  if (edits.empty()) return reply->send(http::problem(400, "bad request", "files: expected at least one file"));
  if (apply && message.empty())
    return reply->send(http::problem(400, "bad request", "message: a commit message is needed to apply"));
  const std::string project = call.param("project");
  auto found = find_project(s, project);
  if (!found) return reply->send(http::problem(404, "not found", "no project " + project));
  if (apply && base != found->revision)
    return reply->send(http::problem(409, "conflict",
                                     "the project changed since " + std::string(base.substr(0, 12)) + ": it runs " +
                                         found->revision.substr(0, 12) +
                                         " now. Load that revision, apply the edits to it and try again"));
  auto commit = commit_edits(found->dir, std::string(base), edits,
                             message.empty() ? std::string("edits (checked, not applied)") : std::string(message),
                             s.edit_author_name, s.edit_author_email);
  if (!commit) return reply->send(http::problem(422, "edits refused", commit.error()));
  if (!apply) {
    auto out = s.e.deploy_here(project, *commit, "", /*dry_run=*/true);
    if (out.http_status != 200) return reply->send(http::problem(out.http_status, "edits refused", out.detail));
    std::string body = "{\"valid\":true,\"revision\":";
    http::append_json_string(body, *commit);
    return reply->send(json(200, body + "}"));
  }
  if (auto kept = keep_commit(found->dir, *commit); !kept)
    return reply->send(http::problem(500, "internal error", kept.error()));
  send_deploy_outcome(s.e.deploy(project, *commit, std::string(base)), reply);
}

void get_flows(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  auto flows = s.e.flows_json(call.param("project"));
  if (!flows) return reply->send(http::problem(404, "not found", flows.error()));
  reply->send(json(200, *flows));
}

void get_state(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  auto key = call.param("key");
  auto state = s.e.state_get(call.param("project"), call.param("flow"), call.param("block"), key);
  if (!state) return reply->send(http::problem(404, "not found", state.error()));
  if (!*state) return reply->send(http::problem(404, "no state", "key \"" + key + "\" has no state"));
  reply->send(json(200, **state));
}

void get_errors(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  auto limit = number_param(call, "limit", 1000);
  if (!limit) return reply->send(http::problem(400, "bad request", "expected limit as a whole number"));
  // An unknown project is a 404, not an empty queue (a typo must not read as "no errors").
  if (const auto project = call.query_param("project"); !project.empty()) {
    const auto all = s.e.projects();
    if (std::none_of(all.begin(), all.end(), [&](const auto& p) { return p.name == project; }))
      return reply->send(http::problem(404, "not found", "no project \"" + project + "\" on this node"));
  }
  auto records = s.e.errors(call.query_param("project"), call.query_param("flow"), call.query_param("type"),
                            static_cast<std::size_t>(*limit));
  if (!records) return reply->send(http::problem(500, "storage error", records.error()));
  reply->send(json(200, json_array(*records)));
}

void get_error(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  auto project = errors_project(s, call);
  auto id = call.param("id");
  auto rec = s.e.error_show(project, id);
  if (!rec) return reply->send(http::problem(500, "storage error", rec.error()));
  if (!*rec) return reply->send(http::problem(404, "not found", "no error " + id + " in project \"" + project + "\""));
  reply->send(json(200, **rec));
}

void delete_error(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  auto id = call.param("id");
  auto st = s.e.error_discard(errors_project(s, call), id);
  if (!st) return reply->send(http::problem(404, "not found", st.error()));
  std::string body = "{\"discarded\":";
  http::append_json_string(body, id);
  reply->send(json(200, body + "}"));
}

void post_replay(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  auto id = call.param("id");
  auto st = s.e.error_replay(errors_project(s, call), id);
  if (!st) return reply->send(http::problem(409, "cannot replay", st.error()));
  std::string body = "{\"replayed\":";
  http::append_json_string(body, id);
  reply->send(json(200, body + "}"));
}

void get_cluster(admin_services& s, const admin_call&, const http::responder_ptr& reply) {
  auto info = s.e.cluster_info();
  if (!info) return reply->send(http::problem(404, "not in a cluster", "this node runs embedded (no --cluster)"));
  reply->send(json(200, std::move(*info)));
}

void get_cluster_graph(admin_services& s, const admin_call&, const http::responder_ptr& reply) {
  auto graph = s.e.cluster_graph();
  if (!graph) return reply->send(http::problem(500, "internal error", graph.error()));
  reply->send(json(200, std::move(*graph)));
}

void get_schemas(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  auto urls = s.e.schema_urls(call.tenant_team);
  if (!urls) return reply->send(http::problem(500, "storage error", urls.error()));
  std::string out = "[";
  for (auto& url : *urls) {
    if (out.size() > 1) out += ",";
    http::append_json_string(out, url);
  }
  reply->send(json(200, out + "]"));
}

void get_driver_kinds(admin_services&, const admin_call&, const http::responder_ptr& reply) {
  std::string out = "[";
  for (auto& [kind, schema] : drivers::config_schemas()) {
    if (out.size() > 1) out += ",";
    out += "{\"kind\":";
    http::append_json_string(out, kind);
    out += ",\"schema\":";
    out += schema;
    out += "}";
  }
  reply->send(json(200, out + "]"));
}

void post_schema(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc, schema;
  std::string_view url;
  if (parser.parse(call.req.body).get(doc) || doc["url"].get_string().get(url) || doc["schema"].get(schema))
    return reply->send(http::problem(400, "bad request", "expected {\"url\": URL, \"schema\": {...}}"));
  auto st = s.e.schema_add(std::string(url), std::string(simdjson::minify(schema)), call.tenant_team);
  if (!st) return reply->send(http::problem(422, "invalid schema", st.error()));
  std::string body = "{\"url\":";
  http::append_json_string(body, url);
  reply->send(json(201, body + "}"));
}

// An event's cursor: TIME-SEQUENCE, or in a cluster NODE:TIME-SEQUENCE
// for each node, separated by commas.
bool is_trace_cursor(std::string_view text) {
  auto digits = [](std::string_view t) { return !t.empty() && t.find_first_not_of("0123456789") == t.npos; };
  while (true) {
    auto comma = text.find(',');
    auto part = text.substr(0, comma);
    if (auto colon = part.rfind(':'); colon != std::string_view::npos) part = part.substr(colon + 1);
    auto dash = part.find('-');
    if (dash == std::string_view::npos || !digits(part.substr(0, dash)) || !digits(part.substr(dash + 1))) return false;
    if (comma == std::string_view::npos) return true;
    text = text.substr(comma + 1);
  }
}

// GET /api/v1/trace, or with follow=true (or Accept: text/event-stream)
// Server-Sent Events from `after=` (or from now), served by the followers.
void get_trace(admin_services& s, const admin_call& call, const http::responder_ptr& reply) {
  auto since = number_param(call, "since", 0), until = number_param(call, "until", 0),
       limit = number_param(call, "limit", 100);
  if (!since || !until || !limit || *limit < 1)
    return reply->send(http::problem(400, "bad request",
                                     "expected since and until in ms since the epoch, and limit (at least 1), as "
                                     "whole numbers"));
  auto errors = call.query_param("errors");
  if (!errors.empty() && errors != "true" && errors != "1" && errors != "false" && errors != "0")
    return reply->send(http::problem(400, "bad request", "errors: expected true or false, got \"" + errors + "\""));
  auto after = call.query_param("after");
  if (!after.empty() && !is_trace_cursor(after))
    return reply->send(http::problem(400, "bad request",
                                     "after: \"" + after.substr(0, 64) +
                                         "\" is not a cursor (an event's `cursor`: TIME-SEQUENCE, or in a cluster "
                                         "NODE:TIME-SEQUENCE,...)"));
  trace_query q;
  q.flow = call.query_param("flow");
  q.block = call.query_param("block");
  q.key = call.query_param("key");
  q.trace_id = call.query_param("trace");
  q.errors_only = call.query_param("errors") == "true" || call.query_param("errors") == "1";
  q.after = after;
  q.since_ms = *since;
  q.until_ms = *until;
  q.limit = static_cast<std::size_t>(std::min<int64_t>(*limit, 10000));
  auto project = call.query_param("project");
  if (call.query_param("follow") != "true" && call.req.header("accept") != "text/event-stream") {
    auto events = s.e.trace(project, q);
    if (!events) return reply->send(http::problem(404, "not found", events.error()));
    return reply->send(json(200, json_array(*events)));
  }
  trace_query probe;
  probe.limit = 1;
  if (auto found = s.e.trace(project, probe); !found)
    return reply->send(http::problem(404, "not found", found.error()));
  if (q.after.empty() && q.since_ms == 0)
    q.since_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
  auto open = [&reply] {
    http::response head;
    head.content_type = "text/event-stream";
    head.headers.emplace_back("Cache-Control", "no-cache");
    return reply->stream(std::move(head));
  };
  if (!s.followers.add(std::move(project), std::move(q), open)) {
    auto busy = http::problem(503, "too many followers",
                              "the node streams the trace to as many followers as it allows; retry later");
    busy.headers.emplace_back("Retry-After", "5");
    reply->send(std::move(busy));
  }
}

// ---- JSON Schemas ----

constexpr std::string_view problem_ref = R"({"$ref":"#/components/schemas/Problem"})";

const char* const string_schema = R"({"type":"string"})";
const char* const boolean_text_schema = R"({"type":"string","enum":["true","false","1","0"]})";
const char* const whole_number_schema = R"({"type":"integer","minimum":0})";

}  // namespace

http::response json_answer(int status, std::string body) { return json(status, std::move(body)); }

bool find_project_or_404(admin_services& s, const std::string& name, project_info& out,
                         const http::responder_ptr& reply) {
  auto found = find_project(s, name);
  if (!found) {
    reply->send(http::problem(404, "not found", "no project " + name));
    return false;
  }
  out = std::move(*found);
  return true;
}

void send_deploy_answer(const deploy_outcome& out, const http::responder_ptr& reply) {
  send_deploy_outcome(out, reply);
}

bool read_file_edits(const simdjson::dom::object& files, std::map<std::string, std::optional<std::string>>& edits,
                     const http::responder_ptr& reply) {
  for (auto field : files) {
    std::string_view text;
    if (field.value.is_null()) {
      edits[std::string(field.key)] = std::nullopt;
    } else if (!field.value.get_string().get(text)) {
      edits[std::string(field.key)] = std::string(text);
    } else {
      reply->send(http::problem(
          400, "bad request", "files." + std::string(field.key) + ": expected the file's text, or null to delete it"));
      return false;
    }
  }
  return true;
}

const std::vector<std::pair<std::string_view, std::string_view>>& admin_schemas() {
  static const std::vector<std::pair<std::string_view, std::string_view>> schemas = {
      {"Problem", R"({"type":"object","description":"RFC 9457 problem details","required":["type","title","status"],
"properties":{"type":{"type":"string"},"title":{"type":"string"},"status":{"type":"integer"},"detail":{"type":"string"}}})"},
      {"Limits",
       R"({"type":"object","required":["timeoutMs","wallMs","memoryMiB","outputBytes","stateBytes","logBytes"],
"properties":{"timeoutMs":{"type":"integer","description":"CPU time per call"},"wallMs":{"type":"integer"},
"memoryMiB":{"type":"integer"},"outputBytes":{"type":"integer"},"stateBytes":{"type":"integer"},"logBytes":{"type":"integer"}}})"},
      {"Project", R"({"type":"object","required":["name","dir","id","revision","limits"],
"properties":{"name":{"type":"string"},"dir":{"type":"string"},"id":{"type":"integer"},
"revision":{"type":"string","description":"the active commit"},"limits":{"$ref":"#/components/schemas/Limits"},
"trace":{"type":"object","description":"how long its trace is kept in full and at all, capped by a hosted plan",
"properties":{"fullMs":{"type":"integer"},"keepMs":{"type":"integer"}}}}})"},
      {"DeployRequest", R"({"type":"object","required":["revision"],
"properties":{"revision":{"type":"string","description":"the commit to activate"},
"expected":{"type":"string","description":"the revision it replaces; 409 when another deploy came first"}}})"},
      {"EditRequest", R"({"type":"object","required":["base","files"],
"properties":{"base":{"type":"string","description":"the revision the edits apply to"},
"files":{"type":"object","description":"path relative to the project: its new text, or null to delete it","minProperties":1,
"additionalProperties":{"type":["string","null"]}},
"message":{"type":"string","description":"the commit message, needed to apply"},
"apply":{"type":"boolean","description":"commit and deploy; without it, only check"}}})"},
      {"Revision", R"({"type":"object","required":["revision","parents","author","email","timeMs","message","active"],
"properties":{"revision":{"type":"string"},"parents":{"type":"array","items":{"type":"string"}},
"author":{"type":"string"},"email":{"type":"string"},"timeMs":{"type":"integer","description":"the author's time"},
"message":{"type":"string"},"active":{"type":"boolean"}}})"},
      {"RollbackRequest", R"({"type":"object","required":["to","expected"],
"properties":{"to":{"type":"string","description":"the revision whose files to deploy again"},
"expected":{"type":"string","description":"the active revision; 409 when another deploy came first"},
"message":{"type":"string","description":"default: Roll back to REVISION: its message"}}})"},
      {"EditCheck", R"({"type":"object","required":["valid","revision"],
"properties":{"valid":{"type":"boolean"},"revision":{"type":"string","description":"the checked commit, on no branch"}}})"},
      {"DeployResult", R"({"type":"object","required":["revision","replaced"],
"properties":{"revision":{"type":"string"},"replaced":{"type":"string"},
"timingsMs":{"type":"object","description":"where the node's time went, in ms, phase by phase in order: read (files from git, parsed and checked), build (types, routes, bundles), functions (the workers compiling new functions), record (the new active revision made durable), activate; empty when the revision was already active",
"additionalProperties":{"type":"number","minimum":0}}}})"},
      {"BlockStats", R"({"type":"object","required":["executions","p50Ms","p99Ms","meanMs"],
"properties":{"executions":{"type":"object","description":"executions by outcome: ok or the error type",
"additionalProperties":{"type":"integer","minimum":0}},
"p50Ms":{"type":"number","description":"upper bound of the histogram bucket; -1 before any call"},
"p99Ms":{"type":"number"},"meanMs":{"type":"number"}}})"},
      {"Block", R"({"type":"object","required":["kind","name","id","key","input","output","state"],
"properties":{"kind":{"type":"string"},"name":{"type":"string"},"id":{"type":"string"},
"key":{"type":["string","null"],"description":"JSON pointer of the key"},"input":{"type":["string","null"]},
"output":{"type":["string","null"]},"state":{"type":["string","null"]},"stats":{"$ref":"#/components/schemas/BlockStats"}}})"},
      {"Flows", R"({"type":"object","required":["project","revision","statsNodes","statsMissing","flows"],
"properties":{"project":{"type":"string"},"revision":{"type":"string"},
"statsNodes":{"type":"integer","minimum":1,"description":"how many nodes' counts the statistics add up: 1 on an embedded node"},
"statsMissing":{"type":"array","items":{"type":"string"},"description":"cluster nodes that did not answer: their executions are not counted"},
"flows":{"type":"array","items":{"type":"object",
"required":["name","onError","blocks"],"properties":{"name":{"type":"string"},"onError":{"type":["string","null"]},
"blocks":{"type":"array","items":{"$ref":"#/components/schemas/Block"}}}}}}})"},
      {"ErrorRecord", R"({"type":"object","description":"a std:Error record",
"required":["id","type","message","flow","block","key","messageId","revision","at","details","input","traceId","acceptedAtMs"],
"properties":{"id":{"type":"string"},"type":{"type":"string"},"message":{"type":"string"},"flow":{"type":"string"},
"block":{"type":"string"},"key":{"type":"string"},"messageId":{"type":"string"},"revision":{"type":"string"},
"at":{"type":"string","format":"date-time"},"details":{"type":"object"},"input":{"description":"the failed input"},
"traceId":{"type":"string"},"acceptedAtMs":{"type":"integer"}}})"},
      {"TraceEvent", R"({"type":"object","description":"one execution",
"required":["time","timeMs","revision","flow","block","key","messageId","traceId","durationMs","status","outputCount","stateChange","cursor"],
"properties":{"time":{"type":"string","format":"date-time"},"timeMs":{"type":"integer"},"revision":{"type":"string"},
"flow":{"type":"string"},"block":{"type":"string"},"key":{"type":"string"},"messageId":{"type":"string"},
"traceId":{"type":"string"},"durationMs":{"type":"number"},"status":{"type":"string","description":"ok or the error type"},
"error":{"type":"string"},"errorId":{"type":"string"},"outputCount":{"type":"integer"},
"stateChange":{"type":"string","enum":["unchanged","set","deleted"]},
"cursor":{"type":"string","description":"pass as after= to get what came later"},
"payload":{"const":"expired","description":"present once retention dropped input, outputs, state and logs"},
"input":{},"outputs":{"type":"array"},"state":{},"logs":{"type":"array","items":{"type":"string"}},"details":{"type":"object"}}})"},
      {"Proposal", R"({"type":"object","required":["name","revision","onRunning","tests"],
"properties":{"name":{"type":"string"},"revision":{"type":"string"},"message":{"type":"string"},
"author":{"type":"string"},"timeMs":{"type":"integer"},
"onRunning":{"type":"boolean","description":"its history holds the running revision"},
"tests":{"type":"object","required":["status"],"properties":{"status":{"enum":["not run","passed","failed"]},
"output":{"type":"string"}}}}})"},
      {"ProposalRequest", R"({"type":"object","required":["name","base","files","message"],
"properties":{"name":{"type":"string","pattern":"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"},
"base":{"type":"string","description":"the revision the edits apply to"},
"files":{"type":"object","minProperties":1,"additionalProperties":{"type":["string","null"]}},
"message":{"type":"string","minLength":1}}})"},
      {"SchemaAdd", R"({"type":"object","required":["url","schema"],
"properties":{"url":{"type":"string","description":"the fully qualified type URL"},
"schema":{"type":["object","boolean"],"description":"a JSON Schema"}}})"},
  };
  return schemas;
}

const std::vector<admin_route>& admin_routes() {
  using q = query_parameter;
  // The state of a key, and of the key "" (a route without parameters).
  const std::vector<documented_response> state_responses = {
      {200, "the state", "application/json", R"({"description":"the state, any JSON value"})"},
      {404, "no such project, flow or block, or the key has no state", "application/problem+json", problem_ref}};
  static const std::vector<admin_route> routes = {
      {"GET",
       "/",
       "getUi",
       "The web UI",
       "One page; its API calls carry the token it takes from the URL fragment.",
       false,
       runs_on::listener,
       {},
       "",
       {{200, "the page", "text/html", R"({"type":"string"})"}},
       get_ui},
      {"GET",
       "/ui.js",
       "getUiScript",
       "The web UI's script",
       "The page's TypeScript (ui-server/web/src), bundled.",
       false,
       runs_on::listener,
       {},
       "",
       {{200, "the script", "text/javascript", R"({"type":"string"})"}},
       get_ui_script},
      {"GET",
       "/editor.js",
       "getUiEditor",
       "The web UI's editor",
       "CodeMirror with its languages, bundled apart: the page loads it when a file is first opened.",
       false,
       runs_on::listener,
       {},
       "",
       {{200, "the script", "text/javascript", R"({"type":"string"})"}},
       get_ui_editor},
      {"GET",
       "/healthz",
       "getHealth",
       "Whether the process runs",
       "",
       false,
       runs_on::listener,
       {},
       "",
       {{200, "running", "application/json",
         R"({"type":"object","required":["status"],"properties":{"status":{"const":"ok"}}})"}},
       get_healthz},
      {"GET",
       "/readyz",
       "getReadiness",
       "Whether the node takes work",
       "503 while projects load or recovery runs, with the reasons.",
       false,
       runs_on::listener,
       {},
       "",
       {{200, "ready", "application/json",
         R"({"type":"object","required":["status","in_flight"],"properties":{"status":{"const":"ready"},)"
         R"("in_flight":{"type":"integer","description":"messages accepted or re-run and not finished"}}})"},
        {503, "not ready", "application/json",
         R"({"type":"object","required":["status","reasons"],"properties":{"status":{"const":"not ready"},)"
         R"("reasons":{"type":"array","items":{"type":"string"}}}})"}},
       get_readyz},
      {"GET",
       "/metrics",
       "getMetrics",
       "Prometheus metrics",
       "The text exposition format 0.0.4.",
       true,
       runs_on::pool,
       {},
       "",
       {{200, "the metrics", "text/plain", R"({"type":"string"})"}},
       get_metrics},
      {"GET",
       "/api/v1/openapi.json",
       "getOpenApi",
       "This description",
       "",
       true,
       runs_on::listener,
       {},
       "",
       {{200, "an OpenAPI 3.1 document", "application/json", R"({"type":"object"})"}},
       get_openapi},
      {"GET",
       "/api/v1/projects",
       "listProjects",
       "The projects on this node, their active revisions and the limits their functions run within",
       "",
       true,
       runs_on::listener,
       {},
       "",
       {{200, "the projects", "application/json",
         R"({"type":"array","items":{"$ref":"#/components/schemas/Project"}})"}},
       get_projects},
      {"POST",
       "/api/v1/projects/{project}/deploy",
       "deployProject",
       "Activate a committed revision",
       "`expected` is the revision it replaces: 409 when another deploy came first; 422 with the problems, one per "
       "line, when the revision is invalid.",
       true,
       runs_on::pool,
       {},
       R"({"$ref":"#/components/schemas/DeployRequest"})",
       {{200, "activated", "application/json", R"({"$ref":"#/components/schemas/DeployResult"})"},
        {400, "the body is not {revision, expected}", "application/problem+json", problem_ref},
        {404, "no such project or revision", "application/problem+json", problem_ref},
        {409, "another deploy came first", "application/problem+json", problem_ref},
        {422, "the revision is invalid", "application/problem+json", problem_ref}},
       post_deploy},
      {"POST",
       "/api/v1/projects/{project}/push",
       "pushProject",
       "Deploy a revision from a repository elsewhere: its git objects in the body",
       "The body is a git pack (application/x-git-packed-objects, up to 32 MiB) holding `revision` and what it needs "
       "(`flowstate deploy` sends it when the node does not share its file system). The objects are kept in the "
       "project's repository on the node, then the revision is deployed as by .../deploy. A project the node does "
       "not have is created (its flowstate.yaml must name it so), with `expected` empty; in a cluster, on every "
       "node (the others fetch it from this one).",
       true,
       runs_on::pool,
       {{"revision", R"({"type":"string"})", "the commit to deploy"},
        {"expected", R"({"type":"string"})", "the active revision it replaces (empty: a new project)"}},
       R"({"type":"string","format":"binary"})",
       {{200, "activated", "application/json", R"({"$ref":"#/components/schemas/DeployResult"})"},
        {400, "no revision given", "application/problem+json", problem_ref},
        {404, "no such project (and `expected` names a revision)", "application/problem+json", problem_ref},
        {409, "another deploy came first, or a new project in a cluster", "application/problem+json", problem_ref},
        {413, "the pack is over 32 MiB", "application/problem+json", problem_ref},
        {422, "the objects or the revision are invalid", "application/problem+json", problem_ref}},
       post_push},
      {"POST",
       "/api/v1/projects/{project}/edits",
       "editProject",
       "Check edits of the project's files, or apply them as a new revision",
       "The files in `files` (path: new text, or null to delete) replace those of `base`, nothing else changes. "
       "Without `apply`, the edited revision is checked as a deploy would check it (functions compiled) and nothing "
       "runs or moves: 200 `{valid, revision}`, or 422 with the problems, one `FILE:LINE: message` per line. With "
       "`apply`, `base` must be the active revision (else 409: the project changed since), and the edits are "
       "committed on top of it with `message` (by the node's configured edit author) and deployed; no branch "
       "moves: a checkout catches up with `git merge REVISION`.",
       true,
       runs_on::pool,
       {},
       R"({"$ref":"#/components/schemas/EditRequest"})",
       {{200, "checked, or applied", "application/json",
         R"({"oneOf":[{"$ref":"#/components/schemas/EditCheck"},{"$ref":"#/components/schemas/DeployResult"}]})"},
        {400, "the body is not {base, files, message, apply}", "application/problem+json", problem_ref},
        {404, "no such project", "application/problem+json", problem_ref},
        {409, "the project changed since base", "application/problem+json", problem_ref},
        {422, "the edits are refused: a bad path, or problems of the edited revision", "application/problem+json",
         problem_ref}},
       post_edits},
      {"GET",
       "/api/v1/projects/{project}/revisions",
       "listRevisions",
       "The project's history: the active revision and the ones before it, newest first",
       "",
       true,
       runs_on::pool,
       {{"limit", R"({"type":"integer","minimum":1,"maximum":1000,"default":50})", "at most this many"}},
       "",
       {{200, "the revisions", "application/json",
         R"({"type":"array","items":{"$ref":"#/components/schemas/Revision"}})"},
        {400, "a bad limit", "application/problem+json", problem_ref},
        {404, "no such project", "application/problem+json", problem_ref}},
       get_revisions},
      {"GET",
       "/api/v1/projects/{project}/proposals",
       "listProposals",
       "Proposed changes: edits saved for review instead of applied",
       "Each with its commit, message, author, whether it is on top of the running revision, and its last test "
       "run on this node.",
       true,
       runs_on::pool,
       {},
       "",
       {{200, "the proposals", "application/json",
         R"({"type":"array","items":{"$ref":"#/components/schemas/Proposal"}})"},
        {404, "no such project", "application/problem+json", problem_ref}},
       get_proposals},
      {"POST",
       "/api/v1/projects/{project}/proposals",
       "propose",
       "Save edits as a proposal (a commit on top of `base`, kept under its name; nothing is deployed)",
       "The same name again replaces the proposal (propose on top of its revision to add to it).",
       true,
       runs_on::pool,
       {},
       R"({"$ref":"#/components/schemas/ProposalRequest"})",
       {{201, "saved", "application/json",
         R"({"type":"object","required":["name","revision"],"properties":{"name":{"type":"string"},"revision":{"type":"string"}}})"},
        {400, "the body is not {name, base, files, message}, or a bad name", "application/problem+json", problem_ref},
        {404, "no such project", "application/problem+json", problem_ref},
        {422, "the edits are refused (a bad path)", "application/problem+json", problem_ref}},
       post_proposal},
      {"GET",
       "/api/v1/projects/{project}/proposals/{name}/diff",
       "proposalDiff",
       "What the proposal changes against the running revision, as a unified diff",
       "",
       true,
       runs_on::pool,
       {},
       "",
       {{200, "the diff", "text/x-diff", R"({"type":"string"})"},
        {404, "no such project or proposal", "application/problem+json", problem_ref}},
       get_proposal_diff},
      {"POST",
       "/api/v1/projects/{project}/proposals/{name}/test",
       "testProposal",
       "Run the project's `flowstate test` cases on the proposal's files",
       "Runs this node's `flowstate test` on a copy of the proposal's files (at most 120 s); the outcome is kept "
       "for the merge.",
       true,
       runs_on::pool,
       {},
       "",
       {{200, "the tests ran (passed or failed)", "application/json",
         R"({"type":"object","required":["revision","tests"],"properties":{"revision":{"type":"string"},"tests":)"
         R"({"type":"object","required":["status"],"properties":{"status":{"enum":["not run","passed","failed"]},"output":{"type":"string"}}})"
         R"(}})"},
        {404, "no such project or proposal", "application/problem+json", problem_ref}},
       post_proposal_test},
      {"POST",
       "/api/v1/projects/{project}/proposals/{name}/merge",
       "mergeProposal",
       "Merge the proposal onto the running revision and deploy it",
       "Only once its tests passed on this node; `expected` must be the running revision. Files both sides changed "
       "are a conflict (409 naming them), never resolved silently. On success the proposal is gone.",
       true,
       runs_on::pool,
       {},
       R"({"type":"object","required":["expected"],"properties":{"expected":{"type":"string"}}})",
       {{200, "merged and deployed", "application/json", R"({"$ref":"#/components/schemas/DeployResult"})"},
        {400, "the body is not {expected}", "application/problem+json", problem_ref},
        {404, "no such project or proposal", "application/problem+json", problem_ref},
        {409, "the project changed, the tests did not pass (or were not run), or a merge conflict",
         "application/problem+json", problem_ref},
        {422, "the merged revision is invalid", "application/problem+json", problem_ref}},
       post_proposal_merge},
      {"DELETE",
       "/api/v1/projects/{project}/proposals/{name}",
       "dropProposal",
       "Drop a proposal",
       "",
       true,
       runs_on::pool,
       {},
       "",
       {{200, "dropped", "application/json",
         R"({"type":"object","required":["deleted"],"properties":{"deleted":{"type":"string"}}})"},
        {404, "no such project or proposal", "application/problem+json", problem_ref}},
       delete_proposal_route},
      {"GET",
       "/api/v1/projects/{project}/files",
       "listFiles",
       "A revision's files, with their text",
       "The active revision's, or `revision`'s. A file larger than 1 MiB or not UTF-8 text comes with its size "
       "and without `text`.",
       true,
       runs_on::pool,
       {{"revision", R"({"type":"string"})", "the revision (default: the active one)"}},
       "",
       {{200, "the files", "application/json",
         R"({"type":"object","required":["revision","files"],"properties":{"revision":{"type":"string"},)"
         R"("files":{"type":"array","items":{"type":"object","required":["path","size"],"properties":{)"
         R"("path":{"type":"string"},"size":{"type":"integer"},"text":{"type":"string"}}}}}})"},
        {404, "no such project or revision", "application/problem+json", problem_ref}},
       get_files},
      {"GET",
       "/api/v1/projects/{project}/revisions/{revision}/diff",
       "revisionDiff",
       "What a revision changed, as a unified diff",
       "Against its first parent, or against `against`.",
       true,
       runs_on::pool,
       {{"against", R"({"type":"string"})", "the revision to compare with"}},
       "",
       {{200, "the diff", "text/x-diff", R"({"type":"string"})"},
        {404, "no such project or revision", "application/problem+json", problem_ref}},
       get_revision_diff},
      {"POST",
       "/api/v1/projects/{project}/rollback",
       "rollBack",
       "Deploy an earlier revision's files as a new revision",
       "The new revision has `to`'s files and the active revision as its parent (history only grows), is authored "
       "by the node's edit author, and is deployed; `expected` must be the active revision (else 409).",
       true,
       runs_on::pool,
       {},
       R"({"$ref":"#/components/schemas/RollbackRequest"})",
       {{200, "rolled back", "application/json", R"({"$ref":"#/components/schemas/DeployResult"})"},
        {400, "the body is not {to, expected, message}", "application/problem+json", problem_ref},
        {404, "no such project or revision", "application/problem+json", problem_ref},
        {409, "the project changed since expected", "application/problem+json", problem_ref},
        {422, "the revision is invalid", "application/problem+json", problem_ref}},
       post_rollback},
      {"GET",
       "/api/v1/projects/{project}/flows",
       "listFlows",
       "The active revision's flows as stacks of blocks, with live statistics per function block",
       "Executions by outcome and p50/p99/mean duration in ms (quantiles are bucket upper bounds).",
       true,
       runs_on::listener,
       {},
       "",
       {{200, "the flows", "application/json", R"({"$ref":"#/components/schemas/Flows"})"},
        {404, "no such project", "application/problem+json", problem_ref}},
       get_flows},
      {"GET",
       "/api/v1/projects/{project}/flows/{flow}/blocks/{block}/state/{key}",
       "getState",
       "The committed state of a key",
       "",
       true,
       runs_on::pool,
       {},
       "",
       state_responses,
       get_state},
      {"GET",
       "/api/v1/projects/{project}/flows/{flow}/blocks/{block}/state",
       "getStateOfEmptyKey",
       "The committed state of the key \"\" (every request of a route without parameters has it)",
       "",
       true,
       runs_on::pool,
       {},
       "",
       state_responses,
       get_state},
      {"GET",
       "/api/v1/errors",
       "listErrors",
       "The error queue, oldest first",
       "",
       true,
       runs_on::pool,
       {q{"project", string_schema, "only this project's errors"}, q{"flow", string_schema, "only this flow's"},
        q{"type", string_schema, "only errors of this type (Exception, Timeout, ...)"},
        q{"limit", whole_number_schema, "at most this many (default 1000)"}},
       "",
       {{200, "the error records", "application/json",
         R"({"type":"array","items":{"$ref":"#/components/schemas/ErrorRecord"}})"},
        {400, "limit is not a whole number", "application/problem+json", problem_ref},
        {404, "no such project", "application/problem+json", problem_ref}},
       get_errors},
      {"GET",
       "/api/v1/errors/{id}",
       "getError",
       "One error record",
       "",
       true,
       runs_on::pool,
       {q{"project", string_schema, "the project (optional when the node serves one)"}},
       "",
       {{200, "the record", "application/json", R"({"$ref":"#/components/schemas/ErrorRecord"})"},
        {404, "no such error", "application/problem+json", problem_ref}},
       get_error},
      {"DELETE",
       "/api/v1/errors/{id}",
       "discardError",
       "Discard an error",
       "",
       true,
       runs_on::pool,
       {q{"project", string_schema, "the project (optional when the node serves one)"}},
       "",
       {{200, "discarded", "application/json",
         R"({"type":"object","required":["discarded"],"properties":{"discarded":{"type":"string"}}})"},
        {404, "no such error", "application/problem+json", problem_ref}},
       delete_error},
      {"POST",
       "/api/v1/errors/{id}/replay",
       "replayError",
       "Put the failed input back at the tail of its key's queue; the error leaves in the same commit",
       "",
       true,
       runs_on::pool,
       {q{"project", string_schema, "the project (optional when the node serves one)"}},
       "",
       {{200, "queued again", "application/json",
         R"({"type":"object","required":["replayed"],"properties":{"replayed":{"type":"string"}}})"},
        {409, "the error cannot be replayed (gone, or its block no longer runs a function)", "application/problem+json",
         problem_ref}},
       post_replay},
      {"GET",
       "/api/v1/cluster/graph",
       "getClusterGraph",
       "The cluster's actor graph",
       "Every connected node with its shard actors (key groups, messages in flight), worker pools, driver instances, "
       "outbox and "
       "inbox, and the messages each node's outbox delivered to each other node (as edges); `cluster` is the "
       "asked node's view (GET /api/v1/cluster; null on an embedded node, whose graph has itself as its one "
       "node); `unreachable` names connected nodes that did not answer.",
       true,
       runs_on::pool,
       {},
       "",
       {{200, "the graph", "application/json",
         R"({"type":"object","required":["cluster","nodes","edges","unreachable"],"properties":{)"
         R"("cluster":{"type":["object","null"]},)"
         R"("nodes":{"type":"array","items":{"type":"object","required":["name","shards","workers","drivers","outbox",)"
         R"("inbox","sentTo"],"properties":{"name":{"type":"string"},)"
         R"("shards":{"type":"array","items":{"type":"object","required":["index","firstGroup","endGroup",)"
         R"("inFlight"],"properties":{"index":{"type":"integer"},"firstGroup":{"type":"integer"},)"
         R"("endGroup":{"type":"integer"},"inFlight":{"type":"integer"}}}},)"
         R"("workers":{"type":"array","items":{"type":"object","required":["project","language","processes"],)"
         R"("properties":{"project":{"type":"string"},"language":{"type":"string"},)"
         R"("processes":{"type":"integer"}}}},)"
         R"("drivers":{"type":"array","items":{"type":"object","required":["project","flow","block","kind"],)"
         R"("properties":{"project":{"type":"string"},"flow":{"type":"string"},"block":{"type":"string"},)"
         R"("kind":{"type":"string"}}}},)"
         R"("outbox":{"type":"object","required":["pending","delivered"],"properties":{)"
         R"("pending":{"type":"integer"},"delivered":{"type":"integer"}}},)"
         R"("inbox":{"type":"object","required":["accepted","repeats"],"properties":{)"
         R"("accepted":{"type":"integer"},"repeats":{"type":"integer"}}},)"
         R"("sentTo":{"type":"object","additionalProperties":{"type":"integer"}}}}},)"
         R"("edges":{"type":"array","items":{"type":"object","required":["from","to","messages"],"properties":{)"
         R"("from":{"type":"string"},"to":{"type":"string"},"messages":{"type":"integer"}}}},)"
         R"("unreachable":{"type":"array","items":{"type":"string"}}}})"},
        {500, "the graph could not be made", "application/problem+json", problem_ref}},
       get_cluster_graph},
      {"GET",
       "/api/v1/cluster",
       "getCluster",
       "The cluster as this node sees it",
       "This node's name, the registered nodes (with the peers this node is connected to), the controller and the "
       "placement of the key groups (ranges with their owner and epoch). 404 on an embedded node.",
       true,
       runs_on::listener,
       {},
       "",
       {{200, "the cluster", "application/json",
         R"({"type":"object","required":["self","nodes","controller","ranges"],"properties":{)"
         R"("self":{"type":"string"},"controller":{"type":["string","null"]},)"
         R"("nodes":{"type":"array","items":{"type":"object","required":["name","storeId","incarnation"],)"
         R"("properties":{"name":{"type":"string"},"storeId":{"type":"string"},"incarnation":{"type":"string"},)"
         R"("peer":{"type":"string"},"http":{"type":"string"},"admin":{"type":"string"},)"
         R"("connected":{"type":"boolean"}}}},)"
         R"("ranges":{"type":"array","items":{"type":"object","required":["first","end","node","storeId","epoch"],)"
         R"("properties":{"first":{"type":"integer"},"end":{"type":"integer"},"node":{"type":"string"},)"
         R"("storeId":{"type":"string"},"epoch":{"type":"integer"}}}}}})"},
        {404, "this node is not in a cluster", "application/problem+json", problem_ref}},
       get_cluster},
      {"GET",
       "/api/v1/driver-kinds",
       "listDriverKinds",
       "The built-in driver kinds and the JSON Schema of each one's configuration file",
       "The schemas the node checks driver files against at deploy (drivers/schemas/ in the source).",
       true,
       runs_on::listener,
       {},
       "",
       {{200, "the kinds", "application/json",
         R"({"type":"array","items":{"type":"object","required":["kind","schema"],)"
         R"("properties":{"kind":{"type":"string"},"schema":{"type":"object"}}}})"}},
       get_driver_kinds},
      {"GET",
       "/api/v1/schemas",
       "listSchemas",
       "Registry type URLs",
       "",
       true,
       runs_on::listener,
       {},
       "",
       {{200, "the type URLs", "application/json", R"({"type":"array","items":{"type":"string"}})"}},
       get_schemas},
      {"POST",
       "/api/v1/schemas",
       "addSchema",
       "Add a JSON Schema to the registry",
       "",
       true,
       runs_on::pool,
       {},
       R"({"$ref":"#/components/schemas/SchemaAdd"})",
       {{201, "added", "application/json",
         R"({"type":"object","required":["url"],"properties":{"url":{"type":"string"}}})"},
        {400, "the body is not {url, schema}", "application/problem+json", problem_ref},
        {422, "the schema is invalid", "application/problem+json", problem_ref}},
       post_schema},
      {"GET",
       "/api/v1/trace",
       "getTrace",
       "Execution trace events of a project, oldest first",
       "With follow=true (or Accept: text/event-stream) the answer is a stream of Server-Sent Events, one per new "
       "execution (`id:` its cursor, `data:` the event as JSON), from `after` (or from now), until the client goes; "
       "a comment line comes every 15 s of quiet. 503 when the node's followers are at their cap. In a cluster, "
       "every node's events are merged by time (each node keeps the events of what it ran) and a cursor is the "
       "whole cluster's (`NODE:CURSOR,...`): following on one node streams every node's executions.",
       true,
       runs_on::pool,
       {q{"project", string_schema, "the project (optional when the node serves one)"},
        q{"flow", string_schema, "only this flow's executions"}, q{"block", string_schema, "only this block id's"},
        q{"key", string_schema, "only this key's"}, q{"trace", string_schema, "only this trace id's"},
        q{"errors", boolean_text_schema, "only executions that ended in an error"},
        q{"since", whole_number_schema, "committed at or after (ms since the epoch)"},
        q{"until", whole_number_schema, "committed at or before (ms since the epoch)"},
        q{"limit", whole_number_schema, "the newest N (default 100, at most 10000), or the first N after `after`"},
        q{"after", string_schema, "a cursor: only the events after it, oldest first"},
        q{"follow", boolean_text_schema, "stream new events as Server-Sent Events"}},
       "",
       {{200, "the events", "application/json",
         R"({"type":"array","items":{"$ref":"#/components/schemas/TraceEvent"}})"},
        {200, "with follow=true: `id: CURSOR` and `data: EVENT` (a TraceEvent as JSON) per execution",
         "text/event-stream", R"({"type":"string"})"},
        {400, "since, until or limit is not a whole number", "application/problem+json", problem_ref},
        {404, "no such project", "application/problem+json", problem_ref}},
       get_trace},
  };
  return routes;
}

}  // namespace flowstate::admin
