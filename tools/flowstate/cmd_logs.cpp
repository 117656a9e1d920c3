// flowstate logs: the execution trace of a project (docs/trace.md):
// each execution's input, outputs, new state, console/print lines, timing
// and error, newest last; --follow keeps printing new ones as the node's
// event stream brings them.
#include <simdjson.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>

#include "cli_target.hpp"

namespace flowstate::cli {
namespace {

struct logs_options {
  target_options target;
  std::string flow, block, key, trace_id, since;
  bool errors = false;
  bool follow = false;
  std::size_t limit = 20;
};

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string shorten(std::string_view text, std::size_t max = 160) {
  if (text.size() <= max) return std::string(text);
  return std::string(text.substr(0, max)) + "… (" + std::to_string(text.size()) + " bytes)";
}

// One event as a few human lines.
void print_event(simdjson::dom::element e) {
  auto str = [&](const char* k) {
    std::string_view v;
    return e[k].get_string().get(v) ? std::string() : std::string(v);
  };
  double duration = 0;
  if (e["durationMs"].get_double().get(duration)) duration = 0;
  const std::string status = str("status");
  std::printf("%s  %s/%s  key=%s  %s  %.2f ms  rev %.12s\n", str("time").c_str(), str("flow").c_str(),
              str("block").c_str(), str("key").c_str(), status.c_str(), duration, str("revision").c_str());
  simdjson::dom::element v;
  if (!e["input"].get(v)) std::printf("  in     %s\n", shorten(simdjson::minify(v)).c_str());
  simdjson::dom::array list;
  if (!e["outputs"].get_array().get(list))
    for (auto out : list) std::printf("  out    %s\n", shorten(simdjson::minify(out)).c_str());
  if (!e["state"].get(v))
    std::printf("  state  %s\n", shorten(simdjson::minify(v)).c_str());
  else if (str("stateChange") == "deleted")
    std::printf("  state  (deleted)\n");
  if (!e["logs"].get_array().get(list))
    for (auto line : list) {
      std::string_view text;
      if (!line.get_string().get(text)) std::printf("  log    %s\n", std::string(text).c_str());
    }
  if (status != "ok")
    std::printf("  error  %s: %s (error %s)\n", status.c_str(), str("error").c_str(), str("errorId").c_str());
  if (str("payload") == "expired") std::printf("  (input, outputs, state and logs are past trace.full)\n");
}

// Prints the events of one answer; returns the last cursor ("" if none).
std::string print_events(const std::string& body, bool json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::array events;
  if (parser.parse(body).get(doc) || doc.get_array().get(events)) die("unexpected answer: " + body);
  std::string cursor;
  for (auto e : events) {
    if (json)
      std::printf("%s\n", std::string(simdjson::minify(e)).c_str());
    else
      print_event(e);
    std::string_view c;
    if (!e["cursor"].get_string().get(c)) cursor = std::string(c);
  }
  std::fflush(stdout);
  return cursor;
}

void run_logs(const logs_options& o) {
  auto t = connect(o.target);
  std::string base = "/api/v1/trace?project=" + url_escape(o.target.project);
  auto add = [&](const char* name, const std::string& value) {
    if (!value.empty()) base += std::string("&") + name + "=" + url_escape(value);
  };
  add("flow", o.flow);
  add("block", o.block);
  add("key", o.key);
  add("trace", o.trace_id);
  if (o.errors) base += "&errors=true";
  int64_t since = 0;
  if (!o.since.empty()) {
    int64_t age = parse_age_ms(o.since);
    if (age < 0) die("logs: expected --since like 30s, 10m, 2h or 1d, found \"" + o.since + "\"");
    since = now_ms() - age;
  }
  const int64_t started = now_ms();
  auto fetch = [&](const std::string& target) {
    auto r = admin_request(t, "GET", target);
    if (!r) die(r.error());
    if (r->status != 200) die("logs: " + problem_detail(r->body));
    return r->body;
  };
  std::string first = base + "&limit=" + std::to_string(o.limit);
  if (since) first += "&since=" + std::to_string(since);
  std::string cursor = print_events(fetch(first), o.target.json);
  if (!o.follow) return;
  // Then the node's event stream, from the last event printed (or from now).
  std::string next = base + "&follow=true";
  next += cursor.empty() ? "&since=" + std::to_string(since ? since : started) : "&after=" + cursor;
  std::string pending;
  auto streamed = admin_stream(t, next, [&](std::string_view bytes) {
    pending.append(bytes);
    for (std::size_t end; (end = pending.find("\n\n")) != std::string::npos; pending.erase(0, end + 2)) {
      std::string_view event(pending.data(), end);
      auto data = event.find("data: ");
      if (data != std::string_view::npos) print_events("[" + std::string(event.substr(data + 6)) + "]", o.target.json);
    }
    return true;
  });
  if (!streamed) die(streamed.error());
  if (*streamed != 200) die("logs: the node refused to stream the trace (HTTP " + std::to_string(*streamed) + ")");
  die("logs: the node closed the stream (stopped?)");
}

}  // namespace

void register_logs_command(CLI::App& app) {
  auto o = std::make_shared<logs_options>();
  auto* cmd = app.add_subcommand("logs", "Show the execution trace: inputs, outputs, state, console/print lines");
  add_target_options(cmd, o->target);
  cmd->add_option("--flow", o->flow, "Only executions of this flow");
  cmd->add_option("--block", o->block, "Only executions of this block id");
  cmd->add_option("--key", o->key, "Only executions for this key");
  cmd->add_option("--trace", o->trace_id, "Only executions of this trace id (one source event and what followed)");
  cmd->add_flag("--errors", o->errors, "Only executions that ended in an error");
  cmd->add_option("--since", o->since, "Only executions in the last 30s, 10m, 2h, 1d, ...");
  cmd->add_option("-n,--limit", o->limit, "Show the newest N executions")->capture_default_str();
  cmd->add_flag("-f,--follow", o->follow, "Keep printing new executions until interrupted");
  cmd->callback([o] { run_logs(*o); });
}

}  // namespace flowstate::cli
