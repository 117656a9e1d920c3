// Remote deploys (docs/cli.md "flowstate deploy"): the client's git objects
// arrive as a pack, are kept in the project's repository on the node, and
// the revision is deployed; a project new to the node is created under
// DATA/projects/NAME.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <functional>

#include "engine_impl.hpp"
#include "flowstate/runtime/file_source.hpp"
#include "flowstate/runtime/git_repo.hpp"
#include "flowstate/runtime/project_loader.hpp"
#include "peers.hpp"

namespace flowstate::engine_detail {
namespace fs = std::filesystem;

namespace {

bool plausible_name(const std::string& name) {
  if (name.empty() || name.size() > 100 || name.front() == '.' || name.find("..") != std::string::npos) return false;
  for (unsigned char c : name)
    if (!std::isalnum(c) && c != '.' && c != '-' && c != '_') return false;
  return true;
}

}  // namespace

deploy_outcome engine_impl::push(const std::string& project, std::string_view pack, const std::string& revision,
                                 const std::string& expected) {
  if (project_entry* e = find(project)) {
    if (auto st = add_pack(e->dir, pack); !st) return {422, "the pushed objects: " + st.error(), "", ""};
    auto out = deploy(project, revision, expected);
    // A repository the node keeps for pushes: its branch follows the deploys.
    const auto pushed = (fs::path(options_.data_dir) / "projects").string() + "/";
    if (out.http_status == 200 && e->dir.rfind(pushed, 0) == 0)
      if (auto head = head_commit(e->dir); head && *head != out.revision)
        (void)update_head(e->dir, out.revision, *head);  // the active revision is the store's record either way
    return out;
  }
  if (!expected.empty())
    return {404, "no project named \"" + project + "\" (expected: none, to create it with this push)", "", ""};
  if (!plausible_name(project))
    return {422, "a new project's name is letters, digits, '.', '-' and '_' (up to 100), found \"" + project + "\"", "",
            ""};
  // In a cluster a new project is recorded through the cluster's deployer,
  // which a node that is still joining does not have yet.
  auto hook = std::atomic_load(&deploy_hook_);
  if (options_.project_ids && (!hook || !*hook))
    return {503, "this node is joining its cluster; nothing was created: retry shortly", "", ""};
  std::unique_lock creating(push_mutex_);  // two first pushes of one name: one creates it
  if (find(project)) {
    creating.unlock();
    return push(project, pack, revision, expected);
  }
  auto made = create_pushed(project, revision, [&](const std::string& dir) -> status {
    if (auto st = add_pack(dir, pack); !st) return fail("the pushed objects: " + st.error());
    return status::success();
  });
  creating.unlock();
  // In a cluster the new project is recorded as its first deploy (which no
  // other may have recorded already): every other node then creates it too,
  // fetching its objects from this one (create_from_peer).
  if (made.http_status != 200 || !options_.project_ids) return made;
  return (*hook)(project, made.revision, std::string(no_revision));
}

deploy_outcome engine_impl::create_pushed(const std::string& project, const std::string& revision,
                                          const std::function<status(const std::string& dir)>& objects) {
  const auto dir = (fs::path(options_.data_dir) / "projects" / project).string();
  std::error_code ec;
  fs::remove_all(dir, ec);  // what a failed creation left
  auto refuse = [&](int status, std::string why) {
    fs::remove_all(dir, ec);
    return deploy_outcome{status, std::move(why), "", ""};
  };
  if (auto st = init_repository(dir); !st) return refuse(500, st.error());
  if (auto st = objects(dir); !st) return refuse(422, st.error());
  auto full = resolve(dir, revision);
  if (!full) return refuse(422, "revision " + revision + ": " + full.error());
  // Its name is the project's: read before anything is registered.
  auto files = open_git_commit(dir, *full);
  if (!files) return refuse(422, files.error());
  auto catalog = kind_catalog::defaults();
  auto rev = load_project(**files, catalog, nullptr);
  if (!rev) return refuse(422, rev.error());
  if (rev->manifest_.name != project)
    return refuse(422, "flowstate.yaml:1: name is \"" + rev->manifest_.name + "\", but this push creates \"" + project +
                           "\": the names must be the same");
  if (auto st = update_head(dir, *full, ""); !st) return refuse(500, st.error());
  if (auto st = add_project(dir); !st) return refuse(422, st.error());
  deploy_outcome out;
  out.revision = *full;
  return out;
}

status engine_impl::create_from_peer(const std::string& project, const std::string& revision, const std::string& from) {
  if (!peers_) return fail("this node cannot ask other nodes");
  std::lock_guard creating(push_mutex_);
  if (find(project)) return status::success();
  if (!plausible_name(project)) return fail("\"" + project + "\" is not a name a push could have created");
  auto made = create_pushed(project, revision,
                            [&](const std::string& dir) { return pack_from_peer(dir, project, revision, from); });
  if (made.http_status != 200) return fail(made.detail);
  return status::success();
}

}  // namespace flowstate::engine_detail

namespace flowstate {

std::vector<std::string> engine::pushed_projects(const std::string& data_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto& entry : std::filesystem::directory_iterator(std::filesystem::path(data_dir) / "projects", ec))
    if (entry.is_directory(ec) && std::filesystem::exists(entry.path() / ".git", ec))
      out.push_back(entry.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace flowstate
