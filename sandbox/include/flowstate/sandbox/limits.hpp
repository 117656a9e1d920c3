#pragma once
// The limits a worker enforces on user code, asked of one object (as
// workerd's IsolateLimitEnforcer): the operator's plan is the ceiling and a
// project's flowstate.yaml may only lower it (docs/operations.md, docs/security.md).
// Header-only and free of engine types: the worker binaries parse it too.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace flowstate::sandbox {

struct limits {
  // CPU time of the thread running one call (CLOCK_THREAD_CPUTIME_ID): a busy
  // machine does not make a call time out, only its own computing does.
  uint32_t cpu_ms_per_call = 1000;
  // Wall-clock backstop for a call that waits instead of computing, or whose
  // CPU clock the worker cannot stop (code stuck inside C); 0: 2 x cpu.
  uint32_t wall_ms_per_call = 0;
  // Memory of the whole worker process: V8 heap limit, RLIMIT_AS for Python
  // (a backstop only), and the memory cgroup when one is available.
  uint32_t memory_mb = 256;
  uint32_t max_output_bytes = 4u << 20;  // all outputs of one call together
  uint32_t max_state_bytes = 1u << 20;   // the new state of one call
  uint32_t max_log_bytes = 64u << 10;    // print/console lines of one call

  // Every field 0 ("not set"): what a manifest or a flag list starts from.
  static limits unset() { return {0, 0, 0, 0, 0, 0}; }
  bool operator==(const limits&) const = default;

  uint32_t wall_ms() const { return wall_ms_per_call ? wall_ms_per_call : 2 * cpu_ms_per_call; }

  // `requested` (a project's manifest) lowered field by field to `plan`; a 0
  // in `requested` means "the plan's value".
  static limits within(const limits& plan, const limits& requested) {
    auto pick = [](uint32_t ceiling, uint32_t wanted) { return wanted == 0 ? ceiling : std::min(ceiling, wanted); };
    limits out;
    out.cpu_ms_per_call = pick(plan.cpu_ms_per_call, requested.cpu_ms_per_call);
    out.wall_ms_per_call = pick(plan.wall_ms(), requested.wall_ms_per_call);
    out.memory_mb = pick(plan.memory_mb, requested.memory_mb);
    out.max_output_bytes = pick(plan.max_output_bytes, requested.max_output_bytes);
    out.max_state_bytes = pick(plan.max_state_bytes, requested.max_state_bytes);
    out.max_log_bytes = pick(plan.max_log_bytes, requested.max_log_bytes);
    return out;
  }

  // The flags both workers read (worker_options::extra_args).
  std::vector<std::string> worker_args() const {
    return {
        "--cpu-ms",          std::to_string(cpu_ms_per_call), "--wall-ms",          std::to_string(wall_ms()),
        "--memory-mb",       std::to_string(memory_mb),       "--max-output-bytes", std::to_string(max_output_bytes),
        "--max-state-bytes", std::to_string(max_state_bytes), "--max-log-bytes",    std::to_string(max_log_bytes)};
  }

  // Reads one flag of worker_args() at argv[i] (advancing i); false
  // when argv[i] is not one of them.
  bool parse_flag(int argc, char** argv, int& i) {
    static const struct {
      const char* flag;
      uint32_t limits::*field;
    } flags[] = {{"--cpu-ms", &limits::cpu_ms_per_call},
                 {"--timeout-ms", &limits::cpu_ms_per_call},
                 {"--wall-ms", &limits::wall_ms_per_call},
                 {"--memory-mb", &limits::memory_mb},
                 {"--max-output-bytes", &limits::max_output_bytes},
                 {"--max-state-bytes", &limits::max_state_bytes},
                 {"--max-log-bytes", &limits::max_log_bytes}};
    for (const auto& f : flags) {
      if (std::string(argv[i]) != f.flag || i + 1 >= argc) continue;
      this->*f.field = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
      return true;
    }
    return false;
  }
};

}  // namespace flowstate::sandbox
