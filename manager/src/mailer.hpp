#pragma once
// Outgoing email (invitation links), RFC 5322 text. Two transports, either
// or both: SMTP to a relay (`--smtp HOST:PORT`: plain SMTP, no TLS or
// authentication; a local Postfix or the provider's relay does those), and
// files, each message written to DIR/TIME-N.eml (`--mail-dir`; what tests
// and a first deployment read, and a copy of what SMTP sent).
#include <atomic>
#include <string>

#include "flowstate/runtime/result.hpp"

namespace flowstate::manager {

class mailer {
 public:
  mailer(std::string dir, std::string smtp, std::string from)
      : dir_(std::move(dir)), smtp_(std::move(smtp)), from_(std::move(from)) {}
  status send(const std::string& to, const std::string& subject, const std::string& text);

 private:
  std::string dir_, smtp_, from_;
  std::atomic<unsigned> sent_{0};
  status write_file(const std::string& message);
};

// One message to `to` through the SMTP server at host:port (EHLO, MAIL,
// RCPT, DATA with dot-stuffing, QUIT), 10 s per step. smtp.cpp.
status smtp_send(const std::string& server, const std::string& from, const std::string& to, const std::string& message);

}  // namespace flowstate::manager
