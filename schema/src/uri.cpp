#include "uri.hpp"

namespace flowstate::schema::detail {

namespace {

struct parts {
  std::string_view scheme, authority, path, query, fragment;
  bool has_scheme = false, has_authority = false, has_query = false, has_fragment = false;
};

parts parse(std::string_view s) {
  parts p;
  auto hash = s.find('#');
  if (hash != std::string_view::npos) {
    p.fragment = s.substr(hash + 1);
    p.has_fragment = true;
    s = s.substr(0, hash);
  }
  auto q = s.find('?');
  if (q != std::string_view::npos) {
    p.query = s.substr(q + 1);
    p.has_query = true;
    s = s.substr(0, q);
  }
  auto colon = s.find(':');
  auto slash = s.find('/');
  if (colon != std::string_view::npos && colon > 0 && (slash == std::string_view::npos || colon < slash)) {
    p.scheme = s.substr(0, colon);
    p.has_scheme = true;
    s = s.substr(colon + 1);
  }
  if (s.substr(0, 2) == "//") {
    s = s.substr(2);
    auto end = s.find('/');
    p.authority = s.substr(0, end);
    p.has_authority = true;
    s = end == std::string_view::npos ? std::string_view{} : s.substr(end);
  }
  p.path = s;
  return p;
}

std::string remove_dot_segments(std::string_view in) {
  std::string out;
  std::string input(in);
  while (!input.empty()) {
    if (input.rfind("../", 0) == 0)
      input.erase(0, 3);
    else if (input.rfind("./", 0) == 0)
      input.erase(0, 2);
    else if (input.rfind("/./", 0) == 0)
      input.replace(0, 3, "/");
    else if (input == "/.")
      input = "/";
    else if (input.rfind("/../", 0) == 0 || input == "/..") {
      input = input == "/.." ? "/" : input.substr(3);
      auto last = out.rfind('/');
      out.erase(last == std::string::npos ? 0 : last);
    } else if (input == "." || input == "..")
      input.clear();
    else {
      auto next = input.find('/', input[0] == '/' ? 1 : 0);
      out += input.substr(0, next);
      input.erase(0, next == std::string::npos ? input.size() : next);
    }
  }
  return out;
}

std::string compose(std::string_view scheme, bool has_scheme, std::string_view authority, bool has_authority,
                    std::string_view path, std::string_view query, bool has_query, std::string_view fragment,
                    bool has_fragment) {
  std::string r;
  if (has_scheme) {
    r += scheme;
    r += ':';
  }
  if (has_authority) {
    r += "//";
    r += authority;
  }
  r += path;
  if (has_query) {
    r += '?';
    r += query;
  }
  if (has_fragment) {
    r += '#';
    r += fragment;
  }
  return r;
}

}  // namespace

std::string resolve_uri(std::string_view base, std::string_view ref) {
  if (base.empty()) return std::string(ref);
  parts r = parse(ref), b = parse(base);
  if (r.has_scheme)
    return compose(r.scheme, true, r.authority, r.has_authority, remove_dot_segments(r.path), r.query, r.has_query,
                   r.fragment, r.has_fragment);
  if (r.has_authority)
    return compose(b.scheme, b.has_scheme, r.authority, true, remove_dot_segments(r.path), r.query, r.has_query,
                   r.fragment, r.has_fragment);
  std::string path;
  std::string_view query = r.query;
  bool has_query = r.has_query;
  if (r.path.empty()) {
    path = b.path;
    if (!has_query) {
      query = b.query;
      has_query = b.has_query;
    }
  } else if (r.path[0] == '/') {
    path = remove_dot_segments(r.path);
  } else {
    std::string merged;
    if (b.has_authority && b.path.empty()) {
      merged = "/" + std::string(r.path);
    } else {
      auto last = b.path.rfind('/');
      merged = last == std::string_view::npos ? std::string(r.path)
                                              : std::string(b.path.substr(0, last + 1)) + std::string(r.path);
    }
    path = remove_dot_segments(merged);
  }
  return compose(b.scheme, b.has_scheme, b.authority, b.has_authority, path, query, has_query, r.fragment,
                 r.has_fragment);
}

void split_fragment(std::string_view uri, std::string_view& without, std::string_view& fragment) {
  auto hash = uri.find('#');
  if (hash == std::string_view::npos) {
    without = uri;
    fragment = {};
  } else {
    without = uri.substr(0, hash);
    fragment = uri.substr(hash + 1);
  }
}

std::string percent_decode(std::string_view s) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace flowstate::schema::detail
