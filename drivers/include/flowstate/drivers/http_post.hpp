#pragma once
// http.Post (docs/drivers.md "http.Post"): a sink that sends each output to
// a URL (webhooks). The URL and headers are templates over the message:
// {{key}}, {{id}} and {{/json/pointer}} into the output. Every try carries
// the same Idempotency-Key (the output's id).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "flowstate/drivers/sink.hpp"
#include "flowstate/runtime/result.hpp"

namespace flowstate::drivers::http_post {

// A template: literal text and placeholders, parsed once at deploy.
struct piece {
  enum class what { text, key, id, pointer } kind = what::text;
  std::string text;  // the literal, or the JSON pointer
};
using template_text = std::vector<piece>;

// "/hooks/{{key}}?x={{/a/b}}" -> pieces; fails naming what is wrong.
result<template_text> parse_template(std::string_view text);

struct config {
  std::string method = "POST";
  bool tls = false;
  std::string host, port;  // literal: placeholders only in the path and query
  template_text target;    // "/hooks/{{key}}?x=1"
  std::vector<std::pair<std::string, template_text>> headers;
  std::string body_pointer;  // "" = the whole output
  uint64_t timeout_ms = 10000;
  uint32_t concurrency = 16;
  sinks::retry_policy retry;
};

// Parses an http.Post configuration (the driver file as JSON); errors name
// the field.
result<config> parse(std::string_view config_json);

// Renders a template for one delivery: a placeholder's string value is
// inserted as it is (percent-encoded when `url`), another JSON value as its
// JSON text; fails naming a pointer the output does not have.
result<std::string> render(const template_text& t, const sinks::delivery& d, bool url);

// The request body: the output, or the value at the body pointer, as JSON.
result<std::string> body_of(const config& c, const sinks::delivery& d);

// What an HTTP answer means for a delivery: 2xx delivered; 408, 425, 429
// and 5xx retried (honouring Retry-After in seconds); anything else is
// permanent.
sinks::outcome classify(unsigned status, std::string_view retry_after, std::string_view body);

// The sink, running its requests on `io`.
std::shared_ptr<sinks::sink> make_sink(sinks::io_thread& io, config c);

}  // namespace flowstate::drivers::http_post
