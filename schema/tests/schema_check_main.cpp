// flowstate-schema-check: `schema check` on its own, so schema/ can be
// tested before the flowstate binary links every command group.
#include <CLI/CLI.hpp>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"flowstate schema commands"};
  app.require_subcommand(1);
  flowstate::cli::register_schema_commands(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
