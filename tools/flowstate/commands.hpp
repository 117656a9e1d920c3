#pragma once
// Each command group registers its subcommands on the CLI11 app; main.cpp
// calls every register function once (explicitly, no static registration).
namespace CLI {
class App;
}

namespace flowstate::cli {

void register_init_command(CLI::App& app);
void register_serve_command(CLI::App& app);
void register_deploy_command(CLI::App& app);
void register_invoke_command(CLI::App& app);
void register_test_command(CLI::App& app);
void register_state_commands(CLI::App& app);
void register_errors_commands(CLI::App& app);
void register_logs_command(CLI::App& app);
void register_schema_commands(CLI::App& app);
void register_error_actions(CLI::App& app);
void register_schema_registry_commands(CLI::App& app);
void register_recover_command(CLI::App& app);
void register_secret_commands(CLI::App& app);
void register_cluster_commands(CLI::App& app);
void register_cluster_up_command(CLI::App& cluster);
void register_manager_commands(CLI::App& app);
void register_login_command(CLI::App& app);

}  // namespace flowstate::cli
