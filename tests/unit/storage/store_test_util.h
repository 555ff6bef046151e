// SPDX-License-Identifier: Apache-2.0
// Helpers for storage tests: a fresh temporary data directory per test, record builders, and raw
// RocksDB access (store closed) to check what is on disk independently of the Store.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "storage/store.h"

namespace mqtt::storage::testing_util {

MATCHER_P(EqualsProto, expected, "") {
  return google::protobuf::util::MessageDifferencer::Equals(arg, expected);
}

// A directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

MessageRecord Msg(std::string_view topic, std::string_view payload = "payload",
                  uint64_t expires_at_unix_ms = 0);
SessionRecord Session(std::string_view client_id);
QueueEntry Entry(uint64_t message_id, uint32_t qos = 1);
InflightRecord Inflight(uint16_t packet_id, InflightRecord::Stage stage, uint64_t message_id);

// Raw RocksDB access to a closed store at `path`.
size_t CountKeys(const std::string& path, std::string_view column_family);
void RawPut(const std::string& path, std::string_view column_family, std::string_view key,
            std::string_view value);

// A store in a fresh directory: store_ is open after SetUp.
class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override;
  StoreOptions Options() const;
  void Reopen();
  void Close() { store_.reset(); }
  // Writes `batch`, failing the test on error.
  void MustWrite(Batch& batch);
  std::vector<QueuedMessage> ReadAll(std::string_view client_id, uint64_t now_unix_ms = 0);

  TempDir dir_;
  std::string db_path_;
  std::unique_ptr<Store> store_;
};

}  // namespace mqtt::storage::testing_util
