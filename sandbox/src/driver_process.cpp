#include "flowstate/sandbox/driver_process.hpp"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "worker_process.hpp"

extern const char* flowstate_driver_host_py;

namespace flowstate::sandbox {

namespace {
// What libnode loads at start-up from outside the library (Debian
// externalises these builtins): made visible in the sandbox.
const char* const node_files[] = {"/usr/share/nodejs/acorn", "/usr/share/nodejs/acorn-walk",
                                  "/usr/share/nodejs/cjs-module-lexer", "/usr/share/nodejs/undici",
                                  // OpenSSL refuses to start when the file exists but cannot be read.
                                  "/usr/lib/ssl/openssl.cnf"};
}  // namespace

result<driver_child> spawn_driver(const driver_launch& launch) {
  isolation_options iso;
  iso.enabled = launch.isolated;
  iso.level = launch.level;
  iso.driver = true;
  iso.memory_mb = launch.memory_mb;
  std::vector<std::string> argv;
  if (launch.language == driver_language::js) {
    if (launch.js_binary.empty()) return fail("no flowstate-driver-js binary configured");
    for (const char* path : node_files)
      if (::access(path, R_OK) == 0) iso.read_only_paths.push_back(path);
    argv = {launch.js_binary, "--max-old-space-size=" + std::to_string(launch.memory_mb)};
  } else {
    iso.python = true;
    argv = {"/usr/bin/python3.11", "-I", "-S", "-B", "-c", flowstate_driver_host_py};
  }
  auto spawned = detail::spawn_process(std::move(argv), iso, 2);
  if (!spawned) return fail(spawned.error());
  return driver_child{spawned->pid, spawned->ends[0], spawned->ends[1]};
}

void kill_driver(driver_child& child) {
  detail::spawned_worker w{child.pid, child.control};
  detail::kill_worker(w);
  if (child.handoff >= 0) ::close(child.handoff);
  child = {};
}

status hand_over(const driver_child& child, int fd, const std::string& tag) {
  iovec io{const_cast<char*>(tag.data()), tag.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &io;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  ssize_t n;
  do n = ::sendmsg(child.handoff, &msg, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n < 0) return fail(std::string("handing the socket over: ") + std::strerror(errno));
  return status::success();
}

}  // namespace flowstate::sandbox
