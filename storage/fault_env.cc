// SPDX-License-Identifier: Apache-2.0
#include "storage/fault_env.h"

#include <string>
#include <utility>

#include "rocksdb/file_system.h"

namespace mqtt::storage {
namespace {

using rocksdb::DataVerificationInfo;
using rocksdb::FileOptions;
using rocksdb::FSWritableFile;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;
using rocksdb::Slice;

IOStatus Injected() { return IOStatus::NoSpace("injected fault: no space left on device"); }

class FaultyFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultyFile(std::unique_ptr<FSWritableFile> file, std::shared_ptr<StorageFaults> faults)
      : FSWritableFileOwnerWrapper(std::move(file)), faults_(std::move(faults)) {}

  IOStatus Append(const Slice& data, const IOOptions& o, IODebugContext* d) override {
    if (faults_->ShouldFail()) return Injected();
    return FSWritableFileOwnerWrapper::Append(data, o, d);
  }
  IOStatus Append(const Slice& data, const IOOptions& o, const DataVerificationInfo& v,
                  IODebugContext* d) override {
    if (faults_->ShouldFail()) return Injected();
    return FSWritableFileOwnerWrapper::Append(data, o, v, d);
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            IODebugContext* d) override {
    if (faults_->ShouldFail()) return Injected();
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, o, d);
  }
  IOStatus PositionedAppend(const Slice& data, uint64_t offset, const IOOptions& o,
                            const DataVerificationInfo& v, IODebugContext* d) override {
    if (faults_->ShouldFail()) return Injected();
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, o, v, d);
  }
  IOStatus Sync(const IOOptions& o, IODebugContext* d) override {
    if (faults_->ShouldFail()) return Injected();
    return FSWritableFileOwnerWrapper::Sync(o, d);
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* d) override {
    if (faults_->ShouldFail()) return Injected();
    return FSWritableFileOwnerWrapper::Fsync(o, d);
  }

 private:
  std::shared_ptr<StorageFaults> faults_;
};

class FaultyFileSystem : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultyFileSystem(std::shared_ptr<StorageFaults> faults)
      : FileSystemWrapper(rocksdb::FileSystem::Default()), faults_(std::move(faults)) {}

  const char* Name() const override { return "MqttFaultyFileSystem"; }

  IOStatus NewWritableFile(const std::string& name, const FileOptions& options,
                           std::unique_ptr<FSWritableFile>* result, IODebugContext* dbg) override {
    IOStatus s = FileSystemWrapper::NewWritableFile(name, options, result, dbg);
    if (s.ok()) *result = std::make_unique<FaultyFile>(std::move(*result), faults_);
    return s;
  }

  IOStatus ReopenWritableFile(const std::string& name, const FileOptions& options,
                              std::unique_ptr<FSWritableFile>* result,
                              IODebugContext* dbg) override {
    IOStatus s = FileSystemWrapper::ReopenWritableFile(name, options, result, dbg);
    if (s.ok()) *result = std::make_unique<FaultyFile>(std::move(*result), faults_);
    return s;
  }

  IOStatus ReuseWritableFile(const std::string& name, const std::string& old_name,
                             const FileOptions& options, std::unique_ptr<FSWritableFile>* result,
                             IODebugContext* dbg) override {
    IOStatus s = FileSystemWrapper::ReuseWritableFile(name, old_name, options, result, dbg);
    if (s.ok()) *result = std::make_unique<FaultyFile>(std::move(*result), faults_);
    return s;
  }

 private:
  std::shared_ptr<StorageFaults> faults_;
};

}  // namespace

std::unique_ptr<rocksdb::Env> NewFaultInjectionEnv(std::shared_ptr<StorageFaults> faults) {
  return rocksdb::NewCompositeEnv(std::make_shared<FaultyFileSystem>(std::move(faults)));
}

}  // namespace mqtt::storage
