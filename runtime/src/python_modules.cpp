#include "flowstate/runtime/python_modules.hpp"

#include <cstdio>
#include <map>

#include "flowstate/runtime/keys.hpp"

namespace flowstate {
namespace {

bool is_identifier(const std::string& text) {
  if (text.empty() || (text[0] >= '0' && text[0] <= '9')) return false;
  for (char c : text)
    if (!(c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  return text != "__pycache__";
}

// "attr/_make.py" -> ("attr._make", false), "attr/__init__.py" -> ("attr",
// true); an empty name when the path is not importable.
std::pair<std::string, bool> module_name_of(const std::string& relative) {
  std::string name;
  size_t start = 0;
  while (true) {
    size_t slash = relative.find('/', start);
    if (slash == std::string::npos) break;
    std::string folder = relative.substr(start, slash - start);
    if (!is_identifier(folder)) return {};
    name += (name.empty() ? "" : ".") + folder;
    start = slash + 1;
  }
  std::string stem = relative.substr(start, relative.size() - start - 3);
  if (stem == "__init__") return {name, true};
  if (!is_identifier(stem)) return {};
  return {name + (name.empty() ? "" : ".") + stem, false};
}

std::string hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

std::string megabytes(size_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

result<python_module_set> collect_python_modules(file_source& files, const std::set<std::string>& skip_files,
                                                 size_t max_bytes) {
  std::map<std::string, python_module> by_name;
  std::map<std::string, std::string> root_of;  // module name -> the folder it came from
  size_t total = 0;
  for (const std::string root : {"functions", "vendor"}) {
    for (const auto& path : files.list_tree(root)) {
      if (path.size() < 3 || path.compare(path.size() - 3, 3, ".py") != 0 || skip_files.count(path)) continue;
      auto [name, is_package] = module_name_of(path.substr(root.size() + 1));
      if (name.empty()) continue;
      auto found = by_name.find(name);
      // functions/ before vendor/; in one folder, attr/__init__.py before attr.py.
      if (found != by_name.end() && (root_of[name] != root || found->second.is_package || !is_package)) continue;
      auto source = files.read(path);
      if (!source) continue;
      total += source->size();
      if (total > max_bytes)
        return fail("functions/ and vendor/: the Python modules are more than " + megabytes(max_bytes) +
                    " together (the limit); vendor only the pure-Python packages the functions import");
      by_name[name] = python_module{name, path, std::move(*source), is_package};
      root_of[name] = root;
    }
  }
  // A folder of modules without __init__.py is a namespace package.
  std::vector<python_module> namespaces;
  for (auto& [name, module] : by_name) {
    for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', dot + 1)) {
      std::string parent = name.substr(0, dot);
      if (by_name.count(parent)) continue;
      // The path of the parent's folder: the root, then the name's segments.
      std::string folder = module.filename.substr(0, module.filename.find('/') + 1 + dot);
      namespaces.push_back(python_module{parent, folder, "", true});
    }
  }
  for (auto& ns : namespaces) by_name.try_emplace(ns.name, std::move(ns));

  python_module_set set;
  std::string digest;
  for (auto& [name, module] : by_name) {
    digest += name + '\0' + module.filename + '\0' + (module.is_package ? "p" : "m") +
              hex64(stable_hash64(module.source)) + std::to_string(module.source.size()) + '\n';
    set.modules.push_back(std::move(module));
  }
  if (!set.modules.empty()) set.hash = hex64(stable_hash64(digest));
  return set;
}

result<python_module_set> collect_python_modules(file_source& files, const project_revision& revision) {
  std::set<std::string> function_files;
  for (auto& [_, flow] : revision.flows)
    for (auto& block : flow.blocks) {
      if (block.kind != "py.Function") continue;
      auto function = revision.functions.find(block.name);
      if (function != revision.functions.end()) function_files.insert(function->second.file);
    }
  return collect_python_modules(files, function_files);
}

}  // namespace flowstate
