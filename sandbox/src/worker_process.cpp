#include "worker_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace flowstate::sandbox::detail {

result<spawned_process> spawn_process(std::vector<std::string> argv_strings, const isolation_options& isolation,
                                      int sockets) {
  const std::string& binary = argv_strings.at(0);
  if (::access(binary.c_str(), X_OK) != 0)
    return fail("binary " + binary + " is not executable: " + std::strerror(errno));
  auto sandbox = prepare_isolation(isolation, binary);
  if (!sandbox) return fail(sandbox.error());
  std::vector<int> ours, theirs;
  auto close_all = [&] {
    for (int fd : ours) ::close(fd);
    for (int fd : theirs) ::close(fd);
  };
  for (int i = 0; i < sockets; ++i) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      int error = errno;
      close_all();
      return fail(std::string("socketpair: ") + std::strerror(error));
    }
    ours.push_back(fds[0]);
    theirs.push_back(fds[1]);
  }
  // Everything the child needs is prepared before fork: only async-signal-safe
  // calls happen between fork and exec.
  std::vector<char*> argv;
  for (auto& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();

  pid_t pid = ::fork();
  if (pid < 0) {
    int error = errno;
    close_all();
    return fail(std::string("fork: ") + std::strerror(error));
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    // Their ends to 3, 4, ...: first moved above every target, so that no
    // dup2 overwrites an end not yet placed.
    const int n = static_cast<int>(theirs.size());
    for (int i = 0; i < n; ++i) {
      int moved = ::fcntl(theirs[static_cast<size_t>(i)], F_DUPFD_CLOEXEC, 3 + n + 64);
      if (moved < 0) ::_exit(127);
      theirs[static_cast<size_t>(i)] = moved;
    }
    for (int i = 0; i < n; ++i)
      if (::dup2(theirs[static_cast<size_t>(i)], 3 + i) < 0) ::_exit(127);
    // Every other fd goes (Asio's sockets are not close-on-exec): where
    // close_range is missing (kernel < 5.9) or refused, one by one.
    if (::syscall(SYS_close_range, static_cast<unsigned>(3 + n), ~0U, 0U) != 0) {
      rlimit open_files{};
      const long last = ::getrlimit(RLIMIT_NOFILE, &open_files) == 0 && open_files.rlim_cur != RLIM_INFINITY
                            ? static_cast<long>(open_files.rlim_cur)
                            : 65536;
      for (long fd = 3 + n; fd < last; ++fd) ::close(static_cast<int>(fd));
    }
    if (*sandbox) enter_isolation_and_exec(**sandbox, argv.data());
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  for (int fd : theirs) ::close(fd);
  for (int fd : ours) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  return spawned_process{pid, std::move(ours)};
}

result<spawned_worker> spawn_worker(const std::string& binary, const std::vector<std::string>& args,
                                    const isolation_options& isolation) {
  std::vector<std::string> argv{binary, "--fd", "3"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto spawned = spawn_process(std::move(argv), isolation, 1);
  if (!spawned) return fail(spawned.error());
  return spawned_worker{spawned->pid, spawned->ends[0]};
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
