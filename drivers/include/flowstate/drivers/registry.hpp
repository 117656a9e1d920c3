#pragma once
// The driver registry: every driver kind registers under its name
// ("http.Request"); the engine and the project loader look names up.
#include <map>
#include <string>
#include <vector>

namespace flowstate::drivers {

enum class role { source, sink };

struct kind_info {
  std::string name;
  role role_ = role::source;
  std::string summary;  // one line for error messages and docs
};

class registry {
 public:
  void add(kind_info k) { kinds_[k.name] = std::move(k); }
  const kind_info* find(const std::string& name) const {
    auto it = kinds_.find(name);
    return it == kinds_.end() ? nullptr : &it->second;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (auto& [name, _] : kinds_) out.push_back(name);
    return out;
  }

 private:
  std::map<std::string, kind_info> kinds_;
};

// Registers the built-in drivers (called once, explicitly, at start-up).
void register_builtin_drivers(registry& r);

}  // namespace flowstate::drivers
