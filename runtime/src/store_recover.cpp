// `flowstate recover`: a store whose write-ahead log is damaged, made usable
// again by dropping the damaged record and everything after it, after
// saying so and keeping a copy of what is dropped.
#include <chrono>
#include <ctime>
#include <filesystem>

#include "flowstate/runtime/store.hpp"
#include "flowstate/runtime/wal_check.hpp"

namespace flowstate {

namespace {

namespace fs = std::filesystem;

std::string utc_stamp() {
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace

result<recovery_report> recover_store(const std::string& path, bool dry_run) {
  recovery_report report;
  auto wal = check_wal(path);
  if (!wal) return fail(wal.error());
  if (!wal->damage) {
    report.summary = path + ": the write-ahead log is intact (" + std::to_string(wal->files.size()) + " file(s), " +
                     std::to_string(wal->batches) + " write batches); nothing to recover";
    if (wal->torn_tail)
      report.summary += " (it ends in an incomplete record at byte " + std::to_string(wal->torn_tail->offset) + " of " +
                        wal->torn_tail->file + ", the unsynced tail of a crash, which a start drops)";
    return report;
  }
  const auto& damage = *wal->damage;
  report.summary = describe(damage);
  if (dry_run) return report;

  // Keep the damaged file and the later ones: what is dropped stays readable.
  std::error_code ec;
  report.kept_copy = fs::path(path).lexically_normal().string();
  while (!report.kept_copy.empty() && report.kept_copy.back() == '/') report.kept_copy.pop_back();
  report.kept_copy += ".damaged-" + utc_stamp();
  fs::create_directories(report.kept_copy, ec);
  if (ec) return fail(report.kept_copy + ": cannot create the directory for the damaged files: " + ec.message());
  bool from_damage = false;
  for (const auto& file : wal->files) {
    from_damage = from_damage || file == damage.file;
    if (!from_damage) continue;
    fs::copy_file(file, fs::path(report.kept_copy) / fs::path(file).filename(), ec);
    if (ec) return fail(file + ": cannot copy it to " + report.kept_copy + ": " + ec.message());
  }

  store_options options;
  options.path = path;
  options.drop_wal_after_damage = true;
  auto opened = store::open(options);
  if (!opened) return fail("recovery: " + opened.error());
  (*opened)->close();
  auto after = check_wal(path);
  if (!after) return fail(after.error());
  if (after->damage) return fail("recovery did not remove the damage: " + describe(*after->damage));
  report.recovered = true;
  return report;
}

}  // namespace flowstate
