#include <CLI/CLI.hpp>
#include <iostream>
#include <string>

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
  try {
    app.parse(argc, argv);
  } catch (const CLI::RequiredError& e) {
    // `flowstate bogus` or `flowstate state bogus`: CLI11 says only "A
    // subcommand is required"; name the word and the commands there are.
    CLI::App* at = &app;
    while (!at->get_subcommands().empty()) at = at->get_subcommands().front();
    const auto extra = at->remaining();
    const auto commands = at->get_subcommands([](CLI::App*) { return true; });
    if (extra.empty() || commands.empty()) return app.exit(e);
    std::string names;
    for (const auto* c : commands) names += (names.empty() ? "" : ", ") + c->get_name();
    std::cerr << "flowstate: unknown command \"" << extra.front() << "\""
              << (at == &app ? std::string() : " after \"" + at->get_name() + "\"") << "; the commands are: " << names
              << "\nRun with --help for more information.\n";
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}
