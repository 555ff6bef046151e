// SPDX-License-Identifier: Apache-2.0
// Session alone, against a FakeStorage (in memory, or over a real Store in a temporary
// directory) and a FakeSessionClient that records what it is asked to send.
#include "node/session/session.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/session/test_util.h"
#include "tests/unit/storage/store_test_util.h"

namespace mqtt::session_testing {
namespace {

using storage::testing_util::TempDir;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::string> Names(int from, int to) {  // "m<from>".."m<to - 1>"
  std::vector<std::string> names;
  for (int i = from; i < to; ++i) names.push_back("m" + std::to_string(i));
  return names;
}

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() { limits_.max_inflight = 20; }

  Session& NewSession(uint32_t expiry = 0) {
    session_ = std::make_unique<Session>(&storage_, "c1", 1, limits_);
    session_->set_expiry_interval(expiry);
    return *session_;
  }

  SessionLimits limits_;
  FakeStorage storage_;
  FakeSessionClient client_;
  std::unique_ptr<Session> session_;
};

TEST_F(SessionTest, Qos0Qos1Qos2DeliveredAtOnceWhenAttached) {
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  s.Deliver(Out("a", 0));
  s.Deliver(Out("b", 1));
  s.Deliver(Out("c", 2));
  std::vector<SentPacket> sent = client_.Take();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].payload, "a");
  EXPECT_EQ(sent[0].qos, 0);
  EXPECT_EQ(sent[0].packet_id, 0);  // QoS 0 has no packet id
  EXPECT_EQ(sent[1].qos, 1);
  EXPECT_NE(sent[1].packet_id, 0);
  EXPECT_EQ(sent[2].qos, 2);
  EXPECT_NE(sent[2].packet_id, 0);
  EXPECT_NE(sent[1].packet_id, sent[2].packet_id);
  for (const SentPacket& p : sent) EXPECT_FALSE(p.dup);
  EXPECT_EQ(s.inflight_count(), 2u);  // QoS 0 is never in flight
  EXPECT_EQ(s.queued_count(), 0u);
}

// The window is min(--max-inflight, the client's Receive Maximum) [MQTT-3.3.4-9]; the rest
// waits in the queue.
// The worker's expiry index (Shard::ExpiryChanged) learns every expiry a session sets and
// clears: a detached session with an expiry interval expires that much later [MQTT-3.1.2-23],
// a reattached one never, and one that never expires is not announced at all.
TEST_F(SessionTest, ExpiryIsAnnouncedOnDetachAndClearedOnAttach) {
  Session& s = NewSession(/*expiry=*/30);
  s.Attach(&client_, 65535);
  EXPECT_TRUE(storage_.expiries.empty());  // nothing to clear yet
  const int64_t before = MonotonicMs();
  s.Detach(nullptr);
  ASSERT_EQ(storage_.expiries.size(), 1u);
  EXPECT_GE(storage_.expiries[0], before + 30'000);
  EXPECT_LE(storage_.expiries[0], MonotonicMs() + 30'000);
  EXPECT_EQ(s.expires_at_ms(), storage_.expiries[0]);
  s.Attach(&client_, 65535);
  ASSERT_EQ(storage_.expiries.size(), 2u);
  EXPECT_EQ(storage_.expiries[1], 0);
  EXPECT_EQ(s.expires_at_ms(), 0);
  Session& forever = NewSession(kSessionNeverExpires);
  forever.Attach(&client_, 65535);
  forever.Detach(nullptr);
  EXPECT_EQ(storage_.expiries.size(), 2u);
}

TEST_F(SessionTest, InflightWindowIsMinOfMaxInflightAndReceiveMaximum) {
  limits_.max_inflight = 3;
  Session& s = NewSession();
  s.Attach(&client_, 2);  // Receive Maximum 2 < max_inflight 3
  for (int i = 0; i < 5; ++i) s.Deliver(Out("m" + std::to_string(i), 1));
  EXPECT_THAT(client_.TakePayloads(), ElementsAre("m0", "m1"));
  EXPECT_EQ(s.inflight_count(), 2u);
  EXPECT_EQ(s.queued_count(), 3u);

  FakeSessionClient other;
  Session t(&storage_, "c2", 2, limits_);
  t.Attach(&other, 100);  // max_inflight 3 < Receive Maximum 100
  for (int i = 0; i < 5; ++i) t.Deliver(Out("m" + std::to_string(i), 2));
  EXPECT_THAT(other.TakePayloads(), ElementsAre("m0", "m1", "m2"));
  EXPECT_EQ(t.queued_count(), 2u);
}

// A 5.0 client that resumes with a smaller Receive Maximum than the session had in flight gets
// the unacknowledged PUBLISHes again [MQTT-4.4.0-1] only as its window allows [MQTT-3.3.4-9]:
// the rest as acknowledgements free it, in order and before anything new.
TEST_F(SessionTest, ResumeResendsNoMoreThanTheNewReceiveMaximum) {
  limits_.max_inflight = 5;
  Session& s = NewSession(3600);
  s.Attach(&client_, 65535);
  for (int i = 0; i < 5; ++i) s.Deliver(Out("m" + std::to_string(i), i == 2 ? 2 : 1));
  std::vector<SentPacket> first = client_.Take();
  ASSERT_EQ(first.size(), 5u);
  s.Detach(nullptr);

  s.Attach(&client_, 2);
  std::vector<SentPacket> resent = client_.Take();
  ASSERT_EQ(resent.size(), 2u);
  EXPECT_EQ(resent[0].payload, "m0");
  EXPECT_EQ(resent[1].payload, "m1");
  EXPECT_TRUE(resent[0].dup && resent[1].dup);
  EXPECT_EQ(resent[0].packet_id, first[0].packet_id) << "the original packet id [MQTT-4.4.0-1]";
  s.Deliver(Out("new", 1));
  EXPECT_THAT(client_.Take(), IsEmpty()) << "the window is full";

  EXPECT_TRUE(s.OnPuback(first[0].packet_id));
  resent = client_.Take();
  ASSERT_EQ(resent.size(), 1u);
  EXPECT_EQ(resent[0].payload, "m2");
  EXPECT_TRUE(resent[0].dup);
  EXPECT_TRUE(s.OnPubrec(first[2].packet_id));  // PUBREL sent: m2 still holds its place
  client_.Take();
  EXPECT_TRUE(s.OnPuback(first[1].packet_id));
  EXPECT_THAT(client_.TakePayloads(), ElementsAre("m3"));
  EXPECT_TRUE(s.OnPubcomp(first[2].packet_id));
  EXPECT_THAT(client_.TakePayloads(), ElementsAre("m4"));
  EXPECT_TRUE(s.OnPuback(first[3].packet_id));
  std::vector<SentPacket> fresh = client_.Take();
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0].payload, "new");
  EXPECT_FALSE(fresh[0].dup);
}

TEST_F(SessionTest, PubackOpensTheWindowAndQueueDrainsInOrder) {
  limits_.max_inflight = 2;
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  for (int i = 0; i < 5; ++i) s.Deliver(Out("m" + std::to_string(i), 1));
  std::vector<SentPacket> first = client_.Take();
  ASSERT_EQ(first.size(), 2u);
  // Acknowledged out of order: the window still moves, the queue still drains in order.
  EXPECT_TRUE(s.OnPuback(first[1].packet_id));
  EXPECT_THAT(client_.TakePayloads(), ElementsAre("m2"));
  EXPECT_FALSE(s.OnPuback(first[1].packet_id)) << "a second PUBACK for the same id is unknown";
  EXPECT_TRUE(s.OnPuback(first[0].packet_id));
  EXPECT_THAT(client_.TakePayloads(), ElementsAre("m3"));
  EXPECT_EQ(s.inflight_count(), 2u);
  EXPECT_EQ(s.queued_count(), 1u);
}

// The worker's gauges come from totals the sessions keep as they change (Shard::UpdateGauges
// visits no session): every step of a QoS 1/2 exchange, and the end of a session, show there.
TEST_F(SessionTest, QueuedAndInflightTotalsFollowEveryChange) {
  limits_.max_inflight = 2;
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  for (int i = 0; i < 4; ++i) s.Deliver(Out("m" + std::to_string(i), 1));
  s.Deliver(Out("q2", 2));
  EXPECT_EQ(storage_.totals_.inflight, 2);
  EXPECT_EQ(storage_.totals_.queued, 3);
  std::vector<SentPacket> sent = client_.Take();
  ASSERT_EQ(sent.size(), 2u);
  ASSERT_TRUE(s.OnPuback(sent[0].packet_id));
  ASSERT_TRUE(s.OnPuback(sent[1].packet_id));
  EXPECT_EQ(storage_.totals_.inflight, 2);
  EXPECT_EQ(storage_.totals_.queued, 1);
  sent = client_.Take();
  ASSERT_EQ(sent.size(), 2u);
  ASSERT_TRUE(s.OnPuback(sent[0].packet_id));
  ASSERT_TRUE(s.OnPuback(sent[1].packet_id));
  sent = client_.Take();
  ASSERT_EQ(sent.size(), 1u);  // the QoS 2 message
  EXPECT_EQ(storage_.totals_.inflight, 1);
  EXPECT_EQ(storage_.totals_.queued, 0);
  ASSERT_TRUE(s.OnPubrec(sent[0].packet_id));
  EXPECT_EQ(storage_.totals_.inflight, 1);  // awaiting PUBCOMP
  ASSERT_TRUE(s.OnPubcomp(sent[0].packet_id));
  EXPECT_EQ(storage_.totals_.inflight, 0);
  // A second session's share goes with it.
  Session other(&storage_, "c2", 2, limits_);
  other.Attach(&client_, 65535);
  for (int i = 0; i < 3; ++i) other.Deliver(Out("o", 1));
  EXPECT_EQ(storage_.totals_.inflight, 2);
  EXPECT_EQ(storage_.totals_.queued, 1);
  session_.reset();
  EXPECT_EQ(storage_.totals_.inflight, 2);
  {
    Session gone(&storage_, "c3", 3, limits_);
    gone.Attach(&client_, 65535);
    gone.Deliver(Out("g", 1));
    EXPECT_EQ(storage_.totals_.inflight, 3);
  }
  EXPECT_EQ(storage_.totals_.inflight, 2);
  EXPECT_EQ(storage_.totals_.queued, 1);
}

TEST_F(SessionTest, Qos2PubrecSendsPubrelAndPubcompFreesTheWindow) {
  limits_.max_inflight = 1;
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  s.Deliver(Out("q2", 2));
  s.Deliver(Out("next", 1));
  std::vector<SentPacket> sent = client_.Take();
  ASSERT_EQ(sent.size(), 1u);
  const uint16_t id = sent[0].packet_id;
  EXPECT_FALSE(s.OnPuback(id)) << "PUBACK does not complete a QoS 2 delivery";
  EXPECT_FALSE(s.OnPubcomp(id)) << "PUBCOMP before PUBREC is unknown";
  EXPECT_TRUE(s.OnPubrec(id));
  sent = client_.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].kind, SentPacket::kPubrel);
  EXPECT_EQ(sent[0].packet_id, id);
  EXPECT_EQ(s.inflight_count(), 1u) << "still in flight until PUBCOMP";
  EXPECT_THAT(client_.Take(), IsEmpty()) << "the window is still full";
  EXPECT_TRUE(s.OnPubrec(id)) << "a repeated PUBREC gets PUBREL again";
  EXPECT_EQ(client_.Take().size(), 1u);
  EXPECT_TRUE(s.OnPubcomp(id));
  EXPECT_THAT(client_.TakePayloads(), ElementsAre("next"));
  EXPECT_FALSE(s.OnPubcomp(id));
}

TEST_F(SessionTest, AcknowledgementsWithUnknownIdsAreIgnored) {
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  s.Deliver(Out("a", 1));
  const uint16_t id = client_.Take().at(0).packet_id;
  const uint16_t unknown = id + 100;
  EXPECT_FALSE(s.OnPuback(unknown));
  EXPECT_FALSE(s.OnPubrec(unknown));
  EXPECT_FALSE(s.OnPubcomp(unknown));
  EXPECT_FALSE(s.OnPubrec(id)) << "PUBREC for a QoS 1 delivery";
  EXPECT_EQ(s.inflight_count(), 1u);
  EXPECT_THAT(client_.Take(), IsEmpty());
}

// QoS 0 is queued behind QoS 1/2 while connected, so that a subscriber sees one order.
TEST_F(SessionTest, Qos0WaitsBehindQueuedQos1WhileConnected) {
  limits_.max_inflight = 1;
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  s.Deliver(Out("a", 1));
  s.Deliver(Out("b", 1));
  s.Deliver(Out("c", 0));
  std::vector<SentPacket> sent = client_.Take();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(s.queued_count(), 2u);
  s.OnPuback(sent[0].packet_id);
  EXPECT_THAT(client_.TakePayloads(), ElementsAre("b", "c"));
}

TEST_F(SessionTest, QueueFullByCountDropsTheNewestAndCountsIt) {
  limits_.max_inflight = 1;
  limits_.max_queued_messages = 2;
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  for (int i = 0; i < 5; ++i) s.Deliver(Out("m" + std::to_string(i), 1));
  EXPECT_EQ(s.inflight_count(), 1u);
  EXPECT_EQ(s.queued_count(), 2u);
  EXPECT_EQ(s.dropped_count(), 2u);
  std::vector<std::string> received;
  for (int round = 0; round < 5; ++round) {
    for (const SentPacket& p : client_.Take()) {
      received.push_back(p.payload);
      s.OnPuback(p.packet_id);
    }
  }
  EXPECT_THAT(received, ElementsAre("m0", "m1", "m2")) << "m3 and m4 were the newest: dropped";
}

// limits.queue_full_policy: drop_oldest keeps the newest messages, in order, and counts each
// message it drops with reason queue_full.
TEST_F(SessionTest, QueueFullDropOldestKeepsTheNewest) {
  limits_.max_inflight = 1;
  limits_.max_queued_messages = 2;
  limits_.drop_oldest = true;
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  for (int i = 0; i < 5; ++i) s.Deliver(Out("m" + std::to_string(i), 1));
  EXPECT_EQ(s.queued_count(), 2u);
  EXPECT_EQ(s.dropped_count(), 2u);
  EXPECT_THAT(storage_.drops, ElementsAre(DropReason::kQueueFull, DropReason::kQueueFull));
  std::vector<std::string> received;
  for (int round = 0; round < 5; ++round) {
    for (const SentPacket& p : client_.Take()) {
      received.push_back(p.payload);
      s.OnPuback(p.packet_id);
    }
  }
  EXPECT_THAT(received, ElementsAre("m0", "m3", "m4")) << "m1 and m2 were the oldest queued";
}

// By bytes: as many of the oldest go as the new message needs; one larger than the whole limit
// is dropped itself and leaves the queue alone.
TEST_F(SessionTest, QueueFullByBytesDropOldestMakesRoom) {
  limits_.max_inflight = 1;
  limits_.max_queued_bytes = 25;  // topic "t" + 9-byte payload = 10 bytes each
  limits_.drop_oldest = true;
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  s.Deliver(Out("inflight!", 1));
  s.Deliver(Out("queued-1!", 1));
  s.Deliver(Out("queued-2!", 1));
  s.Deliver(Out("a-larger-message", 1));  // 17 bytes: both queued ones go
  EXPECT_EQ(s.queued_count(), 1u);
  EXPECT_EQ(s.queued_bytes(), 17u);
  s.Deliver(Out(std::string(30, 'x'), 1));  // 31 > 25: never fits
  EXPECT_EQ(s.queued_count(), 1u);
  EXPECT_EQ(s.dropped_count(), 3u);
}

TEST_F(SessionTest, QueueFullByBytesDropsTheNewestAndCountsIt) {
  limits_.max_inflight = 1;
  limits_.max_queued_bytes = 25;  // topic "t" + 9-byte payload = 10 bytes each
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  s.Deliver(Out("inflight!", 1));
  s.Deliver(Out("queued-1!", 1));
  s.Deliver(Out("queued-2!", 1));
  s.Deliver(Out("dropped!!", 1));
  s.Deliver(Out("small", 1));  // 6 bytes: 20 + 6 > 25 as well
  EXPECT_EQ(s.queued_count(), 2u);
  EXPECT_EQ(s.queued_bytes(), 20u);
  EXPECT_EQ(s.dropped_count(), 2u);
  s.Deliver(Out("x", 1));  // 2 bytes: fits (22 <= 25)
  EXPECT_EQ(s.queued_count(), 3u);
  EXPECT_EQ(s.queued_bytes(), 22u);
}

TEST_F(SessionTest, Qos0DroppedAboveMaxOutboundBuffer) {
  limits_.max_outbound_buffer = 1000;
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  client_.unsent = 1001;
  s.Deliver(Out("lost", 0));
  EXPECT_THAT(client_.Take(), IsEmpty());
  EXPECT_EQ(s.dropped_count(), 1u);
  s.Deliver(Out("kept", 1));  // QoS 1 is not dropped for a slow reader
  EXPECT_THAT(client_.TakePayloads(), ElementsAre("kept"));
  client_.unsent = 1000;
  s.Deliver(Out("sent", 0));
  EXPECT_THAT(client_.TakePayloads(), ElementsAre("sent"));
  EXPECT_EQ(s.dropped_count(), 1u);
}

// [MQTT-3.1.2-25]: a PUBLISH larger than the client's Maximum Packet Size is not sent; the
// message is dropped for this client only and does not take a window slot.
TEST_F(SessionTest, PacketTooLargeForTheClientIsDroppedAndTheNextOneGoes) {
  limits_.max_inflight = 1;
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  client_.max_payload = 4;
  s.Deliver(Out("too-large", 1));
  s.Deliver(Out("ok", 1));
  EXPECT_THAT(client_.TakePayloads(), ElementsAre("ok"));
  EXPECT_EQ(s.dropped_count(), 1u);
  EXPECT_EQ(s.inflight_count(), 1u);
}

// [MQTT-3.1.2-25]: a packet too large for the client is discarded and the server behaves as if
// it had completed sending that message. On reconnect with a smaller Maximum Packet Size the
// in-flight message that no longer fits leaves the window (found by this test: Attach used to
// ignore SendPublish's result, and with a window of 1 the session never delivered again).
TEST_F(SessionTest, InflightMessageTooLargeAfterReconnectLeavesTheWindow) {
  limits_.max_inflight = 1;
  Session& s = NewSession(kSessionNeverExpires);
  s.Attach(&client_, 65535);
  s.Deliver(Out("large-message", 1));
  s.Deliver(Out("ok", 1));
  ASSERT_EQ(client_.Take().size(), 1u);
  s.Detach(nullptr);
  FakeSessionClient next;
  next.max_payload = 4;  // the new connection's Maximum Packet Size
  s.Attach(&next, 65535);
  EXPECT_EQ(s.dropped_count(), 1u);
  EXPECT_THAT(next.TakePayloads(), ElementsAre("ok"));
}

TEST_F(SessionTest, OfflineSessionQueuesQos1And2ButDropsQos0) {
  Session& s = NewSession(kSessionNeverExpires);  // no store: kept in memory
  s.Attach(&client_, 65535);
  s.Detach(nullptr);
  s.Deliver(Out("q0", 0));
  s.Deliver(Out("q1", 1));
  s.Deliver(Out("q2", 2));
  EXPECT_EQ(s.queued_count(), 2u);
  FakeSessionClient next;
  s.Attach(&next, 65535);
  EXPECT_THAT(next.TakePayloads(), ElementsAre("q1", "q2"));
}

// [MQTT-4.4.0-1]: on reconnect, unacknowledged PUBLISHes are re-sent in their original order
// with DUP set and the same packet ids, PUBREL is re-sent for PUBREC'd ones; then the queue.
TEST_F(SessionTest, ReattachResendsInflightWithDupAndPubrelThenTheQueue) {
  Session& s = NewSession(kSessionNeverExpires);
  s.Attach(&client_, 65535);
  s.Deliver(Out("a", 1));
  s.Deliver(Out("b", 2));
  s.Deliver(Out("c", 2));
  std::vector<SentPacket> first = client_.Take();
  ASSERT_EQ(first.size(), 3u);
  ASSERT_TRUE(s.OnPubrec(first[2].packet_id));
  client_.Take();
  s.Detach(nullptr);
  EXPECT_EQ(s.client(), nullptr);
  s.Deliver(Out("d", 1));

  FakeSessionClient next;
  s.Attach(&next, 65535);
  std::vector<SentPacket> again = next.Take();
  ASSERT_EQ(again.size(), 4u);
  EXPECT_EQ(again[0].kind, SentPacket::kPublish);
  EXPECT_EQ(again[0].payload, "a");
  EXPECT_TRUE(again[0].dup);
  EXPECT_EQ(again[0].packet_id, first[0].packet_id);
  EXPECT_EQ(again[1].payload, "b");
  EXPECT_TRUE(again[1].dup);
  EXPECT_EQ(again[1].qos, 2);
  EXPECT_EQ(again[1].packet_id, first[1].packet_id);
  EXPECT_EQ(again[2].kind, SentPacket::kPubrel);
  EXPECT_EQ(again[2].packet_id, first[2].packet_id);
  EXPECT_EQ(again[3].payload, "d");
  EXPECT_FALSE(again[3].dup);
  EXPECT_NE(again[3].packet_id, first[0].packet_id);
  EXPECT_NE(again[3].packet_id, first[1].packet_id);
  EXPECT_NE(again[3].packet_id, first[2].packet_id);
}

// A smaller Receive Maximum on reconnect: what was in flight is re-sent one window at a time
// [MQTT-3.3.4-9], and nothing new goes until all of it has been re-sent and the window has room.
TEST_F(SessionTest, ReattachWithSmallerReceiveMaximumSendsNoNewMessages) {
  Session& s = NewSession(kSessionNeverExpires);
  s.Attach(&client_, 65535);
  for (int i = 0; i < 3; ++i) s.Deliver(Out("m" + std::to_string(i), 1));
  client_.Take();
  s.Detach(nullptr);
  s.Deliver(Out("m3", 1));
  FakeSessionClient next;
  s.Attach(&next, 1);
  std::vector<SentPacket> again = next.Take();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(s.queued_count(), 1u);
  s.OnPuback(again[0].packet_id);
  again = next.Take();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].payload, "m1");
  s.OnPuback(again[0].packet_id);
  again = next.Take();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].payload, "m2");
  s.OnPuback(again[0].packet_id);
  EXPECT_THAT(next.TakePayloads(), ElementsAre("m3"));
}

// 5.0 Message Expiry [MQTT-3.3.2-5]: a message that expired while queued is not delivered.
TEST_F(SessionTest, ExpiredMessagesAreDroppedNotDelivered) {
  limits_.max_inflight = 1;
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  s.Deliver(Out("first", 1));
  // Queued behind "first": one already past its deadline, one far from it.
  s.Deliver(Out(MakeMessage("t", "expired", 1, MonotonicMs() - 1), 1));
  s.Deliver(Out(MakeMessage("t", "fresh", 1, MonotonicMs() + 3'600'000), 1));
  std::vector<SentPacket> sent = client_.Take();
  ASSERT_EQ(sent.size(), 1u);
  s.OnPuback(sent[0].packet_id);
  EXPECT_THAT(client_.TakePayloads(), ElementsAre("fresh"));
  EXPECT_EQ(s.dropped_count(), 1u);
  // Expired on arrival, with room in the window: dropped as well.
  FakeSessionClient other;
  Session t(&storage_, "c2", 2, limits_);
  t.Attach(&other, 65535);
  t.Deliver(Out(MakeMessage("t", "late", 0, MonotonicMs() - 1), 0));
  EXPECT_THAT(other.Take(), IsEmpty());
  EXPECT_EQ(t.dropped_count(), 1u);
  EXPECT_THAT(storage_.drops, ElementsAre(DropReason::kExpired, DropReason::kExpired));
}

// [MQTT-4.8.2-4] (5.0 section 4.8.2): when the client disconnects, its shared-subscription QoS 1
// messages without PUBACK and its queued shared QoS 1/2 messages go to another member; a QoS 2
// message already sent stays, and so do messages of ordinary subscriptions.
TEST_F(SessionTest, DetachRedistributesUnacknowledgedSharedQos1ButKeepsSentQos2) {
  limits_.max_inflight = 3;
  Session& s = NewSession(kSessionNeverExpires);
  s.Attach(&client_, 65535);
  s.Deliver(Out("shared-q1-sent", 1, /*shared_group=*/7));
  s.Deliver(Out("shared-q2-sent", 2, 7));
  s.Deliver(Out("plain-q1-sent", 1));
  s.Deliver(Out("shared-q1-queued", 1, 7));
  s.Deliver(Out("shared-q2-queued", 2, 7));
  s.Deliver(Out("plain-q1-queued", 1));
  ASSERT_EQ(client_.Take().size(), 3u);
  ASSERT_EQ(s.queued_count(), 3u);

  std::vector<std::string> offered;
  s.Detach([&](const OutboundMessage& out, uint64_t from_session) {
    EXPECT_EQ(from_session, s.id());
    EXPECT_EQ(out.shared_group, 7u);
    offered.push_back(out.message->payload);
    return true;
  });
  EXPECT_THAT(offered, ElementsAre("shared-q1-sent", "shared-q1-queued", "shared-q2-queued"));
  EXPECT_EQ(s.inflight_count(), 2u);
  EXPECT_EQ(s.queued_count(), 1u);

  FakeSessionClient next;
  s.Attach(&next, 65535);
  std::vector<SentPacket> again = next.Take();
  ASSERT_EQ(again.size(), 3u);
  EXPECT_EQ(again[0].payload, "shared-q2-sent");
  EXPECT_TRUE(again[0].dup);
  EXPECT_EQ(again[1].payload, "plain-q1-sent");
  EXPECT_EQ(again[2].payload, "plain-q1-queued");
}

TEST_F(SessionTest, DetachKeepsSharedMessagesWhenNoOtherMemberTakesThem) {
  Session& s = NewSession(kSessionNeverExpires);
  s.Attach(&client_, 65535);
  s.Deliver(Out("shared", 1, 7));
  client_.Take();
  int offers = 0;
  s.Detach([&](const OutboundMessage&, uint64_t) {
    ++offers;
    return false;
  });
  EXPECT_EQ(offers, 1);
  EXPECT_EQ(s.inflight_count(), 1u);
  FakeSessionClient next;
  s.Attach(&next, 65535);
  std::vector<SentPacket> again = next.Take();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_TRUE(again[0].dup);
}

// Packet ids count up, wrap past 65535 skipping 0 and skip ids still in flight.
TEST_F(SessionTest, PacketIdsWrapSkippingZeroAndIdsInFlight) {
  limits_.max_inflight = 2;
  Session& s = NewSession();
  s.Attach(&client_, 65535);
  s.Deliver(Out("held", 1));
  const uint16_t held = client_.Take().at(0).packet_id;
  ASSERT_EQ(held, 1);
  uint16_t last = 0;
  for (int i = 0; i < 65534; ++i) {
    s.Deliver(Out("x", 1));
    std::vector<SentPacket> sent = client_.Take();
    ASSERT_EQ(sent.size(), 1u);
    last = sent[0].packet_id;
    ASSERT_NE(last, 0);
    ASSERT_NE(last, held);
    ASSERT_TRUE(s.OnPuback(last));
  }
  EXPECT_EQ(last, 65535);
  s.Deliver(Out("wrapped", 1));
  EXPECT_EQ(client_.Take().at(0).packet_id, 2) << "0 and 1 (in flight) are skipped";
}

// Inbound QoS 2 [MQTT-4.3.3-2]: an id stays pending until PUBREL, so a re-sent PUBLISH is
// recognised as a duplicate.
TEST_F(SessionTest, InboundQos2IdsPendingUntilReleased) {
  Session& s = NewSession();
  EXPECT_FALSE(s.InboundQos2Pending(5));
  s.AddInboundQos2(5);
  s.AddInboundQos2(6);
  EXPECT_TRUE(s.InboundQos2Pending(5));
  EXPECT_EQ(s.inbound_qos2_count(), 2u);
  EXPECT_TRUE(s.ReleaseInboundQos2(5));
  EXPECT_FALSE(s.InboundQos2Pending(5));
  EXPECT_FALSE(s.ReleaseInboundQos2(5)) << "a second PUBREL is for an unknown id";
  EXPECT_TRUE(s.InboundQos2Pending(6));
  EXPECT_EQ(s.inbound_qos2_count(), 1u);
}

TEST_F(SessionTest, InMemorySessionDoesNotHoldThePublishersAcknowledgement) {
  auto listener = std::make_shared<RecordingAckListener>();
  Session& s = NewSession(kSessionNeverExpires);
  EXPECT_FALSE(s.persistent()) << "no store";
  s.Attach(&client_, 65535);
  OutboundMessage out = Out("a", 1);
  out.ack = std::make_shared<AckToken>(nullptr, listener, 42);
  s.Deliver(std::move(out));
  EXPECT_THAT(listener->durable, ElementsAre(42u));
}

// ---------------------------------------------------------------------------------------------
// Persistent sessions, over a real Store in a temporary directory.

class PersistentSessionTest : public SessionTest {
 protected:
  void SetUp() override {
    storage::StoreOptions options;
    options.path = dir_.path() + "/db";
    auto store = storage::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    pstorage_ = std::make_unique<FakeStorage>(store_.get());
  }
  void TearDown() override {
    EXPECT_THAT(pstorage_->failures, IsEmpty());
    session_.reset();  // before pstorage_: a session reports to its storage until it ends
  }

  Session& NewPersistent(const std::string& client_id = "p1") {
    session_ = std::make_unique<Session>(pstorage_.get(), client_id, 1, limits_);
    session_->set_expiry_interval(3600);
    return *session_;
  }

  // The stored state of `client_id`, as the broker reads it at start-up.
  std::optional<storage::SessionState> Load(const std::string& client_id) {
    std::optional<storage::SessionState> found;
    absl::Status status = store_->LoadSessions([&](const storage::SessionState& state) {
      if (state.record.client_id() == client_id) found = state;
      return absl::OkStatus();
    });
    EXPECT_TRUE(status.ok()) << status;
    return found;
  }

  TempDir dir_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<FakeStorage> pstorage_;
};

// The publisher's acknowledgement waits until the message is in the store: the session hands
// the token to the turn's batch.
TEST_F(PersistentSessionTest, AcknowledgementWaitsForTheCommit) {
  auto listener = std::make_shared<RecordingAckListener>();
  Session& s = NewPersistent();
  ASSERT_TRUE(s.persistent());
  s.Attach(&client_, 65535);
  OutboundMessage out = Out("a", 1);
  out.ack = std::make_shared<AckToken>(nullptr, listener, 7);
  s.Deliver(std::move(out));
  EXPECT_EQ(client_.Take().size(), 1u);
  EXPECT_THAT(listener->durable, IsEmpty()) << "not durable before the batch is written";
  EXPECT_EQ(pstorage_->held_tokens(), 1u);
  ASSERT_TRUE(pstorage_->CommitNow());
  EXPECT_THAT(listener->durable, ElementsAre(7u));
  // The in-flight record is in the store.
  std::optional<storage::SessionState> state;
  s.SaveRecord(nullptr);
  ASSERT_TRUE(pstorage_->CommitNow());
  state = Load("p1");
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->inflight.size(), 1u);
}

// An offline persistent session keeps its queue on disk only and reads it back a page at a
// time (64 entries) when its client returns; order is kept across pages.
TEST_F(PersistentSessionTest, OfflineQueueWrittenToTheStoreAndReadBackInPages) {
  limits_.max_inflight = 20;
  Session& s = NewPersistent();
  s.Attach(&client_, 65535);
  s.SaveRecord(nullptr);
  s.Detach(nullptr);
  for (int i = 0; i < 150; ++i) s.Deliver(Out("m" + std::to_string(i), 1));
  ASSERT_TRUE(pstorage_->CommitNow());
  EXPECT_EQ(s.queued_count(), 0u) << "nothing in memory while offline";
  EXPECT_EQ(s.disk_queued_count(), 150u);
  EXPECT_EQ(store_->queue_stats("p1").count, 150u);

  FakeSessionClient next;
  s.Attach(&next, 65535);
  std::vector<std::string> received;
  for (int round = 0; round < 100 && received.size() < 150; ++round) {
    std::vector<SentPacket> sent = next.Take();
    if (sent.empty()) break;
    for (const SentPacket& p : sent) {
      EXPECT_FALSE(p.dup);
      received.push_back(p.payload);
      ASSERT_TRUE(s.OnPuback(p.packet_id));
    }
  }
  EXPECT_EQ(received, Names(0, 150));
  ASSERT_TRUE(pstorage_->CommitNow());
  EXPECT_EQ(store_->queue_stats("p1").count, 0u);
  EXPECT_EQ(s.disk_queued_count(), 0u);
  EXPECT_EQ(s.inflight_count(), 0u);
}

// The stored queue limit counts entries on disk too.
TEST_F(PersistentSessionTest, OfflineQueueLimitCountsEntriesOnDisk) {
  limits_.max_queued_messages = 10;
  Session& s = NewPersistent();
  s.Attach(&client_, 65535);
  s.Detach(nullptr);
  for (int i = 0; i < 15; ++i) s.Deliver(Out("m" + std::to_string(i), 1));
  ASSERT_TRUE(pstorage_->CommitNow());
  EXPECT_EQ(s.dropped_count(), 5u);
  EXPECT_EQ(store_->queue_stats("p1").count, 10u);
  FakeSessionClient next;
  s.Attach(&next, 65535);
  EXPECT_EQ(next.TakePayloads(), Names(0, 10));
}

// drop_oldest with the queue on disk: the oldest stored entry is deleted in the batch that adds
// the new one, so the store never holds more than the limit, and a restart (the state read back
// from the store) delivers the newest messages in order.
TEST_F(PersistentSessionTest, OfflineDropOldestDeletesTheOldestStoredEntry) {
  limits_.max_queued_messages = 10;
  limits_.drop_oldest = true;
  {
    Session& s = NewPersistent();
    s.Attach(&client_, 65535);
    s.SaveRecord(nullptr);
    s.Detach(nullptr);
    for (int i = 0; i < 150; ++i) {
      s.Deliver(Out("m" + std::to_string(i), 1));
      if (i % 7 == 0) {  // a few deliveries per loop turn
        ASSERT_TRUE(pstorage_->CommitNow());
        EXPECT_LE(store_->queue_stats("p1").count, 10u);
      }
    }
    ASSERT_TRUE(pstorage_->CommitNow());
    EXPECT_EQ(s.dropped_count(), 140u);
    EXPECT_EQ(s.disk_queued_count(), 10u);
    EXPECT_EQ(store_->queue_stats("p1").count, 10u);
    session_.reset();  // the node stops
  }
  std::optional<storage::SessionState> state = Load("p1");
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->queue.count, 10u);
  Session restored(pstorage_.get(), "p1", 2, limits_);
  restored.Restore(*state);
  FakeSessionClient next;
  restored.Attach(&next, 65535);
  EXPECT_EQ(next.TakePayloads(), Names(140, 150));
}

// Online: the oldest queued message leaves memory and its stored entry leaves the store.
TEST_F(PersistentSessionTest, OnlineDropOldestRemovesTheStoredEntryToo) {
  limits_.max_queued_messages = 3;
  limits_.max_inflight = 1;
  limits_.drop_oldest = true;
  Session& s = NewPersistent();
  s.Attach(&client_, 65535);
  s.SaveRecord(nullptr);
  for (int i = 0; i < 6; ++i) s.Deliver(Out("m" + std::to_string(i), 1));
  ASSERT_TRUE(pstorage_->CommitNow());
  EXPECT_EQ(s.dropped_count(), 2u);
  std::vector<std::string> received;
  for (int round = 0; round < 10; ++round) {
    for (const SentPacket& p : client_.Take()) {
      received.push_back(p.payload);
      ASSERT_TRUE(s.OnPuback(p.packet_id));
    }
  }
  EXPECT_THAT(received, ElementsAre("m0", "m3", "m4", "m5"));
  ASSERT_TRUE(pstorage_->CommitNow());
  EXPECT_EQ(store_->queue_stats("p1").count, 0u);
}

// The whole session survives a restart: in-flight messages (DUP on resend), the PUBREC'd one
// (PUBREL), the queue and inbound QoS 2 ids come back from the store [MQTT-4.4.0-1].
TEST_F(PersistentSessionTest, RestoredSessionResendsInflightAndDrainsItsQueue) {
  limits_.max_inflight = 3;
  {
    Session& s = NewPersistent();
    s.Attach(&client_, 65535);
    s.SaveRecord(nullptr);
    s.Deliver(Out("a", 1));
    s.Deliver(Out("b", 2));
    s.Deliver(Out("c", 2));
    s.Deliver(Out("d", 1));  // queued
    std::vector<SentPacket> sent = client_.Take();
    ASSERT_EQ(sent.size(), 3u);
    ASSERT_TRUE(s.OnPubrec(sent[2].packet_id));
    s.AddInboundQos2(9);
    ASSERT_TRUE(pstorage_->CommitNow());
    session_.reset();  // the node stops
  }
  std::optional<storage::SessionState> state = Load("p1");
  ASSERT_TRUE(state.has_value());
  Session restored(pstorage_.get(), "p1", 2, limits_);
  restored.Restore(*state);
  EXPECT_TRUE(restored.InboundQos2Pending(9));
  EXPECT_EQ(restored.expiry_interval(), 3600u);
  FakeSessionClient next;
  restored.Attach(&next, 65535);
  std::vector<SentPacket> again = next.Take();
  ASSERT_EQ(again.size(), 3u);
  EXPECT_EQ(again[0].payload, "a");
  EXPECT_TRUE(again[0].dup);
  EXPECT_EQ(again[1].payload, "b");
  EXPECT_TRUE(again[1].dup);
  EXPECT_EQ(again[2].kind, SentPacket::kPubrel);
  ASSERT_TRUE(restored.OnPuback(again[0].packet_id));
  EXPECT_THAT(next.TakePayloads(), ElementsAre("d"));
}

TEST_F(PersistentSessionTest, InboundQos2IdsAreStored) {
  Session& s = NewPersistent();
  s.SaveRecord(nullptr);
  s.AddInboundQos2(3);
  s.AddInboundQos2(4);
  ASSERT_TRUE(pstorage_->CommitNow());
  EXPECT_THAT(Load("p1")->inbound_qos2, ElementsAre(3, 4));
  s.ReleaseInboundQos2(3);
  ASSERT_TRUE(pstorage_->CommitNow());
  EXPECT_THAT(Load("p1")->inbound_qos2, ElementsAre(4));
}

// Redistributed queued entries of a persistent session leave its stored queue.
TEST_F(PersistentSessionTest, RedistributedQueuedMessagesLeaveTheStore) {
  limits_.max_inflight = 1;
  Session& s = NewPersistent();
  s.Attach(&client_, 65535);
  s.Deliver(Out("sent", 1, 7));
  s.Deliver(Out("queued-shared", 1, 7));
  s.Deliver(Out("queued-plain", 1));
  ASSERT_TRUE(pstorage_->CommitNow());
  EXPECT_EQ(store_->queue_stats("p1").count, 2u);
  s.Detach([](const OutboundMessage&, uint64_t) { return true; });
  ASSERT_TRUE(pstorage_->CommitNow());
  EXPECT_EQ(store_->queue_stats("p1").count, 1u);
  EXPECT_EQ(s.disk_queued_count(), 1u);
  FakeSessionClient next;
  s.Attach(&next, 65535);
  EXPECT_THAT(next.TakePayloads(), ElementsAre("queued-plain"));
}

}  // namespace
}  // namespace mqtt::session_testing
