#pragma once
// The console (manager/web): its page and script, built into the binary.
namespace flowstate::manager {

const char* console_page_html();
const char* console_script_js();

}  // namespace flowstate::manager
