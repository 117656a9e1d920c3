// Prints the admin API's OpenAPI description, for the validator in
// tools/openapi-check (CTest openapi_description).
#include <cstdio>

#include "flowstate/ui_server/admin_api.hpp"

int main() {
  const auto& doc = flowstate::admin::openapi_json();
  std::fwrite(doc.data(), 1, doc.size(), stdout);
  return std::fclose(stdout) == 0 ? 0 : 1;
}
