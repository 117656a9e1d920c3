#include "invoicer.hpp"

#include <chrono>
#include <cstdio>
#include <string>

#include "billing.hpp"
#include "flowstate/runtime/iso_time.hpp"
#include "flowstate/runtime/thread_name.hpp"
#include "pg.hpp"
#include "routes.hpp"

namespace flowstate::manager {

std::string previous_month(const std::string& month) {
  int year = std::stoi(month.substr(0, 4)), mon = std::stoi(month.substr(5, 2)) - 1;
  if (mon == 0) {
    mon = 12;
    --year;
  }
  char out[32];
  std::snprintf(out, sizeof out, "%04d-%02d", year, mon);
  return out;
}

invoicer::invoicer(services& s, pool& db, unsigned every_s) : s_(s), db_(db), every_s_(every_s) {
  thread_ = std::thread([this] {
    name_this_thread("fs-invoicer");
    std::unique_lock lock(mu_);
    while (!stopping_) {
      lock.unlock();
      run_once();
      lock.lock();
      wake_.wait_for(lock, std::chrono::seconds(every_s_), [&] { return stopping_; });
    }
  });
}

invoicer::~invoicer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void invoicer::run_once() {
  auto c = db_.take();
  if (!c) return (void)std::fprintf(stderr, "flowstate manager: invoicing: %s\n", c.error().c_str());
  auto paid = (*c)->exec("SELECT paid_enabled FROM billing");
  if (!paid || paid->empty() || paid->at(0, 0) != "t") return;  // nothing is billed while paid plans are off
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count();
  const auto month = previous_month(utc_month(now_ms));
  auto run = invoice_month(s_, **c, month);
  if (!run)
    std::fprintf(stderr, "flowstate manager: invoicing %s: %s\n", month.c_str(), run.error().c_str());
  else if (run->made || run->charged || !run->problems.empty())
    std::fprintf(stderr, "flowstate manager: invoiced %s: %d made, %d charged%s%s\n", month.c_str(), run->made,
                 run->charged, run->problems.empty() ? "" : "; not charged: ", run->problems.c_str());
}

}  // namespace flowstate::manager
