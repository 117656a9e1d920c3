#include "flowstate/ui_server/admin_api.hpp"

#include <simdjson.h>

#include <chrono>
#include <thread>

#include "flowstate/actors/engine.hpp"
#include "flowstate/drivers/http_routes.hpp"
#include "ui_page.hpp"

namespace flowstate::admin {
namespace {

http::response json(int status, std::string body) {
  http::response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

// GET /readyz: 503 while starting, and for good when the workers' sandbox
// cannot be set up (functions do not run; docs/security.md).
http::response readiness(const engine& e) {
  const auto& sandbox = e.isolation();
  std::string level = "\"sandbox\":\"" + std::string(sandbox::level_name(sandbox.level)) + "\",\"sandboxDetail\":";
  http::append_json_string(level, sandbox.summary());
  if (sandbox.level == sandbox::sandbox_level::none)
    return json(503, "{\"status\":\"sandbox unavailable\"," + level + "}");
  if (!e.ready()) return json(503, "{\"status\":\"starting\"," + level + "}");
  return json(200, "{\"status\":\"ready\",\"in_flight\":" + std::to_string(e.in_flight()) + "," + level + "}");
}

std::vector<std::string> split(std::string_view path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= path.size()) {
    auto j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    if (j > i) out.emplace_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

std::string query_param(std::string_view query, std::string_view name) {
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

// Runs blocking work (git, fsync, reads) off the listener's I/O thread.
template <class F>
void off_thread(F&& f) {
  std::thread(std::forward<F>(f)).detach();
}

const char* openapi_document = R"({"openapi":"3.1.0","info":{"title":"Flowstate admin API","version":"1"},
"paths":{
"/api/v1/trace":{"get":{"summary":"Execution trace events of a project, oldest first","description":"Query: project, flow, block, key, trace (trace id), errors=true, since and until (ms since the epoch), limit (the newest N, default 100), after (a cursor: the events after it, to follow); follow=true (or Accept: text/event-stream) streams new events as Server-Sent Events (id: the cursor, data: the event) until the client goes."}},
"/api/v1/projects/{project}/flows":{"get":{"summary":"The active revision's flows as stacks of blocks (kind, name, id, key, types), with live statistics per function block: executions by outcome, p50/p99/mean duration in ms"}},
"/api/v1/projects":{"get":{"summary":"The projects on this node, their active revisions and the limits their functions run within"}},
"/api/v1/projects/{project}/deploy":{"post":{"summary":"Activate a committed revision","description":"Body {revision, expected}: expected is the revision it replaces; 409 when another deploy came first, 422 with the problems when invalid."}},
"/api/v1/projects/{project}/flows/{flow}/blocks/{block}/state/{key}":{"get":{"summary":"The committed state of a key"}},
"/api/v1/errors":{"get":{"summary":"The error queue","parameters":[{"name":"project","in":"query"},{"name":"flow","in":"query"},{"name":"type","in":"query"},{"name":"limit","in":"query"}]}},
"/api/v1/errors/{id}":{"get":{"summary":"One error record"},"delete":{"summary":"Discard an error"}},
"/api/v1/errors/{id}/replay":{"post":{"summary":"Put the failed input back at the tail of its key's queue; the error leaves in the same commit"}},
"/api/v1/schemas":{"get":{"summary":"Registry type URLs"},"post":{"summary":"Add {url, schema} to the registry"}}
}})";

// GET /api/v1/trace?follow=true: Server-Sent Events, one per execution
// (`id:` its cursor, `data:` the event), from `after=` (or from now), with a
// comment line every 15 s so that a gone client is noticed.
void follow_trace(engine& e, live_streams& streams, const http::responder_ptr& reply, std::string project,
                  trace_query q) {
  if (auto probe = e.trace(project, trace_query{}); !probe)
    return reply->send(http::problem(404, "not found", probe.error()));
  http::response head;
  head.content_type = "text/event-stream";
  head.headers.emplace_back("Cache-Control", "no-cache");
  auto out = reply->stream(std::move(head));
  if (!out) return;
  if (q.after.empty() && q.since_ms == 0)
    q.since_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
  q.limit = 1000;
  streams.run([&e, out, project = std::move(project), q](const std::atomic<bool>& stopping) mutable {
    auto quiet_since = std::chrono::steady_clock::now();
    while (!stopping && !out->closed()) {
      auto events = e.trace(project, q);
      if (!events) break;
      for (auto& event : *events) {
        auto at = event.find("\"cursor\":\"");
        if (at != std::string::npos) q.after = event.substr(at + 10, event.find('"', at + 10) - at - 10);
        out->write("id: " + q.after + "\ndata: " + event + "\n\n");
      }
      auto now = std::chrono::steady_clock::now();
      if (!events->empty()) quiet_since = now;
      if (now - quiet_since > std::chrono::seconds(15)) {
        out->write(": still here\n\n");
        quiet_since = now;
      }
      for (int i = 0; i < 5 && !stopping; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    out->close();
  });
}

}  // namespace

void live_streams::run(std::function<void(const std::atomic<bool>& stopping)> body) {
  std::lock_guard lock(mutex_);
  if (stopping_) return;
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (!it->done->load()) {
      ++it;
      continue;
    }
    it->thread.join();
    it = threads_.erase(it);
  }
  auto done = std::make_shared<std::atomic<bool>>(false);
  threads_.push_back({std::thread([this, done, body = std::move(body)] {
                        body(stopping_);
                        done->store(true);
                      }),
                      done});
}

void live_streams::stop() {
  std::vector<runner> threads;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    threads.swap(threads_);
  }
  for (auto& r : threads)
    if (r.thread.joinable()) r.thread.join();
}

http::handler make_handler(engine& e, std::string token, live_streams& streams) {
  return [&e, &streams, token = std::move(token)](http::request&& req, http::responder_ptr reply) {
    auto [path, query] = http::split_target(req.target);
    if (path == "/healthz") return reply->send(json(200, R"({"status":"ok"})"));
    if (path == "/" && req.method == "GET") {  // the web UI: its API calls carry the token
      http::response page;
      page.content_type = "text/html; charset=utf-8";
      page.body = ui_page_html();
      page.headers.emplace_back("Cache-Control", "no-cache");
      return reply->send(std::move(page));
    }
    if (path == "/readyz") return reply->send(readiness(e));
    auto auth = req.header("authorization");
    if (auth != "Bearer " + token)
      return reply->send(http::problem(
          401, "unauthorized",
          "send the node's admin token as `Authorization: Bearer TOKEN` (the CLI reads it from DATA_DIR/admin.token)"));
    if (path == "/metrics" && req.method == "GET") {
      http::response r;
      r.status = 200;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = e.metrics_text();
      return reply->send(std::move(r));
    }
    auto parts = split(path);
    if (parts.size() < 2 || parts[0] != "api" || parts[1] != "v1")
      return reply->send(http::problem(404, "not found", std::string(path)));
    parts.erase(parts.begin(), parts.begin() + 2);
    const auto& method = req.method;

    if (parts.size() == 1 && parts[0] == "openapi.json" && method == "GET")
      return reply->send(json(200, openapi_document));

    if (parts.size() == 1 && parts[0] == "projects" && method == "GET") {
      std::string out = "[";
      for (auto& p : e.projects()) {
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
               ",\"stateBytes\":" + std::to_string(l.max_state_bytes) +
               ",\"logBytes\":" + std::to_string(l.max_log_bytes) + "}}";
      }
      return reply->send(json(200, out + "]"));
    }

    if (parts.size() == 3 && parts[0] == "projects" && parts[2] == "deploy" && method == "POST") {
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      std::string_view revision, expected;
      if (parser.parse(req.body).get(doc) || doc["revision"].get_string().get(revision))
        return reply->send(
            http::problem(400, "bad request", "expected a JSON body {\"revision\": COMMIT, \"expected\": COMMIT}"));
      if (doc["expected"].get_string().get(expected)) expected = {};
      off_thread([&e, project = parts[1], revision = std::string(revision), expected = std::string(expected), reply] {
        auto out = e.deploy(project, revision, expected);
        if (out.http_status != 200) {
          auto r = http::problem(out.http_status, out.http_status == 409 ? "conflict" : "deploy refused", out.detail);
          return reply->send(std::move(r));
        }
        std::string body = "{\"revision\":";
        http::append_json_string(body, out.revision);
        body += ",\"replaced\":";
        http::append_json_string(body, out.replaced);
        reply->send(json(200, body + "}"));
      });
      return;
    }

    if (parts.size() == 3 && parts[0] == "projects" && parts[2] == "flows" && method == "GET") {
      auto flows = e.flows_json(parts[1]);
      if (!flows) return reply->send(http::problem(404, "not found", flows.error()));
      return reply->send(json(200, *flows));
    }
    if (parts.size() == 8 && parts[0] == "projects" && parts[2] == "flows" && parts[4] == "blocks" &&
        parts[6] == "state" && method == "GET") {
      off_thread([&e, parts, reply] {
        auto s = e.state_get(parts[1], parts[3], parts[5], parts[7]);
        if (!s) return reply->send(http::problem(404, "not found", s.error()));
        if (!*s) return reply->send(http::problem(404, "no state", "key \"" + parts[7] + "\" has no state"));
        reply->send(json(200, **s));
      });
      return;
    }

    if (parts.size() == 2 && parts[0] == "errors") {
      auto project = query_param(query, "project");
      if (project.empty() && e.projects().size() == 1) project = e.projects().front().name;
      auto id = parts[1];
      if (method == "GET") {
        off_thread([&e, reply, project, id] {
          auto rec = e.error_show(project, id);
          if (!rec)
            return reply->send(http::problem(404, "not found", "no error " + id + " in project \"" + project + "\""));
          reply->send(json(200, *rec));
        });
        return;
      }
      if (method == "DELETE") {
        off_thread([&e, reply, project, id] {
          auto st = e.error_discard(project, id);
          if (!st) return reply->send(http::problem(404, "not found", st.error()));
          reply->send(json(200, "{\"discarded\":\"" + id + "\"}"));
        });
        return;
      }
    }
    if (parts.size() == 3 && parts[0] == "errors" && parts[2] == "replay" && method == "POST") {
      auto project = query_param(query, "project");
      if (project.empty() && e.projects().size() == 1) project = e.projects().front().name;
      off_thread([&e, reply, project, id = parts[1]] {
        auto st = e.error_replay(project, id);
        if (!st) return reply->send(http::problem(409, "cannot replay", st.error()));
        reply->send(json(200, "{\"replayed\":\"" + id + "\"}"));
      });
      return;
    }
    if (parts.size() == 1 && parts[0] == "schemas" && method == "GET") {
      std::string out = "[";
      for (auto& url : e.schema_urls()) {
        if (out.size() > 1) out += ",";
        http::append_json_string(out, url);
      }
      return reply->send(json(200, out + "]"));
    }
    if (parts.size() == 1 && parts[0] == "schemas" && method == "POST") {
      simdjson::dom::parser parser;
      simdjson::dom::element doc, schema;
      std::string_view url;
      if (parser.parse(req.body).get(doc) || doc["url"].get_string().get(url) || doc["schema"].get(schema))
        return reply->send(http::problem(400, "bad request", "expected {\"url\": URL, \"schema\": {...}}"));
      off_thread([&e, reply, url = std::string(url), text = std::string(simdjson::minify(schema))] {
        auto st = e.schema_add(url, text);
        if (!st) return reply->send(http::problem(422, "invalid schema", st.error()));
        reply->send(json(201, "{\"url\":\"" + url + "\"}"));
      });
      return;
    }

    if (parts.size() == 1 && parts[0] == "trace" && method == "GET") {
      auto number = [&](const char* name, int64_t fallback) -> std::optional<int64_t> {
        auto text = query_param(query, name);
        if (text.empty()) return fallback;
        if (text.size() > 18 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
        return std::stoll(text);
      };
      auto since = number("since", 0), until = number("until", 0), limit = number("limit", 100);
      if (!since || !until || !limit)
        return reply->send(http::problem(
            400, "bad request", "expected since and until in ms since the epoch, and limit, as whole numbers"));
      trace_query q;
      q.flow = query_param(query, "flow");
      q.block = query_param(query, "block");
      q.key = query_param(query, "key");
      q.trace_id = query_param(query, "trace");
      q.errors_only = query_param(query, "errors") == "true" || query_param(query, "errors") == "1";
      q.after = query_param(query, "after");
      q.since_ms = *since;
      q.until_ms = *until;
      q.limit = static_cast<std::size_t>(std::min<int64_t>(*limit, 10000));
      if (query_param(query, "follow") == "true" || req.header("accept") == "text/event-stream")
        return follow_trace(e, streams, reply, query_param(query, "project"), q);
      off_thread([&e, reply, project = query_param(query, "project"), q] {
        auto events = e.trace(project, q);
        if (!events) return reply->send(http::problem(404, "not found", events.error()));
        std::string out = "[";
        for (auto& ev : *events) out += (out.size() > 1 ? "," : "") + ev;
        reply->send(json(200, out + "]"));
      });
      return;
    }

    if (parts.size() == 1 && parts[0] == "errors" && method == "GET") {
      auto limit_text = query_param(query, "limit");
      std::size_t limit = 1000;
      if (!limit_text.empty() && limit_text.find_first_not_of("0123456789") == std::string::npos &&
          limit_text.size() < 9)
        limit = std::stoul(limit_text);
      off_thread([&e, reply, project = query_param(query, "project"), flow = query_param(query, "flow"),
                  type = query_param(query, "type"), limit] {
        std::string out = "[";
        for (auto& rec : e.errors(project, flow, type, limit)) {
          if (out.size() > 1) out += ",";
          out += rec;
        }
        reply->send(json(200, out + "]"));
      });
      return;
    }
    reply->send(http::problem(404, "not found", method + " " + std::string(path)));
  };
}

}  // namespace flowstate::admin
