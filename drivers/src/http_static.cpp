#include "flowstate/drivers/http_static.hpp"

#include <fstream>
#include <sstream>

#include "flowstate/runtime/file_source.hpp"
#include "flowstate/runtime/keys.hpp"

namespace flowstate::http {
namespace {

std::string etag_of(std::string_view content) {
  return "\"" + std::to_string(stable_hash64(content)) + "-" + std::to_string(content.size()) + "\"";
}

}  // namespace

std::string content_type_for(std::string_view name) {
  auto dot = name.rfind('.');
  auto ext = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
  static const std::map<std::string_view, const char*> types = {{"html", "text/html; charset=utf-8"},
                                                                {"htm", "text/html; charset=utf-8"},
                                                                {"css", "text/css; charset=utf-8"},
                                                                {"js", "text/javascript; charset=utf-8"},
                                                                {"mjs", "text/javascript; charset=utf-8"},
                                                                {"json", "application/json"},
                                                                {"svg", "image/svg+xml"},
                                                                {"png", "image/png"},
                                                                {"jpg", "image/jpeg"},
                                                                {"jpeg", "image/jpeg"},
                                                                {"gif", "image/gif"},
                                                                {"ico", "image/x-icon"},
                                                                {"txt", "text/plain; charset=utf-8"},
                                                                {"woff", "font/woff"},
                                                                {"woff2", "font/woff2"},
                                                                {"map", "application/json"},
                                                                {"webmanifest", "application/manifest+json"},
                                                                {"wasm", "application/wasm"}};
  auto it = types.find(ext);
  return it == types.end() ? "application/octet-stream" : it->second;
}

std::shared_ptr<const static_site> static_site::load(file_source& files, std::string project_dir) {
  auto site = std::make_shared<static_site>();
  site->project_dir_ = std::move(project_dir);
  for (auto& path : files.list_tree("public")) {
    auto rel = path.substr(std::string("public/").size());
    if (rel.rfind("node_modules/", 0) == 0) continue;
    auto content = files.read(path);
    if (!content) continue;
    entry e;
    e.content_type = content_type_for(rel);
    e.etag = etag_of(*content);
    e.content = std::move(*content);
    site->files_.emplace(std::move(rel), std::move(e));
  }
  return site;
}

std::optional<response> static_site::serve(std::string_view method, std::string_view path,
                                           std::string_view if_none_match) const {
  if (method != "GET" && method != "HEAD") return std::nullopt;
  if (path.empty() || path.front() != '/') return std::nullopt;
  std::string rel(path.substr(1));
  if (rel.empty() || rel.back() == '/') rel += "index.html";
  if (rel.find("..") != std::string::npos || rel.find('\0') != std::string::npos) return std::nullopt;
  response r;
  r.headers.emplace_back("Cache-Control", "no-cache");
  auto it = files_.find(rel);
  if (it != files_.end()) {
    r.headers.emplace_back("ETag", it->second.etag);
    if (if_none_match == it->second.etag) {
      r.status = 304;
      r.content_type.clear();
      return r;
    }
    r.content_type = it->second.content_type;
    if (method == "GET") r.body = it->second.content;
    return r;
  }
  if (rel.rfind("node_modules/", 0) == 0 && !project_dir_.empty()) {
    std::ifstream in(project_dir_ + "/public/" + rel, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream ss;
    ss << in.rdbuf();
    r.content_type = content_type_for(rel);
    if (method == "GET") r.body = ss.str();
    return r;
  }
  return std::nullopt;
}

}  // namespace flowstate::http
