#pragma once
// public/ served as static files on the flow listener. Files come from the
// active revision's git tree (loaded into memory at activation), except
// public/node_modules/, which npm installs outside git and which is read from
// the project directory on disk.
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "flowstate/drivers/http_types.hpp"

namespace flowstate {
class file_source;
}

namespace flowstate::http {

class static_site {
 public:
  // Reads every file under public/ of `files`; `project_dir` is where
  // public/node_modules/ is looked up.
  static std::shared_ptr<const static_site> load(file_source& files, std::string project_dir);
  bool empty() const { return files_.empty(); }
  // The response for GET/HEAD `path` ("/" is /index.html), or nullopt.
  std::optional<response> serve(std::string_view method, std::string_view path, std::string_view if_none_match) const;

 private:
  struct entry {
    std::string content;
    std::string content_type;
    std::string etag;
  };
  std::map<std::string, entry, std::less<>> files_;  // "index.html" -> ...
  std::string project_dir_;
};

// The MIME type for a file name, by extension.
std::string content_type_for(std::string_view name);

}  // namespace flowstate::http
