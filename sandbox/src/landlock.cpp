#include "landlock.hpp"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace flowstate::sandbox::detail {
namespace {

// Access rights by the ABI that introduced them (linux/landlock.h of newer
// kernels; Debian 12's header stops at ABI 2).
constexpr uint64_t fs_abi1 = (uint64_t{1} << 13) - 1;  // EXECUTE ... MAKE_SYM
constexpr uint64_t fs_refer = uint64_t{1} << 13;       // ABI 2
constexpr uint64_t fs_truncate = uint64_t{1} << 14;    // ABI 3
constexpr uint64_t fs_ioctl_dev = uint64_t{1} << 15;   // ABI 5
constexpr uint64_t net_bind_tcp = uint64_t{1} << 0;    // ABI 4
constexpr uint64_t net_connect_tcp = uint64_t{1} << 1;
constexpr uint64_t scope_abstract_unix_socket = uint64_t{1} << 0;  // ABI 6
constexpr uint64_t scope_signal = uint64_t{1} << 1;

constexpr uint64_t read_file = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_EXECUTE;
constexpr uint64_t read_dir = read_file | LANDLOCK_ACCESS_FS_READ_DIR;

// struct landlock_ruleset_attr as of ABI 6; the kernel takes the prefix
// its caller's ABI knows.
struct ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};

}  // namespace

int landlock_abi_version() {
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi >= 1 ? static_cast<int>(abi) : -errno;
}

int restrict_with_landlock(int abi, const std::vector<landlock_rule>& rules, const char** failed_step) {
  ruleset_attr attr{fs_abi1, 0, 0};
  size_t size = sizeof attr.handled_access_fs;
  if (abi >= 2) attr.handled_access_fs |= fs_refer;
  if (abi >= 3) attr.handled_access_fs |= fs_truncate;
  if (abi >= 4) {
    attr.handled_access_net = net_bind_tcp | net_connect_tcp;
    size = offsetof(ruleset_attr, scoped);
  }
  if (abi >= 5) attr.handled_access_fs |= fs_ioctl_dev;
  if (abi >= 6) {
    attr.scoped = scope_abstract_unix_socket | scope_signal;
    size = sizeof attr;
  }
  int ruleset = static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, size, 0));
  if (ruleset < 0) {
    *failed_step = "landlock_create_ruleset";
    return errno;
  }
  for (const auto& rule : rules) {
    int fd = ::open(rule.path.c_str(), O_PATH | O_CLOEXEC);
    if (fd < 0) {
      if (rule.optional) continue;
      *failed_step = rule.path.c_str();
      return errno;
    }
    landlock_path_beneath_attr beneath{};
    beneath.allowed_access = rule.directory ? read_dir : read_file;
    beneath.parent_fd = fd;
    long rc = ::syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &beneath, 0);
    int error = errno;
    ::close(fd);
    if (rc != 0 && !rule.optional) {
      *failed_step = rule.path.c_str();
      return error;
    }
  }
  long rc = ::syscall(SYS_landlock_restrict_self, ruleset, 0);
  int error = errno;
  ::close(ruleset);
  if (rc != 0) {
    *failed_step = "landlock_restrict_self";
    return error;
  }
  return 0;
}

}  // namespace flowstate::sandbox::detail
