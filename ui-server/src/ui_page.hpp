#pragma once
// The web UI (ui-server/web/): its page and its script, generated into the
// build from web/index.html and the esbuild bundle of web/src/ (embed.cmake).
namespace flowstate::admin {

const char* ui_page_html();
const char* ui_script_js();
const char* ui_editor_js();  // the editor's bundle, loaded on first use

}  // namespace flowstate::admin
