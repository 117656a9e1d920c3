#pragma once
// The console.log / print lines of one call, capped as both workers cap
// them: each line to `max_line_bytes` (cut on a UTF-8 boundary, marked with
// "…"), all of them together to `max_bytes`; the lines beyond are counted
// and reported in one last line. Header-only: the worker binaries use it.
#include <cstddef>
#include <optional>
#include <string>

namespace flowstate::sandbox {

class log_cap {
 public:
  log_cap(size_t max_bytes, size_t max_line_bytes) : max_bytes_(max_bytes), max_line_bytes_(max_line_bytes) {}

  // For the next call.
  void reset() { bytes_ = dropped_ = 0; }

  // The line as it is kept, or nullopt when it is over the budget (counted).
  std::optional<std::string> admit(std::string line) {
    if (line.size() > max_line_bytes_) {
      size_t cut = max_line_bytes_;
      while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
      line.resize(cut);
      line += "…";
    }
    if (bytes_ + line.size() > max_bytes_) {
      ++dropped_;
      return std::nullopt;
    }
    bytes_ += line.size();
    return line;
  }

  // "... N more lines dropped (log limit B bytes)", or "" when none was.
  std::string dropped_note() const {
    if (dropped_ == 0) return "";
    return "... " + std::to_string(dropped_) + " more lines dropped (log limit " + std::to_string(max_bytes_) +
           " bytes)";
  }

 private:
  size_t max_bytes_, max_line_bytes_;
  size_t bytes_ = 0, dropped_ = 0;
};

}  // namespace flowstate::sandbox
