#pragma once
// Files a node keeps in its data directory that the local CLI reads:
// admin.token (0600), admin.addr and listen.addr (the bound addresses).
#include <optional>
#include <string>

namespace flowstate::cli {

// --data, else $FLOWSTATE_DATA, else ~/.local/share/flowstate.
std::string default_data_dir();
std::string read_or_create_token(const std::string& data_dir);
std::optional<std::string> read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);
// The directory of the running executable (to find flowstate-worker).
std::string executable_dir();

}  // namespace flowstate::cli
