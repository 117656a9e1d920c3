#include "worker_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace flowstate::sandbox::detail {

result<spawned_worker> spawn_worker(const std::string& binary, const std::vector<std::string>& args,
                                    const isolation_options& isolation) {
  if (::access(binary.c_str(), X_OK) != 0)
    return fail("worker binary " + binary + " is not executable: " + std::strerror(errno));
  auto sandbox = prepare_isolation(isolation, binary);
  if (!sandbox) return fail(sandbox.error());
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
    return fail(std::string("socketpair: ") + std::strerror(errno));

  // Everything the child needs is prepared before fork: only async-signal-safe
  // calls happen between fork and exec.
  std::vector<std::string> argv_strings{binary, "--fd", "3"};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) {
    int error = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return fail(std::string("fork: ") + std::strerror(error));
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    if (fds[1] == 3) {
      ::fcntl(3, F_SETFD, 0);
    } else if (::dup2(fds[1], 3) < 0) {
      ::_exit(127);
    }
    ::syscall(SYS_close_range, 4U, ~0U, 0U);
    if (*sandbox) enter_isolation_and_exec(**sandbox, argv.data());
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  return spawned_worker{pid, fds[0]};
}

void kill_worker(spawned_worker& worker) {
  if (worker.socket >= 0) ::close(worker.socket);
  worker.socket = -1;
  if (worker.pid > 0) {
    ::kill(worker.pid, SIGKILL);
    int status;
    while (::waitpid(worker.pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  worker.pid = -1;
}

}  // namespace flowstate::sandbox::detail
