#include "mailer.hpp"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

namespace flowstate::manager {

status mailer::send(const std::string& to, const std::string& subject, const std::string& text) {
  if (dir_.empty() && smtp_.empty())
    return fail("no mail transport: start the manager with --smtp HOST:PORT or --mail-dir DIR");
  if ((to + subject).find_first_of("\r\n") != std::string::npos)
    return fail("a line break in a mail's address or subject");  // no header of anyone's choosing
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char date[64];
  std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &utc);
  std::string body;  // lines end in CRLF
  for (char c : text) {
    if (c == '\n' && (body.empty() || body.back() != '\r')) body += '\r';
    body += c;
  }
  const std::string message = "Date: " + std::string(date) + "\r\nTo: " + to + "\r\nFrom: Flowstate <" + from_ +
                              ">\r\nSubject: " + subject +
                              "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body;
  if (!smtp_.empty())
    if (auto st = smtp_send(smtp_, from_, to, message); !st) return fail("mail to " + to + ": " + st.error());
  return dir_.empty() ? status::success() : write_file(message);
}

status mailer::write_file(const std::string& message) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const auto name = std::to_string(ms) + "-" + std::to_string(sent_++) + ".eml";
  const auto tmp = std::filesystem::path(dir_) / (name + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary);
    out << message;
    if (!out) return fail("cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, std::filesystem::path(dir_) / name, ec);  // whole messages only
  if (ec) return fail("cannot write " + name + " in " + dir_ + ": " + ec.message());
  return status::success();
}

}  // namespace flowstate::manager
