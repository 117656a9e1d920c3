#pragma once
// A month's invoices (billing.cpp), for the operator's route and for the
// invoicer that runs them when a month ends (invoicer.cpp).
#include <string>

#include "flowstate/runtime/result.hpp"

namespace flowstate::manager {

class connection;
struct services;

struct invoice_run {
  int made = 0, charged = 0;
  std::string problems;  // charges the provider refused, "; "-separated (tried again at the next run)
};

// Makes `month`'s invoice of every team that used anything or pays a fee
// (once per team and month), then charges the open ones not yet at the
// provider while paid plans are on. Safe to run again: it makes and
// charges only what is missing.
result<invoice_run> invoice_month(services& s, connection& db, const std::string& month);

}  // namespace flowstate::manager
