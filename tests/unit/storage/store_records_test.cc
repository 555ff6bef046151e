// SPDX-License-Identifier: Apache-2.0
// Every record kind round-trips through Write and the read API, before and after a reopen;
// missing keys read as NotFound; invalid batches are refused whole.
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "storage/store.h"
#include "tests/unit/storage/store_test_util.h"

namespace mqtt::storage {
namespace {

using testing_util::Entry;
using testing_util::EqualsProto;
using testing_util::Inflight;
using testing_util::Msg;
using testing_util::Session;
using testing_util::StorageTest;

SessionRecord FullSession() {
  SessionRecord s = Session("client-1");
  for (int i = 0; i < 3; ++i) {
    v1::Subscription* sub = s.add_subscriptions();
    sub->set_topic_filter("sensors/+/t" + std::to_string(i));
    sub->set_qos(i);
    sub->set_no_local(i == 1);
    sub->set_retain_as_published(i == 2);
    sub->set_retain_handling(i);
    sub->set_subscription_id(100 + i);
  }
  s.set_expires_at_unix_ms(1'700'000'000'000);
  s.set_last_seen_unix_ms(1'699'999'000'000);
  v1::Will* will = s.mutable_will();
  will->set_topic("clients/1/status");
  will->set_payload(std::string("off\0line", 8));
  will->set_qos(1);
  will->set_retain(true);
  will->set_delay_interval_seconds(30);
  will->mutable_properties()->set_content_type("text/plain");
  return s;
}

MessageRecord FullMessage() {
  MessageRecord m = Msg("a/b", std::string("\x00\x01\xff", 3), 1'800'000'000'000);
  m.set_qos(2);
  m.set_retain(true);
  m.set_publisher_id("pub");
  v1::MessageProperties* p = m.mutable_properties();
  p->set_payload_format_indicator(1);
  p->set_message_expiry_interval_seconds(60);
  p->set_content_type("application/json");
  p->set_response_topic("reply/here");
  p->set_correlation_data(std::string("\x00\x02", 2));
  for (const char* k : {"z", "a", "z"}) {
    v1::UserProperty* u = p->add_user_properties();
    u->set_key(k);
    u->set_value(std::string(k) + "-v");
  }
  return m;
}

std::vector<SessionState> LoadAll(Store& store) {
  std::vector<SessionState> out;
  absl::Status s = store.LoadSessions([&](const SessionState& state) {
    out.push_back(state);
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

TEST_F(StorageTest, SessionRoundTripsAcrossReopen) {
  Batch batch;
  batch.PutSession(FullSession());
  MustWrite(batch);
  for (int pass = 0; pass < 2; ++pass) {
    absl::StatusOr<SessionRecord> got = store_->GetSession("client-1");
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_THAT(*got, EqualsProto(FullSession()));
    std::vector<SessionState> all = LoadAll(*store_);
    ASSERT_EQ(all.size(), 1u);
    EXPECT_THAT(all[0].record, EqualsProto(FullSession()));
    Reopen();
  }
}

TEST_F(StorageTest, QueuedMessageRoundTripsAcrossReopen) {
  Batch batch;
  batch.PutMessage(7, FullMessage());
  QueueEntry entry = Entry(7, 2);
  entry.set_retain(true);
  entry.add_subscription_identifiers(5);
  entry.add_subscription_identifiers(9);
  batch.AddQueueEntry("c", 1, entry);
  MustWrite(batch);
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<QueuedMessage> queue = ReadAll("c");
    ASSERT_EQ(queue.size(), 1u);
    EXPECT_EQ(queue[0].seq, 1u);
    EXPECT_THAT(queue[0].message, EqualsProto(FullMessage()));
    entry.set_message_bytes(FullMessage().ByteSizeLong());
    EXPECT_THAT(queue[0].entry, EqualsProto(entry));
    absl::StatusOr<MessageRecord> m = store_->GetMessage(7);
    ASSERT_TRUE(m.ok());
    EXPECT_THAT(*m, EqualsProto(FullMessage()));
    Reopen();
  }
}

TEST_F(StorageTest, InflightAndInboundQos2RoundTripAcrossReopen) {
  Batch batch;
  batch.PutSession(Session("c"));
  batch.PutMessage(1, Msg("t/1"));
  batch.PutMessage(2, Msg("t/2"));
  batch.PutInflight("c", 10, Inflight(101, InflightRecord::STAGE_AWAIT_PUBACK, 1));
  batch.PutInflight("c", 11, Inflight(102, InflightRecord::STAGE_AWAIT_PUBREC, 2));
  batch.PutInflight("c", 12, Inflight(103, InflightRecord::STAGE_AWAIT_PUBCOMP, 0));
  batch.AddInboundQos2("c", 7);
  batch.AddInboundQos2("c", 65535);
  batch.AddInboundQos2("c", 1);
  MustWrite(batch);
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<SessionState> all = LoadAll(*store_);
    ASSERT_EQ(all.size(), 1u);
    const SessionState& s = all[0];
    ASSERT_EQ(s.inflight.size(), 3u);
    EXPECT_EQ(s.inflight[0].seq, 10u);
    EXPECT_THAT(s.inflight[0].record,
                EqualsProto(Inflight(101, InflightRecord::STAGE_AWAIT_PUBACK, 1)));
    ASSERT_TRUE(s.inflight[0].message.has_value());
    EXPECT_THAT(*s.inflight[0].message, EqualsProto(Msg("t/1")));
    EXPECT_EQ(s.inflight[1].message->topic(), "t/2");
    EXPECT_EQ(s.inflight[2].record.stage(), InflightRecord::STAGE_AWAIT_PUBCOMP);
    EXPECT_FALSE(s.inflight[2].message.has_value());
    EXPECT_EQ(s.inbound_qos2, (std::vector<uint16_t>{1, 7, 65535}));
    EXPECT_EQ(s.next_seq, 13u);
    Reopen();
  }
}

TEST_F(StorageTest, InboundQos2IdIsRemoved) {
  Batch batch;
  batch.PutSession(Session("c"));
  batch.AddInboundQos2("c", 7);
  batch.AddInboundQos2("c", 8);
  MustWrite(batch);
  batch.RemoveInboundQos2("c", 7);
  batch.RemoveInboundQos2("c", 9);  // missing: no-op
  MustWrite(batch);
  Reopen();
  EXPECT_EQ(LoadAll(*store_)[0].inbound_qos2, std::vector<uint16_t>{8});
}

TEST_F(StorageTest, RetainedRoundTripsReplacesAndDeletes) {
  Batch batch;
  batch.PutRetained("a/b", FullMessage());
  batch.PutRetained("a/c", Msg("a/c", "first"));
  batch.PutRetained("a/c", Msg("a/c", "second"));
  batch.PutRetained("a/d", Msg("a/d"));
  MustWrite(batch);
  batch.DeleteRetained("a/d");
  MustWrite(batch);
  Reopen();
  absl::StatusOr<MessageRecord> got = store_->GetRetained("a/b");
  ASSERT_TRUE(got.ok());
  EXPECT_THAT(*got, EqualsProto(FullMessage()));
  EXPECT_EQ(store_->GetRetained("a/c")->payload(), "second");
  EXPECT_TRUE(absl::IsNotFound(store_->GetRetained("a/d").status()));
  std::vector<std::string> topics;
  absl::StatusOr<uint64_t> expired =
      store_->LoadRetained(0, [&](std::string_view topic, const MessageRecord& m) {
        EXPECT_EQ(topic, m.topic());
        topics.emplace_back(topic);
        return absl::OkStatus();
      });
  ASSERT_TRUE(expired.ok());
  EXPECT_EQ(*expired, 0u);
  EXPECT_EQ(topics, (std::vector<std::string>{"a/b", "a/c"}));
}

TEST_F(StorageTest, ExpiredRetainedMessagesAreSkippedAndDeletedAtLoad) {
  Batch batch;
  batch.PutRetained("old", Msg("old", "x", 1000));
  batch.PutRetained("new", Msg("new", "x", 5000));
  batch.PutRetained("forever", Msg("forever", "x", 0));
  MustWrite(batch);
  std::vector<std::string> topics;
  auto visit = [&](std::string_view topic, const MessageRecord&) {
    topics.emplace_back(topic);
    return absl::OkStatus();
  };
  EXPECT_EQ(*store_->LoadRetained(2000, visit), 1u);
  EXPECT_EQ(topics, (std::vector<std::string>{"forever", "new"}));
  Reopen();
  EXPECT_TRUE(absl::IsNotFound(store_->GetRetained("old").status()));
}

// The cluster's records: versions and tombstones round-trip through LoadRetainedRecords; the
// broker's LoadRetained and GetRetained see a tombstone as no message; an expired versioned
// record is kept for the replication, an expired unversioned one is deleted.
TEST_F(StorageTest, RetainedVersionsAndTombstonesRoundTrip) {
  v1::RetainedRecord live;
  *live.mutable_message() = Msg("a/live", "x");
  live.set_hlc(uint64_t{1'700'000'000'000} << 16 | 3);
  live.set_origin("node-a");
  v1::RetainedRecord tombstone;
  tombstone.mutable_message()->set_topic("a/gone");
  tombstone.set_hlc(uint64_t{1'700'000'000'001} << 16);
  tombstone.set_origin("node-b");
  tombstone.set_tombstone(true);
  v1::RetainedRecord expired = live;
  *expired.mutable_message() = Msg("a/expired", "x", 1000);
  Batch batch;
  batch.PutRetainedRecord("a/live", live);
  batch.PutRetainedRecord("a/gone", tombstone);
  batch.PutRetainedRecord("a/expired", expired);
  batch.PutRetained("a/old", Msg("a/old", "x", 1000));  // unversioned, expired
  MustWrite(batch);
  Reopen();

  EXPECT_TRUE(absl::IsNotFound(store_->GetRetained("a/gone").status()));
  std::vector<std::string> broker_topics;
  absl::StatusOr<uint64_t> skipped =
      store_->LoadRetained(2000, [&](std::string_view topic, const MessageRecord&) {
        broker_topics.emplace_back(topic);
        return absl::OkStatus();
      });
  ASSERT_TRUE(skipped.ok());
  EXPECT_EQ(*skipped, 2u);  // a/expired (kept) and a/old (deleted)
  EXPECT_EQ(broker_topics, std::vector<std::string>{"a/live"});

  std::vector<std::pair<std::string, v1::RetainedRecord>> records;
  absl::StatusOr<uint64_t> deleted = store_->LoadRetainedRecords(
      2000, [&](std::string_view topic, const v1::RetainedRecord& record) {
        records.emplace_back(std::string(topic), record);
        return absl::OkStatus();
      });
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 0u);  // a/old went at the first load
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].first, "a/expired");
  EXPECT_THAT(records[0].second, EqualsProto(expired));
  EXPECT_EQ(records[1].first, "a/gone");
  EXPECT_THAT(records[1].second, EqualsProto(tombstone));
  EXPECT_EQ(records[2].first, "a/live");
  EXPECT_THAT(records[2].second, EqualsProto(live));

  // A tombstone replaced by a message, and the reverse, in one batch: the last one stays.
  v1::RetainedRecord back = live;
  *back.mutable_message() = Msg("a/gone", "back");
  back.set_hlc(tombstone.hlc() + 1);
  batch.PutRetainedRecord("a/gone", back);
  batch.PutRetainedRecord("a/live", tombstone);
  MustWrite(batch);
  EXPECT_EQ(store_->GetRetained("a/gone")->payload(), "back");
  EXPECT_TRUE(absl::IsNotFound(store_->GetRetained("a/live").status()));
}

TEST_F(StorageTest, NodeMetaRoundTripsAcrossReopen) {
  EXPECT_EQ(store_->node_meta().format_version(), Store::kFormatVersion);
  ASSERT_TRUE(store_->SetNodeIdentity("node-a", 3).ok());
  Reopen();
  EXPECT_EQ(store_->node_meta().node_id(), "node-a");
  EXPECT_EQ(store_->node_meta().incarnation(), 3u);
  EXPECT_EQ(store_->node_meta().format_version(), Store::kFormatVersion);
}

TEST_F(StorageTest, MessageIdsGrowAcrossRestarts) {
  uint64_t last = 0;
  for (int run = 0; run < 3; ++run) {
    for (int i = 0; i < 10; ++i) {
      absl::StatusOr<uint64_t> id = store_->NewMessageId();
      ASSERT_TRUE(id.ok());
      EXPECT_GT(*id, last);
      last = *id;
    }
    Reopen();
  }
}

TEST_F(StorageTest, MissingKeysReadAsNotFound) {
  EXPECT_TRUE(absl::IsNotFound(store_->GetSession("nobody").status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(42).status()));
  EXPECT_TRUE(absl::IsNotFound(store_->GetRetained("no/topic").status()));
  absl::StatusOr<QueuePage> page = store_->ReadQueue("nobody", 0, 10, 0);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->messages.empty());
  EXPECT_TRUE(page->end);
  EXPECT_EQ(store_->queue_stats("nobody").count, 0u);
}

TEST_F(StorageTest, RemovingMissingEntriesIsANoop) {
  Batch batch;
  batch.RemoveQueueEntry("c", 1);
  batch.RemoveInflight("c", 1);
  batch.RemoveInboundQos2("c", 1);
  batch.DeleteSession("c");
  batch.DeleteRetained("t");
  MustWrite(batch);
  EXPECT_EQ(store_->stats().messages, 0u);
}

TEST_F(StorageTest, InvalidBatchIsRefusedWhole) {
  const std::string nul("a\0b", 3);
  std::vector<std::function<void(Batch&)>> bad = {
      [](Batch& b) { b.PutSession(Session("")); },
      [&](Batch& b) { b.AddQueueEntry(nul, 1, Entry(1)); },
      [](Batch& b) { b.PutMessage(0, Msg("t")); },
      [](Batch& b) { b.PutMessage(1, Msg("")); },
      [](Batch& b) { b.AddQueueEntry("c", 1, Entry(0)); },
      [](Batch& b) { b.PutInflight("c", 1, Inflight(1, InflightRecord::STAGE_UNSPECIFIED, 1)); },
      [](Batch& b) { b.PutInflight("c", 1, Inflight(1, InflightRecord::STAGE_AWAIT_PUBACK, 0)); },
      [](Batch& b) { b.PutRetained("", Msg("t")); },
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    Batch batch;
    batch.PutSession(Session("good"));
    bad[i](batch);
    absl::Status s = store_->Write(std::move(batch));
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << i << ": " << s;
    EXPECT_TRUE(absl::IsNotFound(store_->GetSession("good").status())) << i;
  }
}

TEST_F(StorageTest, DeleteThenPutSessionInOneBatchLeavesAFreshSession) {
  Batch batch;
  batch.PutSession(Session("c"));
  batch.PutMessage(1, Msg("t"));
  batch.AddQueueEntry("c", 1, Entry(1));
  batch.AddInboundQos2("c", 5);
  MustWrite(batch);
  SessionRecord fresh = Session("c");
  fresh.set_last_seen_unix_ms(99);
  batch.DeleteSession("c");
  batch.PutSession(fresh);
  batch.AddInboundQos2("c", 6);
  MustWrite(batch);
  Reopen();
  std::vector<SessionState> all = LoadAll(*store_);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].record.last_seen_unix_ms(), 99u);
  EXPECT_EQ(all[0].inbound_qos2, std::vector<uint16_t>{6});
  EXPECT_TRUE(ReadAll("c").empty());
  EXPECT_TRUE(absl::IsNotFound(store_->GetMessage(1).status()));
}

TEST_F(StorageTest, LoadSessionsVisitsInClientOrderAndStopsAtError) {
  Batch batch;
  for (const char* c : {"b", "a", "ab", "c"}) batch.PutSession(Session(c));
  MustWrite(batch);
  std::vector<std::string> seen;
  absl::Status s = store_->LoadSessions([&](const SessionState& state) {
    seen.push_back(state.record.client_id());
    return seen.size() == 3 ? absl::CancelledError("enough") : absl::OkStatus();
  });
  EXPECT_TRUE(absl::IsCancelled(s));
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "ab", "b"}));
}

// With fsync on, a group waits for the disk unless it only removes in-flight records: a
// removal lost in a power loss only sends the message again (store.h, "Durability").
TEST_F(StorageTest, WithFsyncOnlyWritesThatRemoveDeliveriesSkipTheSync) {
  Close();
  StoreOptions options = Options();
  options.fsync = true;
  absl::StatusOr<std::unique_ptr<Store>> opened = Store::Open(options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  store_ = *std::move(opened);
  const auto stats = [&] { return store_->stats(); };

  Batch deliver;
  deliver.PutMessage(1, Msg("t"));
  deliver.PutInflight("c", 1, Inflight(1, InflightRecord::STAGE_AWAIT_PUBACK, 1));
  EXPECT_FALSE(deliver.forgets_only());
  MustWrite(deliver);
  EXPECT_EQ(stats().synced_write_groups, 1u);

  Batch acknowledged;
  acknowledged.RemoveInflight("c", 1);
  EXPECT_TRUE(acknowledged.forgets_only());
  MustWrite(acknowledged);
  EXPECT_EQ(stats().write_groups, 2u);
  EXPECT_EQ(stats().synced_write_groups, 1u);
  EXPECT_EQ(stats().messages, 0u) << "the message went with its last reference";

  Batch removal_the_caller_relies_on;
  removal_the_caller_relies_on.RemoveInflight("c", 2);
  removal_the_caller_relies_on.RequireDurable();
  MustWrite(removal_the_caller_relies_on);
  Batch queue_removal;  // may be a QoS 0 message: sending it twice would break "at most once"
  queue_removal.RemoveQueueEntry("c", 3);
  EXPECT_FALSE(queue_removal.forgets_only());
  MustWrite(queue_removal);
  EXPECT_EQ(stats().synced_write_groups, 3u);
}

TEST_F(StorageTest, WithoutFsyncNoWriteIsSynced) {
  Batch deliver;
  deliver.PutMessage(1, Msg("t"));
  deliver.PutInflight("c", 1, Inflight(1, InflightRecord::STAGE_AWAIT_PUBACK, 1));
  MustWrite(deliver);
  EXPECT_EQ(store_->stats().write_groups, 1u);
  EXPECT_EQ(store_->stats().synced_write_groups, 0u);
}

}  // namespace
// mqttd_storage_write_seconds and the RocksDB figures of /metrics: one histogram entry per
// RocksDB write, and properties that follow what was written (and flushed).
TEST_F(StorageTest, WriteLatencyAndRocksDbFiguresFollowTheWrites) {
  const uint64_t before = store_->write_latency().count;
  for (uint64_t id = 1; id <= 3; ++id) {
    Batch batch;
    // Incompressible (the WAL is compressed): 1000 bytes of a linear congruential sequence.
    std::string payload(1000, '\0');
    uint32_t x = static_cast<uint32_t>(id);
    for (char& c : payload) c = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
    batch.PutMessage(id, Msg("fig/" + std::to_string(id), payload));
    batch.AddQueueEntry("c", id, Entry(id));
    MustWrite(batch);
  }
  const LatencySnapshot latency = store_->write_latency();
  EXPECT_EQ(latency.count, before + 3);
  uint64_t in_buckets = 0;
  for (uint64_t n : latency.buckets) in_buckets += n;
  EXPECT_EQ(in_buckets, latency.count);
  EXPECT_GT(latency.sum_ns, 0u);

  DbFigures f = store_->db_figures();
  EXPECT_GT(f.memtable_bytes, 3000u) << "three 1000-byte payloads are in the memtables";
  EXPECT_GT(f.wal_bytes, 3000u) << "and in the live WAL";
  EXPECT_GE(f.estimate_keys, 6u);
  ASSERT_TRUE(store_->FlushForTesting(/*compact=*/false).ok());
  f = store_->db_figures();
  EXPECT_GT(f.sst_bytes, 0u);
  EXPECT_GT(f.live_sst_bytes, 0u);
  EXPECT_LE(f.live_sst_bytes, f.sst_bytes);
}

}  // namespace mqtt::storage
