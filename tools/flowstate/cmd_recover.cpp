// flowstate recover: makes a store usable again after its write-ahead log
// was damaged (a start refuses such a store and names the damage).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

#include "commands.hpp"
#include "flowstate/runtime/store.hpp"
#include "node_files.hpp"

namespace flowstate::cli {

void register_recover_command(CLI::App& app) {
  struct options {
    std::string data_dir;
    bool dry_run = false;
  };
  auto o = std::make_shared<options>();
  auto* cmd = app.add_subcommand(
      "recover",
      "Make a stopped node's store usable after damage to its write-ahead log: report what is dropped (the damaged "
      "record and everything after it), keep a copy of the damaged files, recover to the last intact record");
  cmd->add_option("--data", o->data_dir,
                  "Data directory of the node (default $FLOWSTATE_DATA or ~/.local/share/flowstate)");
  cmd->add_flag("--dry-run", o->dry_run, "Only report the damage and what recovery would drop");
  cmd->callback([o] {
    const auto data_dir = o->data_dir.empty() ? default_data_dir() : o->data_dir;
    const auto path = (std::filesystem::path(data_dir) / "store").string();
    if (!std::filesystem::is_directory(path)) {
      std::fprintf(stderr, "flowstate recover: %s: no store here (expected the data directory of a node)\n",
                   path.c_str());
      throw CLI::RuntimeError(1);
    }
    auto report = recover_store(path, o->dry_run);
    if (!report) {
      std::fprintf(stderr, "flowstate recover: %s\n", report.error().c_str());
      throw CLI::RuntimeError(1);
    }
    std::printf("%s\n", report->summary.c_str());
    if (report->recovered)
      std::printf("recovered: the store opens again; the damaged log files were copied to %s\n",
                  report->kept_copy.c_str());
    else if (o->dry_run && report->summary.find("nothing to recover") == std::string::npos)
      std::printf("dry run: nothing was changed; run without --dry-run to recover\n");
  });
}

}  // namespace flowstate::cli
