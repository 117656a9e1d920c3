// The store's file system in builds with fault injection: RocksDB's own file
// system, except that writes and fsyncs fail while a disk fault is armed
// (fault.hpp). Release builds open the store on the default Env.
#include "store_impl.hpp"

#if defined(FLOWSTATE_FAULT_INJECTION)
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include "flowstate/runtime/fault.hpp"

namespace flowstate {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

IOStatus write_fault() {
  if (disk_fault_armed(disk_fault::disk_full)) return IOStatus::NoSpace("injected fault", "no space left on device");
  return IOStatus::OK();
}

IOStatus sync_fault() {
  if (disk_fault_armed(disk_fault::sync_fails)) return IOStatus::IOError("injected fault", "fsync failed");
  return IOStatus::OK();
}

class faulty_file : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  using FSWritableFileOwnerWrapper::FSWritableFileOwnerWrapper;
  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = write_fault(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Append(data, o, dbg);
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const rocksdb::DataVerificationInfo& info,
                  IODebugContext* dbg) override {
    if (auto s = write_fault(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Append(data, o, info, dbg);
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = write_fault(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, o, dbg);
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
    if (auto s = write_fault(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, o, info, dbg);
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = sync_fault(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Sync(o, dbg);
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = sync_fault(); !s.ok()) return s;
    return FSWritableFileOwnerWrapper::Fsync(o, dbg);
  }
};

IOStatus read_fault() {
  if (disk_fault_armed(disk_fault::read_fails)) return IOStatus::IOError("injected fault", "read failed");
  return IOStatus::OK();
}

class faulty_table_file : public rocksdb::FSRandomAccessFileOwnerWrapper {
 public:
  using FSRandomAccessFileOwnerWrapper::FSRandomAccessFileOwnerWrapper;
  IOStatus Read(uint64_t offset, size_t n, const IOOptions& o, Slice* result, char* scratch,
                IODebugContext* dbg) const override {
    if (auto s = read_fault(); !s.ok()) return s;
    return FSRandomAccessFileOwnerWrapper::Read(offset, n, o, result, scratch, dbg);
  }
  IOStatus MultiRead(rocksdb::FSReadRequest* reqs, size_t num_reqs, const IOOptions& o, IODebugContext* dbg) override {
    if (auto s = read_fault(); !s.ok()) return s;
    return FSRandomAccessFileOwnerWrapper::MultiRead(reqs, num_reqs, o, dbg);
  }
};

class faulty_file_system : public rocksdb::FileSystemWrapper {
 public:
  using FileSystemWrapper::FileSystemWrapper;
  const char* Name() const override { return "flowstate.faulty"; }
  IOStatus NewRandomAccessFile(const std::string& f, const rocksdb::FileOptions& o,
                               std::unique_ptr<rocksdb::FSRandomAccessFile>* r, IODebugContext* dbg) override {
    auto s = target()->NewRandomAccessFile(f, o, r, dbg);
    if (s.ok()) *r = std::make_unique<faulty_table_file>(std::move(*r));
    return s;
  }
  IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                           std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) override {
    return wrap(target()->NewWritableFile(f, o, r, dbg), r);
  }
  IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                              std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) override {
    return wrap(target()->ReopenWritableFile(f, o, r, dbg), r);
  }
  IOStatus ReuseWritableFile(const std::string& f, const std::string& old, const rocksdb::FileOptions& o,
                             std::unique_ptr<rocksdb::FSWritableFile>* r, IODebugContext* dbg) override {
    return wrap(target()->ReuseWritableFile(f, old, o, r, dbg), r);
  }

 private:
  static IOStatus wrap(IOStatus s, std::unique_ptr<rocksdb::FSWritableFile>* r) {
    if (s.ok()) *r = std::make_unique<faulty_file>(std::move(*r));
    return s;
  }
};

}  // namespace

std::unique_ptr<rocksdb::Env> make_store_env() {
  return rocksdb::NewCompositeEnv(std::make_shared<faulty_file_system>(rocksdb::FileSystem::Default()));
}

}  // namespace flowstate
#else
namespace flowstate {
std::unique_ptr<rocksdb::Env> make_store_env() { return nullptr; }
}  // namespace flowstate
#endif
