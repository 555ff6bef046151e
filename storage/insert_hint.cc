// SPDX-License-Identifier: Apache-2.0
#include "storage/insert_hint.h"

#include <cstring>

#include "storage/keys.h"

namespace mqtt::storage {
namespace {

class ClientInsertHint final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "mqtt.ClientInsertHint"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    const char* separator = Separator(key);
    return {key.data(), static_cast<size_t>(separator - key.data()) + 1};
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    const char* separator = Separator(key);
    return separator != nullptr && separator + keys::kSeqSuffix == key.data() + key.size();
  }

 private:
  static const char* Separator(const rocksdb::Slice& key) {
    return static_cast<const char*>(std::memchr(key.data(), keys::kSeparator, key.size()));
  }
};

class SingleInsertHint final : public rocksdb::SliceTransform {
 public:
  const char* Name() const override { return "mqtt.SingleInsertHint"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override { return {key.data(), 0}; }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() == 8; }
};

}  // namespace

std::shared_ptr<const rocksdb::SliceTransform> NewClientInsertHint() {
  return std::make_shared<ClientInsertHint>();
}

std::shared_ptr<const rocksdb::SliceTransform> NewSingleInsertHint() {
  return std::make_shared<SingleInsertHint>();
}

}  // namespace mqtt::storage
