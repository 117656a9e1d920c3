#pragma once
// Invoices made when a month ends (docs/hosted.md "Billing and payment"):
// a thread that, at start and then every `every_s` seconds, runs the
// previous month's invoices while paid plans are on (invoice_month makes
// and charges only what is missing, so a run after a restart, or by a
// second manager, changes nothing more).
#include <condition_variable>
#include <mutex>
#include <thread>

namespace flowstate::manager {

class pool;
struct services;

class invoicer {
 public:
  invoicer(services& s, pool& db, unsigned every_s);
  ~invoicer();
  invoicer(const invoicer&) = delete;
  invoicer& operator=(const invoicer&) = delete;

 private:
  void run_once();
  services& s_;
  pool& db_;
  unsigned every_s_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

// "2026-11" for "2026-12", "2025-12" for "2026-01".
std::string previous_month(const std::string& month);

}  // namespace flowstate::manager
