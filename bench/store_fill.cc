// SPDX-License-Identifier: Apache-2.0
// store-fill: writes persistent sessions and offline queues straight into a data directory, in
// the format mqttd stores them, so that restart time can be measured against live data of a
// chosen size without driving millions of messages through MQTT (bench/storage_growth
// --fill-*). Each session is a 3.1.1 clean-session-0 client "fill-<i>" subscribed to
// "fill/<i>" at QoS 1 that never expires; queued messages are spread round robin over the
// sessions, one stored message per queue entry.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "storage/store.h"

namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "store-fill: %s\n", what.c_str());
  std::exit(1);
}

void Write(mqtt::storage::Store& store, mqtt::storage::Batch& batch) {
  if (absl::Status s = store.Write(std::move(batch)); !s.ok()) Die(std::string(s.message()));
  batch.Clear();
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  long sessions = 1000, queued = 0, payload = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string name = argv[i];
    if (name == "--data-dir") {
      dir = argv[i + 1];
    } else if (name == "--sessions") {
      sessions = std::atol(argv[i + 1]);
    } else if (name == "--queued") {
      queued = std::atol(argv[i + 1]);
    } else if (name == "--payload") {
      payload = std::atol(argv[i + 1]);
    } else {
      Die("unknown option " + name);
    }
  }
  if (dir.empty() || sessions < 1 || queued < 0 || payload < 0) {
    Die("usage: store-fill --data-dir DIR [--sessions N] [--queued N] [--payload BYTES]");
  }
  mqtt::storage::StoreOptions options;
  options.path = dir;
  auto store = mqtt::storage::Store::Open(options);
  if (!store.ok()) Die(std::string(store.status().message()));

  mqtt::storage::Batch batch;
  for (long i = 0; i < sessions; ++i) {
    mqtt::storage::SessionRecord session;
    session.set_client_id("fill-" + std::to_string(i));
    session.set_protocol_version(mqtt::storage::v1::PROTOCOL_VERSION_MQTT_3_1_1);
    session.set_never_expires(true);
    session.set_session_expiry_interval_seconds(0xFFFFFFFF);
    mqtt::storage::v1::Subscription* sub = session.add_subscriptions();
    sub->set_topic_filter("fill/" + std::to_string(i));
    sub->set_qos(1);
    batch.PutSession(session);
    if (batch.size() >= 1000) Write(**store, batch);
  }
  const std::string body(static_cast<size_t>(payload), 'x');
  for (long n = 0; n < queued; ++n) {
    const long target = n % sessions;
    absl::StatusOr<uint64_t> id = (*store)->NewMessageId();
    if (!id.ok()) Die(std::string(id.status().message()));
    mqtt::storage::MessageRecord message;
    message.set_topic("fill/" + std::to_string(target));
    message.set_payload(body);
    message.set_qos(1);
    mqtt::storage::QueueEntry entry;
    entry.set_message_id(*id);
    entry.set_qos(1);
    batch.PutMessage(*id, message);
    batch.AddQueueEntry("fill-" + std::to_string(target), 1 + n / sessions, entry);
    if (batch.size() >= 2000) Write(**store, batch);
  }
  Write(**store, batch);
  std::printf("{\"sessions\":%ld,\"queued\":%ld,\"payload\":%ld}\n", sessions, queued, payload);
  return 0;
}
