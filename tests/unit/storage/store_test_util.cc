// SPDX-License-Identifier: Apache-2.0
#include "tests/unit/storage/store_test_util.h"

#include <stdlib.h>

#include <filesystem>
#include <limits>

#include "rocksdb/db.h"

namespace mqtt::storage::testing_util {
namespace {

// Opens the database at `path` with all its column families and returns the handle of `name`.
struct RawDb {
  RawDb(const std::string& path, std::string_view name, bool read_only) {
    std::vector<std::string> names;
    EXPECT_TRUE(rocksdb::DB::ListColumnFamilies({}, path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
    for (const std::string& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = read_only ? rocksdb::DB::OpenForReadOnly({}, path, cfs, &handles, &raw)
                                  : rocksdb::DB::Open({}, path, cfs, &handles, &raw);
    EXPECT_TRUE(s.ok()) << s.ToString();
    db.reset(raw);
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == name) cf = handles[i];
    }
    EXPECT_NE(cf, nullptr) << "no column family " << name;
  }
  ~RawDb() {
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  }
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* cf = nullptr;
};

}  // namespace

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string templ = std::string(base != nullptr ? base : "/tmp") + "/mqtt-storage-XXXXXX";
  char* made = mkdtemp(templ.data());
  EXPECT_NE(made, nullptr);
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

MessageRecord Msg(std::string_view topic, std::string_view payload, uint64_t expires_at_unix_ms) {
  MessageRecord m;
  m.set_topic(std::string(topic));
  m.set_payload(std::string(payload));
  m.set_qos(1);
  m.set_expires_at_unix_ms(expires_at_unix_ms);
  return m;
}

SessionRecord Session(std::string_view client_id) {
  SessionRecord s;
  s.set_client_id(std::string(client_id));
  s.set_protocol_version(v1::PROTOCOL_VERSION_MQTT_5);
  s.set_session_expiry_interval_seconds(3600);
  return s;
}

QueueEntry Entry(uint64_t message_id, uint32_t qos) {
  QueueEntry e;
  e.set_message_id(message_id);
  e.set_qos(qos);
  return e;
}

InflightRecord Inflight(uint16_t packet_id, InflightRecord::Stage stage, uint64_t message_id) {
  InflightRecord r;
  r.set_packet_id(packet_id);
  r.set_stage(stage);
  r.set_message_id(message_id);
  r.set_qos(stage == InflightRecord::STAGE_AWAIT_PUBACK ? 1 : 2);
  return r;
}

size_t CountKeys(const std::string& path, std::string_view column_family) {
  RawDb raw(path, column_family, /*read_only=*/true);
  if (raw.cf == nullptr) return std::numeric_limits<size_t>::max();
  std::unique_ptr<rocksdb::Iterator> it(raw.db->NewIterator({}, raw.cf));
  size_t n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  return n;
}

void RawPut(const std::string& path, std::string_view column_family, std::string_view key,
            std::string_view value) {
  RawDb raw(path, column_family, /*read_only=*/false);
  ASSERT_NE(raw.cf, nullptr);
  rocksdb::Status s = raw.db->Put({}, raw.cf, rocksdb::Slice(key.data(), key.size()),
                                  rocksdb::Slice(value.data(), value.size()));
  ASSERT_TRUE(s.ok()) << s.ToString();
}

void StorageTest::SetUp() {
  db_path_ = dir_.path() + "/data";
  Reopen();
}

StoreOptions StorageTest::Options() const {
  StoreOptions options;
  options.path = db_path_;
  return options;
}

void StorageTest::Reopen() {
  store_.reset();
  absl::StatusOr<std::unique_ptr<Store>> store = Store::Open(Options());
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
}

void StorageTest::MustWrite(Batch& batch) {
  absl::Status s = store_->Write(std::move(batch));
  ASSERT_TRUE(s.ok()) << s;
}

std::vector<QueuedMessage> StorageTest::ReadAll(std::string_view client_id, uint64_t now_unix_ms) {
  absl::StatusOr<QueuePage> page = store_->ReadQueue(client_id, 0, 1 << 30, now_unix_ms);
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? std::move(page->messages) : std::vector<QueuedMessage>{};
}

}  // namespace mqtt::storage::testing_util
