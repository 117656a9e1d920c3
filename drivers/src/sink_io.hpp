#pragma once
// The sinks' I/O thread (sink.hpp), as the drivers' sources see it.
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <thread>

#include "flowstate/drivers/sink.hpp"

namespace flowstate::drivers::sinks {

struct io_thread::impl {
  boost::asio::io_context ioc{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work = boost::asio::make_work_guard(ioc);
  // TLS to outside targets: the system's trusted roots, peers verified.
  boost::asio::ssl::context tls{boost::asio::ssl::context::tls_client};
  std::thread thread;
  // The HTTP client's idle keep-alive connections (http_client.cpp), used
  // on this thread only.
  std::shared_ptr<void> http_pool;
};

}  // namespace flowstate::drivers::sinks
