#pragma once
// The web UI page (ui_page.cpp).
namespace flowstate::admin {

const char* ui_page_html();

}  // namespace flowstate::admin
