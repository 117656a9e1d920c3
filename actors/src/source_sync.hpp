#pragma once
// Keeping the running sources of one kind (mqtt.Subscribe, custom drivers)
// in line with the active revisions: engine_mqtt.cpp, engine_custom.cpp.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model.hpp"

namespace flowstate::engine_detail {

// A source block of an active revision, by "project/flow/block".
using source_blocks = std::map<std::string, std::pair<project_ptr, uint32_t>>;

// Takes out of `running` (caller holds its lock) every source that is no
// longer wanted or whose block's driver_config changed, and out of `wanted`
// every one that keeps running. Returns the ones to stop (outside the lock).
template <class Source>
std::vector<std::shared_ptr<Source>> prune_sources(std::map<std::string, std::shared_ptr<Source>>& running,
                                                   source_blocks& wanted) {
  std::vector<std::shared_ptr<Source>> stop;
  for (auto it = running.begin(); it != running.end();) {
    auto w = wanted.find(it->first);
    if (w != wanted.end() && w->second.first->flows[w->second.second].blocks[0].driver_config == it->second->identity) {
      wanted.erase(w);
      ++it;
      continue;
    }
    stop.push_back(it->second);
    it = running.erase(it);
  }
  return stop;
}

}  // namespace flowstate::engine_detail
