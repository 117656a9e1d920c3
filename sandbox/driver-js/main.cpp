// flowstate-driver-js: Node.js (Debian's libnode) running the driver host
// (host.js, compiled in) for one custom driver (docs/drivers.md "Custom
// drivers"). Started by the node in the workers' sandbox as
//   flowstate-driver-js --fd 3 --max-old-space-size=MB
// with the control channel on fd 3 and handed-over sockets arriving on fd 4.
// The only native code here: `recvFd`, which takes one socket off fd 4.
#include <node_api.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace node {
int Start(int argc, char* argv[]);
}

extern const char* flowstate_driver_host_js;

namespace {

// recvFd(channel) -> [fd, tag]: blocks until the node's message is there
// (it is sent before the reply that announces it).
napi_value recv_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t channel = 4;
  if (argc >= 1) napi_get_value_int32(env, argv[0], &channel);
  char data[256];
  iovec io{data, sizeof data};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &io;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(channel, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) {
    napi_throw_error(env, nullptr, (std::string("recvmsg: ") + std::strerror(errno)).c_str());
    return nullptr;
  }
  int fd = -1;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  napi_value result, fd_value, tag;
  napi_create_array_with_length(env, 2, &result);
  napi_create_int32(env, fd, &fd_value);
  napi_create_string_utf8(env, data, static_cast<size_t>(n), &tag);
  napi_set_element(env, result, 0, fd_value);
  napi_set_element(env, result, 1, tag);
  return result;
}

napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "recvFd", NAPI_AUTO_LENGTH, recv_fd, nullptr, &fn);
  napi_set_named_property(env, exports, "recvFd", fn);
  return exports;
}

// Registered before node starts: a "linked" module, reached with
// process._linkedBinding('flowstate_driver').
napi_module module_def = {NAPI_MODULE_VERSION, 0, __FILE__, init, "flowstate_driver", nullptr, {nullptr}};

}  // namespace

int main(int argc, char* argv[]) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  napi_module_register(&module_def);  // the only way to link a module into the binary itself
#pragma GCC diagnostic pop
  // --fd 3 is the node's convention for its children; Node.js gets the rest,
  // then the host as the script to evaluate.
  std::vector<std::string> args{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--fd") == 0 && i + 1 < argc) {
      ++i;
      continue;
    }
    args.emplace_back(argv[i]);
  }
  args.emplace_back("-e");
  args.emplace_back(flowstate_driver_host_js);
  std::vector<char*> out;
  for (auto& a : args) out.push_back(a.data());
  out.push_back(nullptr);
  return node::Start(static_cast<int>(args.size()), out.data());
}
