// SPDX-License-Identifier: Apache-2.0
// Writes batches to a store in a loop for the crash test and prints, after each Write returns
// OK, the batch number on its own line (so every printed number is an acknowledged batch).
//
// Usage: storage_crash_helper <data-dir> [fsync]
// Batch 1 puts sessions c0, c1, c2 and inflight. Batch i: queues message m_i (payload "m<i>") for
// client "c<i%3>" at seq i and removes the entry of batch i-10; puts in-flight record i for client
// "inflight" referring to m_i and removes record i-5; sets retained "r/<i%50>" to payload "<i>".
// Runs until killed.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "storage/store.h"

namespace {

using mqtt::storage::Batch;
using mqtt::storage::InflightRecord;
using mqtt::storage::MessageRecord;
using mqtt::storage::QueueEntry;

std::string QueueClient(uint64_t i) { return "c" + std::to_string(i % 3); }

MessageRecord Message(std::string topic, std::string payload) {
  MessageRecord m;
  m.set_topic(std::move(topic));
  m.set_payload(std::move(payload));
  m.set_qos(1);
  return m;
}

Batch MakeBatch(uint64_t i, uint64_t message_id) {
  Batch batch;
  if (i == 1) {
    for (const char* client : {"c0", "c1", "c2", "inflight"}) {
      mqtt::storage::SessionRecord session;
      session.set_client_id(client);
      session.set_never_expires(true);
      batch.PutSession(session);
    }
  }
  batch.PutMessage(message_id, Message("crash/test", "m" + std::to_string(i)));
  QueueEntry entry;
  entry.set_message_id(message_id);
  entry.set_qos(1);
  batch.AddQueueEntry(QueueClient(i), i, entry);
  if (i > 10) batch.RemoveQueueEntry(QueueClient(i - 10), i - 10);
  InflightRecord inflight;
  inflight.set_packet_id(static_cast<uint32_t>(i % 65535 + 1));
  inflight.set_stage(InflightRecord::STAGE_AWAIT_PUBACK);
  inflight.set_message_id(message_id);
  inflight.set_qos(1);
  batch.PutInflight("inflight", i, inflight);
  if (i > 5) batch.RemoveInflight("inflight", i - 5);
  batch.PutRetained("r/" + std::to_string(i % 50), Message("r", std::to_string(i)));
  return batch;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <data-dir> [fsync]\n", argv[0]);
    return 2;
  }
  mqtt::storage::StoreOptions options;
  options.path = argv[1];
  options.fsync = argc > 2 && std::strcmp(argv[2], "fsync") == 0;
  auto store = mqtt::storage::Store::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", std::string(store.status().message()).c_str());
    return 2;
  }
  for (uint64_t i = 1;; ++i) {
    absl::StatusOr<uint64_t> id = (*store)->NewMessageId();
    absl::Status s = id.ok() ? (*store)->Write(MakeBatch(i, *id)) : id.status();
    if (!s.ok()) {
      std::fprintf(stderr, "batch %llu: %s\n", static_cast<unsigned long long>(i),
                   std::string(s.message()).c_str());
      return 3;
    }
    const std::string line = std::to_string(i) + "\n";
    if (write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return 4;
    }
  }
}
