#pragma once
// Outgoing email (invitation links). The file transport writes each
// message, RFC 5322 text, to DIR/TIME-N.eml: what tests and a first
// deployment read. SMTP is not built yet (docs/hosted.md).
#include <atomic>
#include <string>

#include "flowstate/runtime/result.hpp"

namespace flowstate::manager {

class mailer {
 public:
  explicit mailer(std::string dir) : dir_(std::move(dir)) {}
  status send(const std::string& to, const std::string& subject, const std::string& text);

 private:
  std::string dir_;
  std::atomic<unsigned> sent_{0};
};

}  // namespace flowstate::manager
