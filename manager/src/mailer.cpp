#include "mailer.hpp"

#include <chrono>
#include <filesystem>
#include <fstream>

namespace flowstate::manager {

status mailer::send(const std::string& to, const std::string& subject, const std::string& text) {
  if (dir_.empty()) return fail("no mail transport: start the manager with --mail-dir DIR");
  if ((to + subject).find_first_of("\r\n") != std::string::npos)
    return fail("a line break in a mail's address or subject");  // no header of anyone's choosing
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const auto name = std::to_string(ms) + "-" + std::to_string(sent_++) + ".eml";
  const auto tmp = std::filesystem::path(dir_) / (name + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary);
    out << "To: " << to << "\r\nFrom: Flowstate <noreply@flowstate.invalid>\r\nSubject: " << subject
        << "\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        << text;
    if (!out) return fail("cannot write " + tmp.string());
  }
  std::filesystem::rename(tmp, std::filesystem::path(dir_) / name, ec);  // whole messages only
  if (ec) return fail("cannot write " + name + " in " + dir_ + ": " + ec.message());
  return status::success();
}

}  // namespace flowstate::manager
