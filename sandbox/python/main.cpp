// flowstate-pyworker: runs user Python functions for a function host.
//   flowstate-pyworker --fd 3 [--cpu-ms N] [--wall-ms N] [--memory-mb N]
//                      [--max-output-bytes N] [--max-state-bytes N] [--max-log-bytes N]
//   flowstate-pyworker --check FILE...
// The same protocol as flowstate-worker (sandbox/proto/worker.proto).
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "connection.hpp"
#include "flowstate/sandbox/limits.hpp"
#include "no_threads.hpp"
#include "py_host.hpp"

namespace fp = flowstate::pyworker;

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: flowstate-pyworker --fd N [--cpu-ms N] [--wall-ms N] [--memory-mb N]\n"
               "                          [--max-output-bytes N] [--max-state-bytes N] [--max-log-bytes N]\n"
               "       flowstate-pyworker --check FILE...\n");
}

// An interpreter that reads nothing of the environment, no site-packages, no
// user directory, writes no bytecode, and hashes strings with seed 0.
bool start_python() {
  if (PyImport_AppendInittab("_flowstate", &fp::init_flowstate_module) < 0) return false;
  PyConfig config;
  PyConfig_InitIsolatedConfig(&config);
  config.use_hash_seed = 1;
  config.hash_seed = 0;
  config.site_import = 0;
  config.write_bytecode = 0;
  config.install_signal_handlers = 0;
  config.user_site_directory = 0;
  config.buffered_stdio = 0;
  config.module_search_paths_set = 1;
  PyStatus status = PyConfig_SetString(&config, &config.program_name, L"flowstate-pyworker");
  for (const wchar_t* path : {L"/usr/lib/python3.11", L"/usr/lib/python3.11/lib-dynload"})
    if (!PyStatus_Exception(status)) status = PyWideStringList_Append(&config.module_search_paths, path);
  if (!PyStatus_Exception(status)) status = Py_InitializeFromConfig(&config);
  PyConfig_Clear(&config);
  if (PyStatus_Exception(status)) {
    std::fprintf(stderr, "flowstate-pyworker: Python did not start: %s\n", status.err_msg ? status.err_msg : "?");
    return false;
  }
  return true;
}

// Memory is limited by the cgroup where the sandbox has one; RLIMIT_AS is the
// backstop that turns a runaway allocation into MemoryError (docs/security.md).
void limit_address_space(uint32_t memory_mb) {
  if (memory_mb == 0) return;
  size_t base = 0;
  if (FILE* statm = std::fopen("/proc/self/statm", "r")) {
    unsigned long pages = 0;
    if (std::fscanf(statm, "%lu", &pages) == 1) base = pages * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    std::fclose(statm);
  }
  if (base == 0) base = size_t{64} << 20;
  rlimit limit{};
  limit.rlim_cur = limit.rlim_max = base + (size_t{memory_mb} << 20);
  ::setrlimit(RLIMIT_AS, &limit);
}

int check_files(const std::vector<std::string>& files) {
  int failures = 0;
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      std::fprintf(stderr, "%s: cannot be read\n", file.c_str());
      ++failures;
      continue;
    }
    PyObject* code = Py_CompileStringExFlags(text.str().c_str(), file.c_str(), Py_file_input, nullptr, -1);
    if (code) {
      Py_DECREF(code);
      continue;
    }
    ++failures;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    long line = 0;
    std::string message = "cannot be compiled";
    if (value) {
      if (PyObject* lineno = PyObject_GetAttrString(value, "lineno")) {
        if (PyLong_Check(lineno)) line = PyLong_AsLong(lineno);
        Py_DECREF(lineno);
      }
      PyObject* msg = PyObject_GetAttrString(value, "msg");
      if (!msg) msg = PyObject_Str(value);
      if (msg && PyUnicode_Check(msg))
        message = std::string(reinterpret_cast<PyTypeObject*>(type)->tp_name) + ": " + PyUnicode_AsUTF8(msg);
      Py_XDECREF(msg);
    }
    PyErr_Clear();
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    std::fprintf(stderr, "%s:%ld: %s\n", file.c_str(), line, message.c_str());
  }
  return failures ? 1 : 0;
}

int serve(int fd, const flowstate::sandbox::limits& limits) {
  fp::connection conn(fd);
  fp::py_host host(limits, conn);
  if (!host.startup_error().empty()) {
    std::fprintf(stderr, "flowstate-pyworker: %s\n", host.startup_error().c_str());
    return 1;
  }
  if (std::string error = fp::forbid_new_threads(); !error.empty()) {
    std::fprintf(stderr, "flowstate-pyworker: %s\n", error.c_str());
    return 1;
  }
  limit_address_space(limits.memory_mb);
  flowstate::worker::ToWorker message;
  while (conn.next(&message)) {
    for (const auto& load : message.loads()) host.load(load, conn.out().add_loads());
    for (const auto& call : message.calls()) {
      conn.flush_if_stale();
      host.call(call, conn.out().add_replies());
    }
    for (uint64_t id : message.unload()) host.unload(id);
  }
  conn.flush();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int fd = -1;
  flowstate::sandbox::limits limits;
  std::vector<std::string> check_files_list;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (check)
      check_files_list.push_back(arg);
    else if (arg == "--check")
      check = true;
    else if (arg == "--fd" && i + 1 < argc)
      fd = std::atoi(argv[++i]);
    else if (!limits.parse_flag(argc, argv, i)) {
      usage();
      return 2;
    }
  }
  if (!check && fd < 0) {
    usage();
    return 2;
  }
  if (!start_python()) return 1;
  int rc = check ? check_files(check_files_list) : serve(fd, limits);
  // Exiting without Py_Finalize: nothing needs flushing, and finalizing
  // would run user code (atexit, __del__) after the host is gone.
  std::fflush(nullptr);
  ::_exit(rc);
}
