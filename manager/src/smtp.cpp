// SMTP (RFC 5321) to a relay, blocking, each step bounded: the control
// plane sends few messages (invitations), off the data path.
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <istream>

#include "mailer.hpp"

namespace flowstate::manager {
namespace {

using tcp = boost::asio::ip::tcp;

// The reply to what was sent last: its code, and its text (for errors).
result<std::pair<int, std::string>> reply(tcp::socket& s, boost::asio::streambuf& in) {
  std::string all;
  for (;;) {
    boost::system::error_code ec;
    boost::asio::read_until(s, in, "\r\n", ec);
    if (ec) return fail("the SMTP server did not answer: " + ec.message());
    std::istream lines(&in);
    std::string line;
    std::getline(lines, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    all += (all.empty() ? "" : " | ") + line;
    if (line.size() < 3) return fail("not an SMTP reply: " + line);
    if (line.size() == 3 || line[3] != '-') return std::make_pair(std::atoi(line.substr(0, 3).c_str()), all);
  }
}

}  // namespace

status smtp_send(const std::string& server, const std::string& from, const std::string& to,
                 const std::string& message) {
  const auto colon = server.rfind(':');
  if (colon == std::string::npos) return fail("--smtp: expected HOST:PORT, found \"" + server + "\"");
  boost::asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  tcp::resolver resolver(io);
  auto at = resolver.resolve(server.substr(0, colon), server.substr(colon + 1), ec);
  if (ec) return fail("cannot resolve the SMTP server " + server + ": " + ec.message());
  boost::asio::connect(s, at, ec);
  if (ec) return fail("cannot connect to the SMTP server " + server + ": " + ec.message());
  timeval ten{10, 0};  // every read and write of a step
  setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &ten, sizeof ten);
  setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &ten, sizeof ten);
  boost::asio::streambuf in;
  auto step = [&](const std::string& line, int want, int also = 0) -> status {
    if (!line.empty()) {
      boost::asio::write(s, boost::asio::buffer(line), ec);
      if (ec) return fail("cannot write to the SMTP server: " + ec.message());
    }
    auto r = reply(s, in);
    if (!r) return fail(r.error());
    if (r->first != want && r->first != also)
      return fail("the SMTP server answered \"" + r->second + "\" to " +
                  (line.empty() ? std::string("the connection") : line.substr(0, line.find(' '))));
    return status::success();
  };
  // Dot-stuffing: a line starting with "." gets another.
  std::string data;
  std::size_t begin = 0;
  while (begin < message.size()) {
    auto end = message.find("\r\n", begin);
    if (end == std::string::npos) end = message.size();
    if (message[begin] == '.') data += '.';
    data.append(message, begin, end - begin).append("\r\n");
    begin = end + 2;
  }
  const std::pair<std::string, int> steps[] = {{"", 220},
                                               {"EHLO flowstate\r\n", 250},
                                               {"MAIL FROM:<" + from + ">\r\n", 250},
                                               {"RCPT TO:<" + to + ">\r\n", 250},
                                               {"DATA\r\n", 354},
                                               {data + ".\r\n", 250},
                                               {"QUIT\r\n", 221}};
  for (auto& [line, want] : steps)  // one after the other, stopping at the first refusal
    if (auto st = step(line, want, want == 250 ? 251 : 0); !st) return st;
  return status::success();
}

}  // namespace flowstate::manager
