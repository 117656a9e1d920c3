#include "flowstate/sandbox/bundle.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <regex>
#include <set>
#include <vector>

namespace flowstate::sandbox {
namespace {

namespace fs = std::filesystem;

const std::set<std::string>& node_builtins() {
  static const std::set<std::string> names{"assert",
                                           "async_hooks",
                                           "buffer",
                                           "child_process",
                                           "cluster",
                                           "console",
                                           "constants",
                                           "crypto",
                                           "dgram",
                                           "diagnostics_channel",
                                           "dns",
                                           "domain",
                                           "events",
                                           "fs",
                                           "http",
                                           "http2",
                                           "https",
                                           "inspector",
                                           "module",
                                           "net",
                                           "os",
                                           "path",
                                           "perf_hooks",
                                           "process",
                                           "punycode",
                                           "querystring",
                                           "readline",
                                           "repl",
                                           "stream",
                                           "string_decoder",
                                           "sys",
                                           "timers",
                                           "tls",
                                           "trace_events",
                                           "tty",
                                           "url",
                                           "util",
                                           "v8",
                                           "vm",
                                           "wasi",
                                           "worker_threads",
                                           "zlib"};
  return names;
}

// The source with comments blanked out (strings and template text kept), so
// that an import in a comment is not taken for one.
std::string without_comments(const std::string& text) {
  std::string out = text;
  char quote = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    char c = out[i];
    if (quote) {
      if (c == '\\')
        ++i;
      else if (c == quote)
        quote = 0;
      continue;
    }
    if (c == '"' || c == '\'' || c == '`') {
      quote = c;
    } else if (c == '/' && i + 1 < out.size() && out[i + 1] == '/') {
      while (i < out.size() && out[i] != '\n') out[i++] = ' ';
    } else if (c == '/' && i + 1 < out.size() && out[i + 1] == '*') {
      size_t end = out.find("*/", i + 2);
      end = end == std::string::npos ? out.size() : end + 2;
      for (; i < end; ++i)
        if (out[i] != '\n') out[i] = ' ';
      --i;
    }
  }
  return out;
}

// Every module specifier the source names: import/export ... from, bare
// import, import(), require().
std::vector<std::string> specifiers(const std::string& code) {
  static const std::regex patterns(
      R"((?:\bimport\s*(?:[\w$*{}\s,]+?\s*from\s*)?|\bexport\s*(?:\*(?:\s*as\s+[\w$]+)?|\{[^}]*\})\s*from\s*|\b(?:require|import)\s*\(\s*)["']([^"'\n]+)["'])");
  std::vector<std::string> found;
  for (auto it = std::sregex_iterator(code.begin(), code.end(), patterns); it != std::sregex_iterator(); ++it)
    found.push_back((*it)[1].str());
  return found;
}

std::string package_name(const std::string& specifier) {
  size_t slash = specifier.find('/');
  if (specifier.starts_with('@') && slash != std::string::npos) slash = specifier.find('/', slash + 1);
  return slash == std::string::npos ? specifier : specifier.substr(0, slash);
}

bool is_builtin(const std::string& specifier, const std::string& project_dir) {
  if (specifier.starts_with("node:")) return true;
  const std::string name = package_name(specifier);
  if (!node_builtins().count(name)) return false;
  // A pure-JS package of the same name (events, buffer, punycode...) installed
  // by the project is what gets bundled.
  std::error_code ec;
  return !fs::is_directory(fs::path(project_dir) / "node_modules" / name, ec);
}

// A refusal for an import, or empty.
std::string check_import(const std::string& specifier, const std::string& project_dir, const std::string& file) {
  if (is_builtin(specifier, project_dir))
    return file + ": cannot import \"" + specifier + "\": Node built-ins are not available to functions";
  if (specifier.starts_with('.')) return {};
  if (specifier.starts_with('/'))
    return file + ": cannot import \"" + specifier +
           "\": import packages from node_modules or files by a relative path";
  std::error_code ec;
  const std::string name = package_name(specifier);
  if (!fs::is_directory(fs::path(project_dir) / "node_modules" / name, ec))
    return file + ": package \"" + name + "\" not found in node_modules";
  return {};
}

struct process_output {
  int exit_code = -1;
  std::string out, err;
};

// Runs argv in `dir` with `input` on stdin; reads stdout and stderr fully.
result<process_output> run(const std::vector<std::string>& args, const std::string& dir, const std::string& input) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC))
    return fail(std::string("pipe: ") + std::strerror(errno));
  std::vector<char*> argv;
  std::vector<std::string> copy = args;
  for (auto& arg : copy) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return fail(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    if (::chdir(dir.c_str()) != 0) ::_exit(126);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  process_output result;
  size_t written = 0;
  int stdin_fd = in[1];
  if (input.empty()) {
    ::close(stdin_fd);
    stdin_fd = -1;
  }
  bool out_open = true, err_open = true;
  char buffer[65536];
  while (out_open || err_open || stdin_fd >= 0) {
    pollfd fds[3] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}, {stdin_fd, POLLOUT, 0}};
    if (::poll(fds, 3, -1) < 0 && errno != EINTR) break;
    if (fds[0].revents) {
      ssize_t n = ::read(out[0], buffer, sizeof buffer);
      if (n > 0)
        result.out.append(buffer, static_cast<size_t>(n));
      else if (n == 0 || errno != EINTR)
        out_open = false;
    }
    if (fds[1].revents) {
      ssize_t n = ::read(err[0], buffer, sizeof buffer);
      if (n > 0)
        result.err.append(buffer, static_cast<size_t>(n));
      else if (n == 0 || errno != EINTR)
        err_open = false;
    }
    if (stdin_fd >= 0 && fds[2].revents) {
      ssize_t n = ::write(stdin_fd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if ((n < 0 && errno != EINTR && errno != EAGAIN) || written == input.size()) {
        ::close(stdin_fd);
        stdin_fd = -1;
      }
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// esbuild's first error, as "text (at file:line)".
std::string first_error(const std::string& err, const std::string& project_dir, const std::string& file) {
  static const std::regex resolve(R"(Could not resolve \"([^\"]+)\")");
  std::smatch match;
  if (std::regex_search(err, match, resolve)) {
    std::string specifier = match[1].str();
    if (is_builtin(specifier, project_dir))
      return file + ": cannot import \"" + specifier +
             "\" (inside a package): Node built-ins are not available to functions";
    return file + ": cannot resolve \"" + specifier + "\" (inside a package or a relative import)";
  }
  size_t at = err.find("[ERROR]");
  std::string text = at == std::string::npos ? err : err.substr(at + 8);
  size_t end = text.find("\n\n");
  if (end != std::string::npos) text.resize(end);
  return file + ": bundling failed: " + text;
}

}  // namespace

result<bundle> bundle_js(const std::string& project_dir, const std::string& function_file, const std::string& source) {
  if (source.find("import") == std::string::npos && source.find("require(") == std::string::npos)
    return bundle{source, false};
  const std::string code = without_comments(source);
  const std::vector<std::string> imports = specifiers(code);
  if (imports.empty()) return bundle{source, false};
  for (const std::string& specifier : imports)
    if (std::string refusal = check_import(specifier, project_dir, function_file); !refusal.empty())
      return fail(refusal);

  // The seed's form (a global `function entrypoint`) with require(): export
  // it so that it survives bundling into a module.
  std::string input = source;
  static const std::regex has_export(R"(\bexport\b)");
  static const std::regex has_entrypoint(R"(\bfunction\s+entrypoint\s*\()");
  if (!std::regex_search(code, has_export) && std::regex_search(code, has_entrypoint))
    input += "\nexport default entrypoint;\n";

  std::error_code ec;
  fs::path dir = (fs::path(project_dir) / function_file).parent_path();
  if (!fs::is_directory(dir, ec)) dir = project_dir;
  auto ran = run({"esbuild", "--bundle", "--format=esm", "--platform=neutral", "--main-fields=main,module",
                  "--log-level=error", "--color=false", "--sourcefile=" + function_file},
                 dir.string(), input);
  if (!ran) return fail(function_file + ": cannot run esbuild: " + ran.error());
  if (ran->exit_code == 127)
    return fail(function_file + ": cannot bundle imports: esbuild is not installed (Debian package esbuild)");
  if (ran->exit_code != 0) return fail(first_error(ran->err, project_dir, function_file));
  return bundle{std::move(ran->out), true};
}

}  // namespace flowstate::sandbox

namespace flowstate::sandbox {

result<std::string> bundle_driver(const std::string& project_dir, const std::string& package,
                                  const std::string& driver_file) {
  std::error_code ec;
  if (!fs::is_regular_file(fs::path(project_dir) / "node_modules" / package / "package.json", ec))
    return fail(driver_file + ": package \"" + package + "\" not found in node_modules (run npm install " + package +
                " in the project, and commit package.json and package-lock.json)");
  auto ran = run({"esbuild", "--bundle", "--format=cjs", "--platform=node", "--target=node18", "--log-level=error",
                  "--color=false", "--sourcefile=" + driver_file},
                 project_dir, "module.exports = require(" + std::string("\"") + package + "\");\n");
  if (!ran) return fail(driver_file + ": cannot run esbuild: " + ran.error());
  if (ran->exit_code == 127)
    return fail(driver_file + ": cannot bundle " + package + ": esbuild is not installed (Debian package esbuild)");
  if (ran->exit_code != 0) {
    auto err = ran->err.substr(0, ran->err.find('\n', ran->err.find('\n') + 1));
    return fail(driver_file + ": bundling " + package + " failed: " + err);
  }
  return std::move(ran->out);
}

}  // namespace flowstate::sandbox
