#include "flowstate/sandbox/isolation.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#include "elf_dependencies.hpp"
#include "isolation_probe.hpp"
#include "landlock.hpp"
#include "seccomp_policy.hpp"

namespace flowstate::sandbox {

class isolation_plan {
 public:
  struct bind_mount {
    std::string source, target;  // target: under `root`
    bool directory = false;
    unsigned long flags = 0;  // the source mount's flags a bind may not clear
  };
  struct symlink_entry {
    std::string path, text;
  };

  bool namespaces = false;
  bool landlock = false;  // the landlock level: own uid, Landlock, no namespaces
  int landlock_abi = 0;
  std::vector<detail::landlock_rule> landlock_rules;
  bool drop_to_nobody = false;
  bool fresh_proc = false;
  bool python = false;
  std::string root;  // where the new root is assembled before pivot_root
  std::string old_root, proc;
  std::vector<std::string> directories;  // under root, parents first
  std::vector<symlink_entry> links;
  std::vector<bind_mount> binds;
  std::string binary;
  std::string library_path;  // staged shared libraries' folders, for the loader
  std::string uid_map, gid_map;
  std::string cgroup_prefix;  // ".../flowstate/w": the child appends its pid
  std::string memory_limit_bytes;
  std::vector<std::string> environment;
  std::vector<char*> envp;
  const detail::seccomp_program* seccomp = nullptr;
};

namespace {

using detail::cgroup_base;
using detail::namespace_flags;
using detail::nobody;

// ---- in the parent ---------------------------------------------------------

// Groups of workers that have exited leave empty cgroups: remove them (a
// group that still has a process refuses with EBUSY).
void remove_stale_cgroups() {
  DIR* dir = ::opendir(cgroup_base);
  if (!dir) return;
  while (dirent* entry = ::readdir(dir))
    if (entry->d_name[0] == 'w') ::rmdir((std::string(cgroup_base) + "/" + entry->d_name).c_str());
  ::closedir(dir);
}

unsigned long locked_mount_flags(const std::string& path) {
  struct statvfs info {};
  if (::statvfs(path.c_str(), &info) != 0) return 0;
  unsigned long flags = 0;
  if (info.f_flag & ST_NOSUID) flags |= MS_NOSUID;
  if (info.f_flag & ST_NODEV) flags |= MS_NODEV;
  if (info.f_flag & ST_NOEXEC) flags |= MS_NOEXEC;
  if (info.f_flag & ST_NOATIME) flags |= MS_NOATIME;
  if (info.f_flag & ST_NODIRATIME) flags |= MS_NODIRATIME;
  if (info.f_flag & ST_RELATIME) flags |= MS_RELATIME;
  return flags;
}

std::string octal_mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Empty, or what keeps "others" from `path`: the folder above it they may
// not enter, or the file itself they may not read.
std::string unreadable_by_others(const std::string& path) {
  struct stat info {};
  for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1)) {
    std::string folder = path.substr(0, at);
    if (::stat(folder.c_str(), &info) != 0 || !(info.st_mode & S_IXOTH))
      return "the folder " + folder + " (mode " + octal_mode(info.st_mode) + ") cannot be entered by others";
  }
  if (::stat(path.c_str(), &info) != 0 || !(info.st_mode & S_IROTH))
    return path + " (mode " + octal_mode(info.st_mode) + ") cannot be read by others";
  return {};
}

// Whether the sandbox's outer user (nobody, for a node run as root) can
// reach and read `path`: o+r on the file, o+x on every folder above it.
bool readable_by_others(const std::string& path) { return unreadable_by_others(path).empty(); }

// A root-owned, world-readable copy of `path` under its own name (once per
// file version) for a file under a folder only root may enter, e.g. a build
// tree in /root or a clone in a mode-0700 folder: the namespaces level binds
// it after the drop to nobody, the landlock level's uid reads it as "other".
std::string staged_copy(const std::string& path) {
  static const std::string base = "/var/tmp/flowstate-sandbox";
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return path;
  // /var/tmp is writable by everyone: a folder or file another user made
  // there first (to have workers load its library) is never used.
  auto root_only = [](const std::string& at, bool folder) {
    struct stat st {};
    return ::lstat(at.c_str(), &st) == 0 && (folder ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) && st.st_uid == 0 &&
           !(st.st_mode & (S_IWGRP | S_IWOTH));
  };
  ::mkdir(base.c_str(), 0755);
  if (!root_only(base, true) || ::chmod(base.c_str(), 0755) != 0) return path;
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : path) hash = (hash ^ c) * 1099511628211ull;
  auto slash = path.rfind('/');
  std::string folder = base + "/" + std::to_string(hash) + "-" + std::to_string(info.st_size) + "-" +
                       std::to_string(info.st_mtim.tv_sec);
  ::mkdir(folder.c_str(), 0755);
  if (!root_only(folder, true) || ::chmod(folder.c_str(), 0755) != 0) return path;
  std::string name = folder + "/" + path.substr(slash + 1);
  if (root_only(name, false)) return name;
  std::string tmp = name + ".tmp" + std::to_string(::getpid());
  int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0755);
  bool ok = in >= 0 && out >= 0;
  char buffer[1 << 16];
  while (ok) {
    ssize_t n = ::read(in, buffer, sizeof buffer);
    if (n == 0) break;
    ok = n > 0 && ::write(out, buffer, static_cast<size_t>(n)) == n;
  }
  if (in >= 0) ::close(in);
  if (out >= 0) ok = (::fchmod(out, 0755) == 0) && (::close(out) == 0) && ok;
  if (!ok || ::rename(tmp.c_str(), name.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return path;
  }
  return name;
}

// Collects what the new root must hold for a set of paths to resolve in it
// as they do outside: every symlink on the way, recreated, and the final
// files and directories, bound read-only.
class root_builder {
 public:
  // Empty, or why `path` cannot be made visible.
  std::string add(const std::string& path) {
    std::string real;
    if (std::string error = resolve(path, 0, real); !error.empty()) return error;
    struct stat info {};
    if (::stat(real.c_str(), &info) != 0) return real + ": " + std::strerror(errno);
    (S_ISDIR(info.st_mode) ? bound_dirs_ : bound_files_).insert(real);
    return {};
  }

  void build(isolation_plan& plan) {
    auto covered = [&](const std::string& path) {
      for (const auto& dir : bound_dirs_)
        if (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 && path[dir.size()] == '/') return true;
      return false;
    };
    std::set<std::string> dirs;
    auto add_parents = [&](const std::string& path) {
      for (size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1))
        dirs.insert(path.substr(0, at));
    };
    std::vector<isolation_plan::bind_mount> binds;
    for (const auto& dir : bound_dirs_) {
      if (covered(dir)) continue;
      add_parents(dir);
      dirs.insert(dir);
      binds.push_back({dir, plan.root + dir, true, locked_mount_flags(dir)});
    }
    for (const auto& file : bound_files_) {
      if (covered(file)) continue;
      add_parents(file);
      std::string source = ::geteuid() == 0 && !readable_by_others(file) ? staged_copy(file) : file;
      binds.push_back({source, plan.root + file, false, locked_mount_flags(source)});
    }
    for (const auto& [path, text] : links_) {
      if (covered(path)) continue;
      add_parents(path);
      plan.links.push_back({plan.root + path, text});
    }
    for (const auto& dir : dirs) plan.directories.push_back(plan.root + dir);
    plan.binds = std::move(binds);
  }

  bool uses(const std::string& prefix) const {
    auto under = [&](const std::string& path) { return path == prefix || path.rfind(prefix + "/", 0) == 0; };
    for (auto& p : bound_dirs_)
      if (under(p)) return true;
    for (auto& p : bound_files_)
      if (under(p)) return true;
    return false;
  }

 private:
  std::string resolve(const std::string& path, int depth, std::string& real) {
    if (depth > 16) return path + ": too many levels of symbolic links";
    if (path.empty() || path[0] != '/') return path + ": not an absolute path";
    std::string current;
    size_t at = 1;
    while (at <= path.size()) {
      size_t end = path.find('/', at);
      if (end == std::string::npos) end = path.size();
      std::string part = path.substr(at, end - at);
      at = end + 1;
      if (part.empty() || part == ".") continue;
      if (part == "..") {
        current = current.substr(0, current.rfind('/'));
        continue;
      }
      std::string next = current + "/" + part;
      struct stat info {};
      if (::lstat(next.c_str(), &info) != 0) return next + ": " + std::strerror(errno);
      if (S_ISLNK(info.st_mode)) {
        char text[4096];
        ssize_t n = ::readlink(next.c_str(), text, sizeof text - 1);
        if (n < 0) return next + ": " + std::strerror(errno);
        std::string target(text, static_cast<size_t>(n));
        links_[next] = target;
        std::string resolved;
        if (std::string error = resolve(target[0] == '/' ? target : current + "/" + target, depth + 1, resolved);
            !error.empty())
          return error;
        current = resolved;
      } else {
        current = next;
      }
    }
    real = current.empty() ? "/" : current;
    return {};
  }

  std::set<std::string> bound_dirs_, bound_files_;
  std::map<std::string, std::string> links_;
};

std::string pick_staging_root(const root_builder& builder) {
  for (const char* candidate : {"/mnt", "/srv", "/opt", "/media", "/sys"}) {
    struct stat info {};
    if (::stat(candidate, &info) == 0 && S_ISDIR(info.st_mode) && !builder.uses(candidate)) return candidate;
  }
  return {};
}

// ---- in the child: system calls only ---------------------------------------

size_t put_text(char* out, size_t at, size_t size, const char* text) {
  while (*text && at + 1 < size) out[at++] = *text++;
  out[at] = '\0';
  return at;
}

size_t put_number(char* out, size_t at, size_t size, unsigned long value) {
  char digits[24];
  int n = 0;
  do digits[n++] = static_cast<char>('0' + value % 10);
  while ((value /= 10) != 0);
  while (n > 0 && at + 1 < size) out[at++] = digits[--n];
  out[at] = '\0';
  return at;
}

[[noreturn]] void die(const char* step, const char* detail = "") {
  int error = errno;
  char message[512];
  size_t at = put_text(message, 0, sizeof message, "flowstate sandbox: ");
  at = put_text(message, at, sizeof message, step);
  at = put_text(message, at, sizeof message, detail);
  at = put_text(message, at, sizeof message, ": errno ");
  at = put_number(message, at, sizeof message, static_cast<unsigned long>(error));
  at = put_text(message, at, sizeof message, " (");
  at = put_text(message, at, sizeof message, strerrorname_np(error) ? strerrorname_np(error) : "?");
  at = put_text(message, at, sizeof message, ")\n");
  [[maybe_unused]] auto n = ::write(2, message, at);
  ::_exit(126);
}

void write_file(const char* path, const char* text, size_t size, const char* step) {
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) die(step, path);
  if (::write(fd, text, size) != static_cast<ssize_t>(size)) die(step, path);
  ::close(fd);
}

void set_limit(int resource, rlim_t value) {
  rlimit limit{value, value};
  ::setrlimit(resource, &limit);
}

void join_memory_cgroup(const isolation_plan& plan) {
  if (plan.cgroup_prefix.empty()) return;
  char dir[256], file[320], pid_text[24];
  size_t at = put_text(dir, 0, sizeof dir, plan.cgroup_prefix.c_str());
  put_number(dir, at, sizeof dir, static_cast<unsigned long>(::getpid()));
  if (::mkdir(dir, 0755) != 0 && errno != EEXIST) die("memory cgroup: mkdir ", dir);
  size_t pid_size = put_number(pid_text, 0, sizeof pid_text, static_cast<unsigned long>(::getpid()));
  at = put_text(file, 0, sizeof file, dir);
  put_text(file, at, sizeof file, "/memory.limit_in_bytes");
  write_file(file, plan.memory_limit_bytes.data(), plan.memory_limit_bytes.size(), "memory cgroup: ");
  put_text(file, at, sizeof file, "/cgroup.procs");
  write_file(file, pid_text, pid_size, "memory cgroup: ");
}

// The new root: an empty tmpfs with the plan's directories, symlinks and
// read-only binds, then pivot_root into it, a fresh /proc, and the tmpfs
// made read-only.
void enter_new_root(const isolation_plan& plan) {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) die("making mounts private");
  if (::mount("tmpfs", plan.root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=755") != 0)
    die("mounting the new root's tmpfs on ", plan.root.c_str());
  for (const auto& dir : plan.directories)
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) die("mkdir ", dir.c_str());
  for (const auto& link : plan.links)
    if (::symlink(link.text.c_str(), link.path.c_str()) != 0 && errno != EEXIST) die("symlink ", link.path.c_str());
  for (const auto& bind : plan.binds) {
    if (!bind.directory) {
      int fd = ::open(bind.target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0444);
      if (fd < 0) die("creating the mount point ", bind.target.c_str());
      ::close(fd);
    }
    if (::mount(bind.source.c_str(), bind.target.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
      die("bind-mounting ", bind.source.c_str());
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | bind.flags;
    if (::mount(nullptr, bind.target.c_str(), nullptr, flags, nullptr) != 0)
      die("making read-only ", bind.source.c_str());
  }
  // Before pivot_root: the kernel lets a user namespace mount proc only
  // while a proc mount is fully visible in its mount namespace.
  if (plan.fresh_proc && ::mount("proc", plan.proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    die("mounting /proc");
  if (::chdir(plan.root.c_str()) != 0) die("chdir to the new root");
  if (::syscall(SYS_pivot_root, ".", ".old") != 0) die("pivot_root");
  if (::chdir("/") != 0) die("chdir /");
  if (::umount2("/.old", MNT_DETACH) != 0) die("detaching the old root");
  ::rmdir("/.old");
  if (::mount(nullptr, "/", nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0)
    die("making the new root read-only");
  ::sethostname("sandbox", 7);
  ::setdomainname("sandbox", 7);
}

void drop_capabilities() {
  // Root of the user namespace keeps no capability, now or across exec.
  ::prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP | SECBIT_NO_SETUID_FIXUP_LOCKED |
                                 SECBIT_NOROOT | SECBIT_NOROOT_LOCKED);
  for (int cap = 0; cap <= 63; ++cap) ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &header, data) != 0) die("dropping capabilities");
}

// The files a worker needs: its binary, the shared libraries the loader
// needs for it (ELF DT_NEEDED/RPATH), the loader's cache, for Python the
// standard library and what its extension modules load, and the caller's.
std::vector<std::string> worker_paths(const isolation_options& options, const std::string& binary) {
  std::vector<std::string> paths{binary};
  detail::elf_dependencies(binary, paths);
  if (options.python) {
    paths.push_back("/usr/lib/python3.11");
    DIR* dir = ::opendir("/usr/lib/python3.11/lib-dynload");
    while (dir) {
      dirent* entry = ::readdir(dir);
      if (!entry) break;
      std::string name = entry->d_name;
      if (name.size() > 3 && name.compare(name.size() - 3, 3, ".so") == 0)
        detail::elf_dependencies("/usr/lib/python3.11/lib-dynload/" + name, paths);
    }
    if (dir) ::closedir(dir);
  }
  paths.push_back("/etc/ld.so.cache");
  paths.insert(paths.end(), options.read_only_paths.begin(), options.read_only_paths.end());
  return paths;
}

status plan_namespaces(isolation_plan& plan, const std::vector<std::string>& paths) {
  root_builder builder;
  for (const auto& path : paths) {
    std::string error = builder.add(path);
    if (!error.empty() && path != "/etc/ld.so.cache") return fail("sandbox: cannot make visible " + error);
  }
  plan.root = pick_staging_root(builder);
  if (plan.root.empty()) return fail("sandbox: no directory to assemble the worker's root in (/mnt, /srv, ...)");
  builder.build(plan);
  plan.old_root = plan.root + "/.old";
  plan.proc = plan.root + "/proc";
  plan.directories.push_back(plan.old_root);
  plan.directories.push_back(plan.proc);
  plan.namespaces = true;
  plan.fresh_proc = detail::machine().fresh_proc;
  plan.drop_to_nobody = ::geteuid() == 0;
  uid_t outer_uid = plan.drop_to_nobody ? nobody : ::geteuid();
  gid_t outer_gid = plan.drop_to_nobody ? nobody : ::getegid();
  plan.uid_map = "0 " + std::to_string(outer_uid) + " 1\n";
  plan.gid_map = "0 " + std::to_string(outer_gid) + " 1\n";
  return status::success();
}

status plan_landlock(isolation_plan& plan, const std::vector<std::string>& listed) {
  for (std::string path : listed) {
    struct stat info {};
    if (::stat(path.c_str(), &info) != 0) {
      if (path == "/etc/ld.so.cache") continue;
      return fail("sandbox: cannot make readable " + path + ": " + std::strerror(errno));
    }
    // The worker's own uid reads these as "other": a binary or shared
    // library under a folder only root may enter (a build tree in /root, a
    // clone in a mode-0700 folder) is used from a staged copy; the loader
    // finds a staged library through LD_LIBRARY_PATH, which comes before
    // the binary's RUNPATH.
    if (::geteuid() == 0 && !readable_by_others(path)) {
      bool library = S_ISREG(info.st_mode) && path.find(".so") != std::string::npos;
      if (path != plan.binary && !library)
        return fail("sandbox: landlock: the worker's uid cannot read " + path + ": " + unreadable_by_others(path) +
                    " (give the folder o+x, or keep the installation and project outside private folders)");
      std::string staged = staged_copy(path);
      if (staged == path)
        return fail("sandbox: landlock: cannot stage a readable copy of " + path +
                    " in /var/tmp/flowstate-sandbox (it must be a folder owned by root and "
                    "writable by root only)");
      if (path == plan.binary)
        plan.binary = staged;
      else
        plan.library_path += (plan.library_path.empty() ? "" : ":") + staged.substr(0, staged.rfind('/'));
      path = staged;
    }
    plan.landlock_rules.push_back({path, S_ISDIR(info.st_mode), false});
  }
  // The Python worker sizes RLIMIT_AS from its own /proc/self/statm (the
  // child's pid is the worker's: no PID namespace at this level).
  if (plan.python) plan.landlock_rules.push_back({"/proc/self/statm", false, true});
  plan.landlock = true;
  plan.landlock_abi = detail::machine().landlock_abi;
  return status::success();
}

// The landlock level's user: a uid and gid of its own, no capability, no
// supplementary group; the parent-death signal set again (a change of user
// clears it), and out of the node's working directory.
void become_worker_user() {
  const pid_t parent = ::getppid();
  // Without SECBIT_NO_SETUID_FIXUP: leaving uid 0 clears every capability.
  ::prctl(PR_SET_SECUREBITS,
          SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_NOROOT | SECBIT_NOROOT_LOCKED);
  for (int cap = 0; cap <= 63; ++cap) ::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
  const uid_t uid = detail::worker_uid(::getpid());
  if (::syscall(SYS_setgroups, 0, nullptr) != 0) die("setgroups");
  if (::syscall(SYS_setresgid, uid, uid, uid) != 0) die("setresgid");
  if (::syscall(SYS_setresuid, uid, uid, uid) != 0) die("setresuid");
  ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &header, data) != 0) die("dropping capabilities");
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  if (::chdir("/") != 0) die("chdir /");
}

}  // namespace

result<std::shared_ptr<const isolation_plan>> prepare_isolation(const isolation_options& options,
                                                                const std::string& binary) {
  if (!options.enabled) return std::shared_ptr<const isolation_plan>();
  sandbox_level level = isolation_status().level;
  if (options.level) {
    const auto& machine = detail::machine().levels;
    level = *options.level;
    if (level == sandbox_level::namespaces && !machine.namespaces_error.empty())
      return fail("sandbox: namespaces: " + machine.namespaces_error);
    if (level == sandbox_level::landlock && !machine.landlock_error.empty())
      return fail("sandbox: landlock: " + machine.landlock_error);
  }
  if (level == sandbox_level::off) return std::shared_ptr<const isolation_plan>();
  if (level == sandbox_level::none)
    return fail("sandbox: " + (options.level ? std::string("no level asked for") : isolation_status().summary()));

  auto plan = std::make_shared<isolation_plan>();
  const auto& program = options.driver ? detail::driver_seccomp_program() : detail::worker_seccomp_program();
  if (program.instructions.empty()) return fail("sandbox: the seccomp filter cannot be built: " + program.error);
  plan->seccomp = &program;
  plan->python = options.python;

  char real_binary[4096];
  if (!::realpath(binary.c_str(), real_binary)) return fail("sandbox: " + binary + ": " + std::strerror(errno));
  plan->binary = real_binary;
  const auto paths = worker_paths(options, plan->binary);
  auto planned = level == sandbox_level::namespaces ? plan_namespaces(*plan, paths) : plan_landlock(*plan, paths);
  if (!planned) return fail(planned.error());

  if (detail::machine().memory_cgroup && options.memory_mb > 0) {
    remove_stale_cgroups();
    plan->cgroup_prefix = std::string(cgroup_base) + "/w";
    // A backstop above the interpreter's own accounting (V8's heap limit and
    // the room it grants to unwind, RLIMIT_AS for Python): what the cgroup
    // catches is memory outside it (ArrayBuffers, native allocations).
    plan->memory_limit_bytes = std::to_string((2 * uint64_t{options.memory_mb} + 64) << 20);
  }
  plan->environment = {"TZ=UTC", "LC_ALL=C.UTF-8", "PATH=/nonexistent"};
  if (!plan->library_path.empty()) plan->environment.push_back("LD_LIBRARY_PATH=" + plan->library_path);
  for (auto& entry : plan->environment) plan->envp.push_back(entry.data());
  plan->envp.push_back(nullptr);
  return std::shared_ptr<const isolation_plan>(std::move(plan));
}

void enter_isolation_and_exec(const isolation_plan& plan, char* const argv[]) {
  // stdin and stdout are the node's: a worker gets /dev/null instead, and a
  // Python worker also for stderr (Python code can write to any fd).
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd >= 0) {
    ::dup2(null_fd, 0);
    ::dup2(null_fd, 1);
    if (plan.python) ::dup2(null_fd, 2);
    ::close(null_fd);
  }
  join_memory_cgroup(plan);

  if (plan.namespaces) {
    const pid_t parent = ::getppid();
    if (plan.drop_to_nobody) {
      // Raw system calls: glibc's wrappers would signal threads that the
      // forked child does not have.
      if (::syscall(SYS_setgroups, 0, nullptr) != 0) die("setgroups");
      if (::syscall(SYS_setresgid, nobody, nobody, nobody) != 0) die("setresgid");
      if (::syscall(SYS_setresuid, nobody, nobody, nobody) != 0) die("setresuid");
    }
    // A change of user clears the parent-death signal, and makes the
    // process undumpable: its /proc/self/*_map files would belong to root.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    if (::getppid() != parent) ::_exit(127);
    if (::unshare(namespace_flags) != 0) die("unshare");
    write_file("/proc/self/setgroups", "deny", 4, "user namespace: ");
    write_file("/proc/self/uid_map", plan.uid_map.data(), plan.uid_map.size(), "user namespace: ");
    write_file("/proc/self/gid_map", plan.gid_map.data(), plan.gid_map.size(), "user namespace: ");
    // The worker is the first process of its PID namespace; this process
    // waits for it and exits as it did, so the host's pid stays meaningful.
    pid_t worker = ::fork();
    if (worker < 0) die("fork into the PID namespace");
    if (worker > 0) {
      ::syscall(SYS_close_range, 3U, ~0U, 0U);  // the worker's sockets
      int status = 0;
      while (::waitpid(worker, &status, 0) < 0 && errno == EINTR) {
      }
      ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0));
    }
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    enter_new_root(plan);
  } else if (plan.landlock) {
    become_worker_user();
  }

  set_limit(RLIMIT_NOFILE, 64);
  set_limit(RLIMIT_NPROC, 64);
  set_limit(RLIMIT_FSIZE, 0);
  set_limit(RLIMIT_CORE, 0);
  set_limit(RLIMIT_MEMLOCK, 0);
  set_limit(RLIMIT_MSGQUEUE, 0);
  if (plan.namespaces) drop_capabilities();
  int binary = ::open(plan.binary.c_str(), O_PATH | O_CLOEXEC);
  if (binary < 0) die("opening the worker binary ", plan.binary.c_str());
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("no_new_privs");
  if (plan.landlock) {
    const char* step = "";
    if (int error = detail::restrict_with_landlock(plan.landlock_abi, plan.landlock_rules, &step); error != 0) {
      errno = error;
      die("landlock: ", step);
    }
  }
  sock_fprog filter{static_cast<unsigned short>(plan.seccomp->instructions.size()),
                    const_cast<sock_filter*>(plan.seccomp->instructions.data())};
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filter) != 0) die("installing the seccomp filter");
  ::syscall(SYS_execveat, binary, "", argv, plan.envp.data(), AT_EMPTY_PATH);
  die("execveat ", plan.binary.c_str());
}

}  // namespace flowstate::sandbox
