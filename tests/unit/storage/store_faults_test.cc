// SPDX-License-Identifier: Apache-2.0
// Bad input and faults: a directory in use, missing or not a directory, corrupt files and
// records, a newer format, and a disk that fails writes. Each gives a clear status, never a
// crash, never a half-applied batch.
#include <filesystem>
#include <fstream>
#include <string>

#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/unit/storage/store_test_util.h"

namespace mqtt::storage {
namespace {

using testing_util::Entry;
using testing_util::Msg;
using testing_util::RawPut;
using testing_util::Session;
using testing_util::StorageTest;
using testing_util::TempDir;

bool Mentions(const absl::Status& s, std::string_view text) {
  return std::string(s.message()).find(text) != std::string::npos;
}

void WriteFile(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

TEST_F(StorageTest, SecondOpenOfAnOpenDirectoryIsRefusedNamingThePath) {
  absl::StatusOr<std::unique_ptr<Store>> second = Store::Open(Options());
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(second.status())) << second.status();
  EXPECT_TRUE(Mentions(second.status(), db_path_)) << second.status();
  EXPECT_TRUE(Mentions(second.status(), "in use")) << second.status();
  // The first store is unaffected.
  Batch batch;
  batch.PutSession(Session("c"));
  MustWrite(batch);
}

TEST(StorageOpenTest, MissingDirectoryWithoutCreateIsNotFound) {
  TempDir dir;
  StoreOptions options;
  options.path = dir.path() + "/absent";
  options.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  EXPECT_TRUE(absl::IsNotFound(store.status())) << store.status();
  EXPECT_TRUE(Mentions(store.status(), options.path));
  EXPECT_FALSE(std::filesystem::exists(options.path));
}

TEST(StorageOpenTest, EmptyDirectoryWithoutCreateIsRefused) {
  TempDir dir;
  StoreOptions options;
  options.path = dir.path();
  options.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  EXPECT_TRUE(absl::IsNotFound(store.status())) << store.status();
  EXPECT_TRUE(Mentions(store.status(), options.path)) << store.status();
}

TEST(StorageOpenTest, FileInPlaceOfTheDirectoryIsRefused) {
  TempDir dir;
  StoreOptions options;
  options.path = dir.path() + "/file";
  WriteFile(options.path, "not a database");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  EXPECT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_TRUE(Mentions(store.status(), "not a directory"));
}

TEST(StorageOpenTest, FileInPlaceOfAParentDirectoryIsRefused) {
  TempDir dir;
  WriteFile(dir.path() + "/file", "x");
  StoreOptions options;
  options.path = dir.path() + "/file/data";
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(options);
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(Mentions(store.status(), options.path)) << store.status();
}

TEST_F(StorageTest, GarbageCurrentFileIsReportedAsCorruptAndNotRepaired) {
  Close();
  WriteFile(db_path_ + "/CURRENT", "\x01garbage");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(Options());
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(absl::IsDataLoss(store.status())) << store.status();
  EXPECT_TRUE(Mentions(store.status(), db_path_));
  EXPECT_TRUE(Mentions(store.status(), "not repaired"));
  std::ifstream in(db_path_ + "/CURRENT");
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "\x01garbage");  // left as found
}

TEST_F(StorageTest, CurrentNamingAMissingManifestIsDataLoss) {
  Close();
  WriteFile(db_path_ + "/CURRENT", "MANIFEST-999999\n");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(Options());
  EXPECT_TRUE(absl::IsDataLoss(store.status())) << store.status();
  EXPECT_TRUE(Mentions(store.status(), db_path_)) << store.status();
}

TEST_F(StorageTest, CorruptSessionRecordIsDataLossNamingTheColumnFamily) {
  Close();
  RawPut(db_path_, "sessions", "c", "\xff\xff\xff");
  Reopen();
  EXPECT_TRUE(absl::IsDataLoss(store_->GetSession("c").status()));
  absl::Status s = store_->LoadSessions([](const SessionState&) { return absl::OkStatus(); });
  EXPECT_TRUE(absl::IsDataLoss(s)) << s;
  EXPECT_TRUE(Mentions(s, "sessions")) << s;
}

TEST_F(StorageTest, CorruptQueueRecordStopsOpen) {
  Close();
  RawPut(db_path_, "queues", std::string("c\0\0\0\0\0\0\0\0\x01", 10), "\xff\xff\xff");
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(Options());
  EXPECT_TRUE(absl::IsDataLoss(store.status())) << store.status();
  EXPECT_TRUE(Mentions(store.status(), "queues")) << store.status();
}

TEST_F(StorageTest, NewerFormatVersionIsRefused) {
  Close();
  NodeMeta meta;
  meta.set_format_version(Store::kFormatVersion + 1);
  RawPut(db_path_, "meta", "node", meta.SerializeAsString());
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(Options());
  EXPECT_TRUE(absl::IsFailedPrecondition(store.status())) << store.status();
  EXPECT_TRUE(Mentions(store.status(), "format version")) << store.status();
}

class StorageFaultTest : public StorageTest {
 protected:
  StoreOptions FaultyOptions() const {
    StoreOptions options = Options();
    options.faults = faults_;
    return options;
  }
  void SetUp() override {
    StorageTest::SetUp();
    Close();
    auto store = Store::Open(FaultyOptions());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  std::shared_ptr<StorageFaults> faults_ = std::make_shared<StorageFaults>();
};

TEST_F(StorageFaultTest, FailedWriteReturnsAnErrorLeavesNothingAndRefusesLaterWrites) {
  Batch batch;
  batch.PutSession(Session("before"));
  batch.PutMessage(1, Msg("t"));
  batch.AddQueueEntry("before", 1, Entry(1));
  MustWrite(batch);

  faults_->FailWrites();
  batch.PutSession(Session("during"));
  batch.PutMessage(2, Msg("t2"));
  batch.AddQueueEntry("during", 1, Entry(2));
  batch.RemoveQueueEntry("before", 1);
  batch.PutRetained("r", Msg("r"));
  absl::Status s = store_->Write(std::move(batch));
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_TRUE(Mentions(s, "write batch")) << s;
  EXPECT_GT(faults_->injected(), 0u);
  // Nothing of the failed batch is visible, in RocksDB or in the counts.
  EXPECT_TRUE(absl::IsNotFound(store_->GetSession("during").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(2).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetRetained("r").status()));
  EXPECT_EQ(store_->queue_stats("before").count, 1u);
  EXPECT_EQ(store_->MessageRefsForTesting(1), 1u);
  EXPECT_EQ(store_->MessageRefsForTesting(2), 0u);
  EXPECT_EQ(store_->write_error(), s);
  // The disk recovers, the store still refuses new state; reads work.
  faults_->Clear();
  batch.PutSession(Session("after"));
  EXPECT_FALSE(store_->Write(std::move(batch)).ok());
  EXPECT_TRUE(store_->GetSession("before").ok());
  EXPECT_EQ(ReadAll("before").size(), 1u);
  // A restart brings back exactly the acknowledged state.
  Reopen();
  EXPECT_TRUE(store_->GetSession("before").ok());
  EXPECT_TRUE(absl::IsNotFound(store_->GetSession("during").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetSession("after").status()));
  EXPECT_EQ(ReadAll("before").size(), 1u);
  EXPECT_TRUE(ReadAll("during").empty());
  batch.PutSession(Session("after"));
  MustWrite(batch);
}

TEST_F(StorageFaultTest, FailedMessageIdBlockIsReported) {
  faults_->FailWrites();
  // The first id needs a new block of ids, which must be persisted first.
  absl::StatusOr<uint64_t> id = store_->NewMessageId();
  EXPECT_FALSE(id.ok());
}

TEST_F(StorageFaultTest, DiskFailingAtOpenGivesAnError) {
  Close();
  faults_->FailWrites();
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(FaultyOptions());
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(Mentions(store.status(), db_path_)) << store.status();
  faults_->Clear();
  Reopen();
}

}  // namespace
}  // namespace mqtt::storage
