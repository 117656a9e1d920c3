#include <CLI/CLI.hpp>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"flowstate: stateful functions, durable per key"};
  app.require_subcommand(1);
  flowstate::cli::register_init_command(app);
  flowstate::cli::register_serve_command(app);
  flowstate::cli::register_deploy_command(app);
  flowstate::cli::register_invoke_command(app);
  flowstate::cli::register_test_command(app);
  flowstate::cli::register_state_commands(app);
  flowstate::cli::register_errors_commands(app);
  flowstate::cli::register_logs_command(app);
  flowstate::cli::register_error_actions(app);
#if defined(FLOWSTATE_HAVE_SCHEMA_CLI)
  flowstate::cli::register_schema_commands(app);
#endif
  flowstate::cli::register_schema_registry_commands(app);
  flowstate::cli::register_recover_command(app);
  flowstate::cli::register_secret_commands(app);
  flowstate::cli::register_cluster_commands(app);
  flowstate::cli::register_manager_commands(app);
  flowstate::cli::register_login_command(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
