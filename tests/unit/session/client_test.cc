// SPDX-License-Identifier: Apache-2.0
// Client + Shard + Broker in process: a real Broker on two IoWorkers that are never started
// (this thread polls their io_contexts), connections are FakeTransports, the peers are encoded
// and decoded with the codec. No sockets, no threads, no sleeps.
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "node/protocol/reason_codes.h"
#include "node/session/broker.h"
#include "tests/unit/session/test_util.h"
#include "tests/unit/storage/store_test_util.h"

namespace mqtt::session_testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

struct Forwarded {
  uint32_t node;
  MessagePtr message;
  AckTokenPtr ack;
};

class FakeRemote final : public RemoteDelivery {
 public:
  void Forward(SessionStorage&, uint32_t node, bool, const MessagePtr& message,
               const AckTokenPtr& ack, const SharedTarget*) override {
    forwarded.push_back({node, message, ack});
  }
  std::vector<Forwarded> forwarded;
};

class BrokerTest : public ::testing::Test {
 protected:
  void SetUp() override { MakeBroker(nullptr); }

  void TearDown() override {
    Poll();
    broker_.reset();
  }

  void MakeBroker(storage::Store* store) {
    broker_.reset();
    broker_ = std::make_unique<Broker>(options_, std::vector<net::IoWorker*>{&w0_, &w1_}, store);
  }

  void Poll() { PollUntilIdle(workers_); }

  // A client id whose session lives on `worker`.
  std::string IdOn(uint32_t worker, const std::string& prefix) {
    for (int i = 0;; ++i) {
      std::string id = prefix + "-" + std::to_string(i);
      if (broker_->HomeWorker(id) == worker) return id;
    }
  }

  // A new connection accepted on `worker` (not yet CONNECTed).
  TestPeer Open(uint32_t worker = 0, Version version = Version::kV311) {
    auto conn = std::make_shared<FakeConnection>();
    auto transport = std::make_shared<FakeTransport>(workers_[worker], conn);
    conn->current = transport;
    broker_->Accept(transport);
    Poll();
    EXPECT_TRUE(transport->started());
    return TestPeer(conn, version);
  }

  // The acknowledgement latency histogram of `qos`, over both workers.
  LatencySnapshot AckLatency(uint8_t qos) {
    LatencySnapshot merged;
    for (uint32_t i = 0; i < 2; ++i) merged.Add(broker_->shard(i).counters().ReadAckLatency(qos));
    return merged;
  }

  static Connect MakeConnect(const std::string& client_id, Version version, bool clean_start,
                             std::optional<uint32_t> expiry = std::nullopt) {
    Connect connect;
    connect.version = version;
    connect.client_id = client_id;
    connect.clean_start = clean_start;
    if (expiry) connect.properties.session_expiry_interval = *expiry;
    return connect;
  }

  // Connects and returns the CONNACK (fails the test if the first packet is not one).
  std::optional<Connack> ConnectPeer(TestPeer& peer, const Connect& connect) {
    peer.SendConnect(connect);
    Poll();
    std::vector<WirePacket> packets = peer.Take();
    if (packets.empty() || packets[0].type() != PacketType::kConnack) {
      ADD_FAILURE() << "expected CONNACK, got " << TypeNames(packets);
      return std::nullopt;
    }
    absl::StatusOr<Connack> connack = DecodeConnack(packets[0].body, connect.version);
    EXPECT_TRUE(connack.ok()) << connack.status();
    EXPECT_EQ(packets.size(), 1u) << TypeNames(packets);
    if (!connack.ok()) return std::nullopt;
    return *connack;
  }

  TestPeer Connected(const std::string& client_id, Version version = Version::kV311,
                     bool clean_start = true, std::optional<uint32_t> expiry = std::nullopt,
                     uint32_t accept_on = 0) {
    TestPeer peer = Open(accept_on);
    std::optional<Connack> connack =
        ConnectPeer(peer, MakeConnect(client_id, version, clean_start, expiry));
    EXPECT_TRUE(connack.has_value() && connack->reason_code == 0);
    return peer;
  }

  void Subscribe(TestPeer& peer, const std::string& filter, uint8_t qos, uint16_t id = 1) {
    peer.SendSubscribe(id, filter, qos);
    Poll();
    std::vector<WirePacket> packets = peer.Take();
    ASSERT_EQ(TypeNames(packets), "SUBACK");
    absl::StatusOr<Suback> suback = DecodeSuback(packets[0].body, peer.version());
    ASSERT_TRUE(suback.ok()) << suback.status();
    EXPECT_THAT(suback->reason_codes, ElementsAre(qos));
  }

  // The PUBLISH packets among `packets`, decoded.
  static std::vector<Publish> Publishes(const TestPeer& peer,
                                        const std::vector<WirePacket>& packets) {
    std::vector<Publish> result;
    for (const WirePacket& packet : packets) {
      if (packet.type() != PacketType::kPublish) continue;
      absl::StatusOr<Publish> publish = peer.DecodePublishPacket(packet);
      EXPECT_TRUE(publish.ok()) << publish.status();
      if (publish.ok()) result.push_back(*publish);
    }
    return result;
  }

  static std::vector<std::string> Payloads(const std::vector<Publish>& publishes) {
    std::vector<std::string> payloads;
    for (const Publish& p : publishes) payloads.push_back(p.payload);
    return payloads;
  }

  // (type, packet id) of each acknowledgement among `packets`, e.g. "PUBACK 3".
  static std::vector<std::string> Acks(const TestPeer& peer,
                                       const std::vector<WirePacket>& packets) {
    std::vector<std::string> acks;
    for (const WirePacket& packet : packets) {
      PacketType t = packet.type();
      if (t < PacketType::kPuback || t > PacketType::kPubcomp) continue;
      absl::StatusOr<PubAck> ack = peer.DecodeAckPacket(packet);
      EXPECT_TRUE(ack.ok()) << ack.status();
      if (ack.ok()) acks.push_back(TypeNames({packet}) + " " + std::to_string(ack->packet_id));
    }
    return acks;
  }

  BrokerOptions options_;
  net::IoWorker w0_{0};
  net::IoWorker w1_{1};
  std::vector<net::IoWorker*> workers_{&w0_, &w1_};
  std::unique_ptr<Broker> broker_;
};

// [MQTT-3.2.2-1], [MQTT-3.2.2-2], [MQTT-3.2.2-3]: session present is 0 for a clean start or a
// new session, 1 when a stored session is resumed.
TEST_F(BrokerTest, ConnackSessionPresentFalseThenTrue) {
  const std::string id = IdOn(1, "sp");
  {
    TestPeer first = Open();
    std::optional<Connack> connack = ConnectPeer(first, MakeConnect(id, Version::kV311, false));
    ASSERT_TRUE(connack.has_value());
    EXPECT_EQ(connack->reason_code, 0);
    EXPECT_FALSE(connack->session_present);
    first.SendDisconnect();
    Poll();
    EXPECT_TRUE(first.conn().closed);
  }
  {
    TestPeer second = Open();
    std::optional<Connack> connack = ConnectPeer(second, MakeConnect(id, Version::kV311, false));
    ASSERT_TRUE(connack.has_value());
    EXPECT_TRUE(connack->session_present);
    second.SendDisconnect();
    Poll();
  }
  TestPeer clean = Open();
  std::optional<Connack> connack = ConnectPeer(clean, MakeConnect(id, Version::kV311, true));
  ASSERT_TRUE(connack.has_value());
  EXPECT_FALSE(connack->session_present) << "clean session discards the stored one";
}

// A connection accepted on a worker other than its session's moves there (Detach/Attach), with
// the bytes read behind CONNECT.
TEST_F(BrokerTest, ConnectionMovesToItsHomeWorkerWithLeftoverInput) {
  const std::string id = IdOn(1, "move");
  TestPeer peer = Open(/*worker=*/0);
  std::string bytes;
  EncodeConnect(MakeConnect(id, Version::kV311, true), &bytes);
  Publish publish{"a/b", "x", 1, false, false, 9, {}};
  EncodePublish(publish, Version::kV311, &bytes);
  peer.Send(bytes);
  Poll();
  EXPECT_EQ(peer.conn().detaches, 1);
  std::vector<WirePacket> packets = peer.Take();
  EXPECT_EQ(TypeNames(packets), "CONNACK,PUBACK");
  EXPECT_THAT(Acks(peer, packets), ElementsAre("PUBACK 9"));
  EXPECT_EQ(peer.conn().current.lock()->worker(), &w1_);
}

// [MQTT-4.3.2-2]: QoS 1 PUBLISH is answered with PUBACK carrying its packet id.
TEST_F(BrokerTest, Qos1PublishGetsPuback) {
  TestPeer pub = Connected(IdOn(0, "pub"));
  pub.SendPublish("a/b", "hello", 1, 17);
  Poll();
  std::vector<WirePacket> packets = pub.Take();
  EXPECT_THAT(Acks(pub, packets), ElementsAre("PUBACK 17"));
  EXPECT_EQ(packets.size(), 1u);
}

// Only the node publishes under $SYS. A client's PUBLISH there is denied as an ACL deny is
// (Mosquitto's acl__check_dollar): 3.1.1 has no reason code, so QoS 1 gets its PUBACK and the
// message is dropped; 5.0 gets PUBACK/PUBREC 0x87 ("The PUBLISH is not authorized", MQTT 5.0
// 3.4.2.1 and 3.5.2.1); nothing reaches a $SYS subscriber, no retained copy is kept. The node's
// own $SYS publish (Broker::PublishLocal) still goes out.
TEST_F(BrokerTest, ClientPublishUnderSysIsRefusedTheNodesOwnIsNot) {
  TestPeer sub = Connected(IdOn(1, "sys-sub"));
  Subscribe(sub, "$SYS/#", 1);
  TestPeer v3 = Connected(IdOn(0, "pub3"));
  v3.SendPublish("$SYS/broker/uptime", "fake", 1, 7, false, /*retain=*/true);
  v3.SendPublish("$SYS/broker/version", "fake0", 0, 0, false, /*retain=*/true);
  Poll();
  EXPECT_THAT(Acks(v3, v3.Take()), ElementsAre("PUBACK 7"));
  TestPeer v5 = Open(0, Version::kV5);
  ASSERT_TRUE(ConnectPeer(v5, MakeConnect(IdOn(0, "pub5"), Version::kV5, true)).has_value());
  v5.SendPublish("$SYS/broker/uptime", "fake1", 1, 8);
  v5.SendPublish("$SYS/broker/uptime", "fake2", 2, 9);
  Poll();
  std::vector<WirePacket> packets = v5.Take();
  EXPECT_THAT(Acks(v5, packets), ElementsAre("PUBACK 8", "PUBREC 9"));
  for (const WirePacket& packet : packets) {
    absl::StatusOr<PubAck> ack = v5.DecodeAckPacket(packet);
    ASSERT_TRUE(ack.ok()) << ack.status();
    EXPECT_EQ(ack->reason_code, rc::kNotAuthorized);
  }
  EXPECT_THAT(sub.Take(), IsEmpty());
  EXPECT_EQ(broker_->router().retained_count(), 0u);

  auto own = std::make_shared<Message>();
  own->topic = "$SYS/broker/version";
  own->payload = "mqttd";
  w0_.Post([this, own] { broker_->PublishLocal(0, own); });
  Poll();
  EXPECT_THAT(Payloads(Publishes(sub, sub.Take())), ElementsAre("mqttd"));
}

// mqttd_puback_latency_seconds: a QoS 1 delivery is measured at its PUBACK, a QoS 2 one at its
// PUBCOMP (not at PUBREC); an acknowledgement of an unknown packet id records nothing.
TEST_F(BrokerTest, AckLatencyRecordedAtPubackAndPubcomp) {
  TestPeer sub = Connected(IdOn(1, "lat-sub"));
  Subscribe(sub, "lat/#", 2);
  TestPeer pub = Connected(IdOn(0, "lat-pub"));
  pub.SendPublish("lat/1", "one", 1, 1);
  pub.SendPublish("lat/2", "two", 2, 2);
  Poll();
  std::vector<Publish> got = Publishes(sub, sub.Take());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(AckLatency(1).count, 0u);
  sub.SendAck(PacketType::kPuback, got[0].packet_id);
  sub.SendAck(PacketType::kPubrec, got[1].packet_id);
  Poll();
  sub.Take();
  EXPECT_EQ(AckLatency(1).count, 1u);
  EXPECT_EQ(AckLatency(2).count, 0u) << "PUBREC is not the end of a QoS 2 delivery";
  sub.SendAck(PacketType::kPubcomp, got[1].packet_id);
  sub.SendAck(PacketType::kPuback, 999);
  Poll();
  const LatencySnapshot q1 = AckLatency(1), q2 = AckLatency(2);
  EXPECT_EQ(q1.count, 1u);
  EXPECT_EQ(q2.count, 1u);
  uint64_t in_buckets = 0;
  for (uint64_t n : q2.buckets) in_buckets += n;
  EXPECT_EQ(in_buckets, 1u);
  EXPECT_GT(q2.sum_ns, 0u);
}

// mqttd_connections{listener,protocol}: counted when the CONNACK accepts, uncounted when the
// connection ends, summed over workers (the fake transport is a "tcp" one).
TEST_F(BrokerTest, ConnectionsCountedByListenerAndProtocolVersion) {
  auto read = [this](uint64_t opened[4][3], uint64_t closed[4][3]) {
    for (uint32_t i = 0; i < 2; ++i) broker_->shard(i).counters().ReadConnections(opened, closed);
  };
  TestPeer v3 = Connected(IdOn(0, "conn3"));
  TestPeer v5 = Open(1, Version::kV5);
  ASSERT_TRUE(ConnectPeer(v5, MakeConnect(IdOn(0, "conn5"), Version::kV5, true)).has_value());
  uint64_t opened[4][3] = {}, closed[4][3] = {};
  read(opened, closed);
  EXPECT_EQ(opened[0][1], 1u);  // tcp, 3.1.1
  EXPECT_EQ(opened[0][2], 1u);  // tcp, 5.0
  EXPECT_EQ(closed[0][1] + closed[0][2], 0u);
  v3.SendDisconnect();
  Poll();
  uint64_t opened2[4][3] = {}, closed2[4][3] = {};
  read(opened2, closed2);
  EXPECT_EQ(opened2[0][1], 1u);
  EXPECT_EQ(closed2[0][1], 1u);
  EXPECT_EQ(closed2[0][2], 0u);
}

// [MQTT-4.3.3-2]: a QoS 2 PUBLISH re-sent before PUBREL is acknowledged again but not
// delivered again; after PUBREL/PUBCOMP the id may carry a new message.
TEST_F(BrokerTest, Qos2ExactlyOnceOnResentPublish) {
  TestPeer sub = Connected(IdOn(1, "sub"));
  Subscribe(sub, "t/#", 2);
  TestPeer pub = Connected(IdOn(0, "pub"));

  pub.SendPublish("t/1", "once", 2, 5);
  Poll();
  EXPECT_THAT(Acks(pub, pub.Take()), ElementsAre("PUBREC 5"));
  std::vector<Publish> got = Publishes(sub, sub.Take());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "once");
  EXPECT_EQ(got[0].qos, 2);

  pub.SendPublish("t/1", "once", 2, 5, /*dup=*/true);
  Poll();
  EXPECT_THAT(Acks(pub, pub.Take()), ElementsAre("PUBREC 5"));
  EXPECT_THAT(sub.Take(), IsEmpty()) << "delivered twice";

  pub.SendAck(PacketType::kPubrel, 5);
  Poll();
  EXPECT_THAT(Acks(pub, pub.Take()), ElementsAre("PUBCOMP 5"));

  pub.SendPublish("t/1", "again", 2, 5);
  Poll();
  EXPECT_THAT(Acks(pub, pub.Take()), ElementsAre("PUBREC 5"));
  EXPECT_THAT(Payloads(Publishes(sub, sub.Take())), ElementsAre("again"));
}

// Outbound QoS 2 towards a subscriber: PUBLISH, PUBREC -> PUBREL, PUBCOMP; the window slot is
// freed by PUBCOMP only.
TEST_F(BrokerTest, Qos2ToSubscriberCompletesWithPubrelAndPubcomp) {
  TestPeer sub = Connected(IdOn(1, "sub"));
  Subscribe(sub, "t/#", 2);
  TestPeer pub = Connected(IdOn(0, "pub"));
  pub.SendPublish("t/1", "q2", 2, 1);
  Poll();
  std::vector<Publish> got = Publishes(sub, sub.Take());
  ASSERT_EQ(got.size(), 1u);
  sub.SendAck(PacketType::kPubrec, got[0].packet_id);
  Poll();
  EXPECT_THAT(Acks(sub, sub.Take()), ElementsAre("PUBREL " + std::to_string(got[0].packet_id)));
  sub.SendAck(PacketType::kPubcomp, got[0].packet_id);
  Poll();
  EXPECT_THAT(sub.Take(), IsEmpty());
  EXPECT_FALSE(sub.conn().closed);
}

// [MQTT-4.6.0-2]: PUBACK/PUBREC go in the order the PUBLISHes arrived.
TEST_F(BrokerTest, AcknowledgementsInArrivalOrderMixedQos) {
  TestPeer pub = Connected(IdOn(0, "pub"));
  std::string bytes;
  for (uint16_t id = 1; id <= 6; ++id) {
    Publish p{"a/" + std::to_string(id),
              "x",
              static_cast<uint8_t>(id % 2 == 0 ? 2 : 1),
              false,
              false,
              id,
              {}};
    EncodePublish(p, Version::kV311, &bytes);
  }
  pub.Send(bytes);
  Poll();
  EXPECT_THAT(Acks(pub, pub.Take()),
              ElementsAre("PUBACK 1", "PUBREC 2", "PUBACK 3", "PUBREC 4", "PUBACK 5", "PUBREC 6"));
}

// A subscription matching the topic gets the message at min(published, granted) QoS
// [MQTT-3.8.4-6]; a subscriber on another worker gets it through that worker's inbox.
TEST_F(BrokerTest, SubscribeThenPublishIsDeliveredToAnotherClient) {
  TestPeer sub = Connected(IdOn(1, "sub"));
  Subscribe(sub, "s/+", 1);
  TestPeer pub = Connected(IdOn(0, "pub"));
  pub.SendPublish("s/x", "q2-downgraded", 2, 3);
  pub.SendPublish("s/y", "q0", 0);
  pub.SendPublish("other", "not-matching", 1, 4);
  Poll();
  std::vector<Publish> got = Publishes(sub, sub.Take());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].topic, "s/x");
  EXPECT_EQ(got[0].payload, "q2-downgraded");
  EXPECT_EQ(got[0].qos, 1);
  EXPECT_NE(got[0].packet_id, 0);
  EXPECT_EQ(got[1].payload, "q0");
  EXPECT_EQ(got[1].qos, 0);
  sub.SendAck(PacketType::kPuback, got[0].packet_id);
  Poll();
  EXPECT_FALSE(sub.conn().closed);
}

// [MQTT-3.1.4-2] (5.0: [MQTT-3.1.4-3]): a second CONNECT with the same client id closes the
// first connection; a 5.0 client is told DISCONNECT 0x8E (Session taken over).
TEST_F(BrokerTest, TakeoverClosesTheFirstConnectionWithSessionTakenOver) {
  const std::string id = IdOn(1, "dup");
  TestPeer first = Connected(id, Version::kV5, true, 0);
  TestPeer second = Open(0);
  std::optional<Connack> connack = ConnectPeer(second, MakeConnect(id, Version::kV5, true, 0));
  ASSERT_TRUE(connack.has_value());
  EXPECT_EQ(connack->reason_code, 0);
  std::vector<WirePacket> packets = first.Take();
  ASSERT_EQ(TypeNames(packets), "DISCONNECT");
  absl::StatusOr<Disconnect> disconnect = DecodeDisconnect(packets[0].body, Version::kV5);
  ASSERT_TRUE(disconnect.ok()) << disconnect.status();
  EXPECT_EQ(disconnect->reason_code, 0x8E);
  EXPECT_TRUE(first.conn().closed);
  EXPECT_FALSE(second.conn().closed);
  // The new connection works.
  second.SendPublish("a", "b", 1, 2);
  Poll();
  EXPECT_THAT(Acks(second, second.Take()), ElementsAre("PUBACK 2"));
}

TEST_F(BrokerTest, TakeoverOf311ClientClosesWithoutDisconnectPacket) {
  const std::string id = IdOn(0, "dup311");
  TestPeer first = Connected(id);
  TestPeer second = Connected(id);
  EXPECT_TRUE(first.conn().closed);
  EXPECT_THAT(first.Take(), IsEmpty()) << "3.1.1 has no server DISCONNECT";
  EXPECT_FALSE(second.conn().closed);
}

// Takeover that resumes the session: unacknowledged messages go to the new connection with DUP
// [MQTT-4.4.0-1] and CONNACK says session present.
TEST_F(BrokerTest, TakeoverResumingTheSessionResendsUnacknowledgedWithDup) {
  const std::string id = IdOn(1, "resume");
  TestPeer first = Connected(id, Version::kV311, /*clean_start=*/false);
  Subscribe(first, "r/#", 1);
  TestPeer pub = Connected(IdOn(0, "pub"));
  pub.SendPublish("r/1", "unacked", 1, 1);
  Poll();
  std::vector<Publish> got = Publishes(first, first.Take());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_FALSE(got[0].dup);

  TestPeer second = Open(1);
  second.SendConnect(MakeConnect(id, Version::kV311, false));
  Poll();
  std::vector<WirePacket> packets = second.Take();
  ASSERT_EQ(TypeNames(packets), "CONNACK,PUBLISH");
  absl::StatusOr<Connack> connack = DecodeConnack(packets[0].body, Version::kV311);
  ASSERT_TRUE(connack.ok());
  EXPECT_TRUE(connack->session_present);
  std::vector<Publish> again = Publishes(second, packets);
  EXPECT_EQ(again[0].payload, "unacked");
  EXPECT_TRUE(again[0].dup);
  EXPECT_EQ(again[0].packet_id, got[0].packet_id);
  EXPECT_TRUE(first.conn().closed);
}

// [MQTT-3.1.2-8]: the will is published when the connection closes without DISCONNECT.
TEST_F(BrokerTest, WillPublishedWhenTheConnectionDropsWithoutDisconnect) {
  TestPeer watcher = Connected(IdOn(0, "watch"));
  Subscribe(watcher, "will/#", 1);
  TestPeer peer = Open(1);
  Connect connect = MakeConnect(IdOn(1, "dying"), Version::kV311, true);
  connect.will = Will{"will/dying", "gone", 1, false, {}};
  ASSERT_TRUE(ConnectPeer(peer, connect).has_value());
  Poll();
  EXPECT_THAT(watcher.Take(), IsEmpty()) << "no will while connected";
  peer.conn().current.lock()->PeerClosed();
  Poll();
  std::vector<Publish> got = Publishes(watcher, watcher.Take());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].topic, "will/dying");
  EXPECT_EQ(got[0].payload, "gone");
  EXPECT_EQ(got[0].qos, 1);
}

// The will is also published when the server closes the connection for a protocol error.
TEST_F(BrokerTest, WillPublishedWhenTheServerClosesForAProtocolError) {
  TestPeer watcher = Connected(IdOn(0, "watch"));
  Subscribe(watcher, "will/#", 0);
  TestPeer peer = Open(0);
  Connect connect = MakeConnect(IdOn(0, "bad"), Version::kV311, true);
  connect.will = Will{"will/bad", "protocol-error", 0, false, {}};
  ASSERT_TRUE(ConnectPeer(peer, connect).has_value());
  std::string second_connect;
  EncodeConnect(connect, &second_connect);
  peer.Send(second_connect);  // [MQTT-3.1.0-2]: a second CONNECT is a protocol error
  Poll();
  EXPECT_TRUE(peer.conn().closed);
  EXPECT_THAT(Payloads(Publishes(watcher, watcher.Take())), ElementsAre("protocol-error"));
}

// [MQTT-3.1.2-10]: after a normal DISCONNECT the will is deleted, never published.
TEST_F(BrokerTest, WillNotPublishedAfterDisconnect) {
  TestPeer watcher = Connected(IdOn(0, "watch"));
  Subscribe(watcher, "will/#", 1);
  TestPeer peer = Open(1);
  Connect connect = MakeConnect(IdOn(1, "polite"), Version::kV311, true);
  connect.will = Will{"will/polite", "should-not-appear", 1, false, {}};
  ASSERT_TRUE(ConnectPeer(peer, connect).has_value());
  peer.SendDisconnect();
  Poll();
  EXPECT_TRUE(peer.conn().closed);
  EXPECT_THAT(watcher.Take(), IsEmpty());
}

// 5.0 DISCONNECT with reason 0x04 (Disconnect with Will Message) keeps the will.
TEST_F(BrokerTest, WillPublishedAfterDisconnectWithWillMessage) {
  TestPeer watcher = Connected(IdOn(0, "watch"));
  Subscribe(watcher, "will/#", 1);
  TestPeer peer = Open(1);
  Connect connect = MakeConnect(IdOn(1, "v5will"), Version::kV5, true, 0);
  connect.will = Will{"will/v5", "with-will", 0, false, {}};
  ASSERT_TRUE(ConnectPeer(peer, connect).has_value());
  peer.SendDisconnect(0x04);
  Poll();
  EXPECT_THAT(Payloads(Publishes(watcher, watcher.Take())), ElementsAre("with-will"));
}

// 5.0 Will Delay [MQTT-3.1.3-9]: the will waits while the session lives; it is published when
// the session ends (here: a clean-start connection replaces it) ...
TEST_F(BrokerTest, DelayedWillPublishedWhenTheSessionEnds) {
  TestPeer watcher = Connected(IdOn(0, "watch"));
  Subscribe(watcher, "will/#", 1);
  const std::string id = IdOn(1, "delayed");
  TestPeer peer = Open(1);
  Connect connect = MakeConnect(id, Version::kV5, true, 300);
  connect.will = Will{"will/delayed", "late", 0, false, {}};
  connect.will->properties.will_delay_interval = 60;
  ASSERT_TRUE(ConnectPeer(peer, connect).has_value());
  peer.conn().current.lock()->PeerClosed();
  Poll();
  EXPECT_THAT(watcher.Take(), IsEmpty()) << "published before the will delay";
  TestPeer fresh = Connected(id, Version::kV5, /*clean_start=*/true, 0);
  EXPECT_THAT(Payloads(Publishes(watcher, watcher.Take())), ElementsAre("late"));
}

// ... and never when a new connection resumes the session in time.
TEST_F(BrokerTest, DelayedWillNotPublishedWhenTheSessionIsResumed) {
  TestPeer watcher = Connected(IdOn(0, "watch"));
  Subscribe(watcher, "will/#", 1);
  const std::string id = IdOn(1, "delayed");
  TestPeer peer = Open(1);
  Connect connect = MakeConnect(id, Version::kV5, true, 300);
  connect.will = Will{"will/delayed", "late", 0, false, {}};
  connect.will->properties.will_delay_interval = 60;
  ASSERT_TRUE(ConnectPeer(peer, connect).has_value());
  peer.conn().current.lock()->PeerClosed();
  Poll();
  TestPeer resumed = Connected(id, Version::kV5, /*clean_start=*/false, 300);
  Poll();
  // The resumed session ends now: the old connection's will must not come back.
  Properties end_now;
  end_now.session_expiry_interval = 0;
  resumed.SendDisconnect(0, end_now);
  Poll();
  EXPECT_EQ(broker_->shard(1).FindSession(id), nullptr);
  EXPECT_THAT(watcher.Take(), IsEmpty());
}

// 5.0 [MQTT-4.3.3-4]... a PUBREC with a Reason Code of 0x80 or more ends the QoS 2 exchange:
// the sender sends PUBREL only for a PUBREC below 0x80 (5.0 section 4.3.3), and the window slot
// is freed (found by this test: an error PUBREC used to be answered with a PUBREL).
TEST_F(BrokerTest, ErrorPubrecEndsTheExchangeWithoutPubrel) {
  TestPeer sub = Connected(IdOn(1, "sub"), Version::kV5, true, 0);
  Subscribe(sub, "t/#", 2);
  TestPeer pub = Connected(IdOn(0, "pub"));
  pub.SendPublish("t/1", "refused", 2, 1);
  pub.SendPublish("t/1", "next", 2, 2);
  Poll();
  std::vector<Publish> got = Publishes(sub, sub.Take());
  ASSERT_EQ(got.size(), 2u);
  sub.SendAck(PacketType::kPubrec, got[0].packet_id, 0x80);
  Poll();
  EXPECT_THAT(Acks(sub, sub.Take()), IsEmpty()) << "PUBREL after an error PUBREC";
}

// 5.0 Session Expiry Interval 0: the session ends with the connection [MQTT-3.1.2-23]; its
// subscription is gone and nothing is kept for the client.
TEST_F(BrokerTest, SessionWithExpiryZeroEndsWithTheConnection) {
  const std::string id = IdOn(1, "short");
  TestPeer sub = Connected(id, Version::kV5, true, 0);
  Subscribe(sub, "e/#", 1);
  const size_t subscriptions = broker_->router().subscription_count();
  sub.SendDisconnect();
  Poll();
  EXPECT_EQ(broker_->shard(1).FindSession(id), nullptr);
  EXPECT_EQ(broker_->router().subscription_count(), subscriptions - 1);
  TestPeer pub = Connected(IdOn(0, "pub"));
  pub.SendPublish("e/1", "lost", 1, 1);
  Poll();
  TestPeer again = Open(0);
  std::optional<Connack> connack = ConnectPeer(again, MakeConnect(id, Version::kV5, false, 60));
  ASSERT_TRUE(connack.has_value());
  EXPECT_FALSE(connack->session_present);
  Poll();
  EXPECT_THAT(again.Take(), IsEmpty());
}

// A session with expiry > 0 outlives its connection and queues for the client...
TEST_F(BrokerTest, OfflineSessionQueuesUntilTheClientReturns) {
  const std::string id = IdOn(1, "long");
  TestPeer sub = Connected(id, Version::kV5, true, 300);
  Subscribe(sub, "e/#", 1);
  sub.SendDisconnect();
  Poll();
  ASSERT_NE(broker_->shard(1).FindSession(id), nullptr);
  TestPeer pub = Connected(IdOn(0, "pub"));
  pub.SendPublish("e/1", "q0-dropped", 0);
  pub.SendPublish("e/2", "kept", 1, 1);
  Poll();
  TestPeer again = Open(0);
  again.SendConnect(MakeConnect(id, Version::kV5, false, 300));
  Poll();
  std::vector<WirePacket> packets = again.Take();
  ASSERT_EQ(TypeNames(packets), "CONNACK,PUBLISH");
  EXPECT_TRUE(DecodeConnack(packets[0].body, Version::kV5)->session_present);
  EXPECT_THAT(Payloads(Publishes(again, packets)), ElementsAre("kept"));
}

// ...until its Session Expiry Interval passes [MQTT-3.1.2-23]: then the shard's once-a-second
// sweep ends it and its subscription stops receiving. Needs the sweep timer: runs ~1 s.
TEST_F(BrokerTest, OfflineSessionExpiresAndStopsReceiving) {
  const std::string id = IdOn(1, "expiring");
  TestPeer sub = Connected(id, Version::kV5, true, 1);
  Subscribe(sub, "x/#", 1);
  sub.SendDisconnect();
  Poll();
  ASSERT_NE(broker_->shard(1).FindSession(id), nullptr);
  // Timers start after the disconnect, so the first sweep (1 s later) is past the deadline.
  broker_->Start();
  Poll();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
  while (broker_->shard(1).FindSession(id) != nullptr &&
         std::chrono::steady_clock::now() < deadline) {
    w1_.io().run_for(std::chrono::milliseconds(20));
    w0_.io().poll();
  }
  EXPECT_EQ(broker_->shard(1).FindSession(id), nullptr) << "session did not expire";
  for (auto& shard : {0u, 1u}) broker_->shard(shard).StopTimers();
  Poll();
  TestPeer pub = Connected(IdOn(0, "pub"));
  pub.SendPublish("x/1", "after-expiry", 1, 1);
  Poll();
  TestPeer again = Open(0);
  std::optional<Connack> connack = ConnectPeer(again, MakeConnect(id, Version::kV5, false, 60));
  ASSERT_TRUE(connack.has_value());
  EXPECT_FALSE(connack->session_present);
  Poll();
  EXPECT_THAT(again.Take(), IsEmpty());
}

// [MQTT-4.8.2-4] (5.0 section 4.8.2): a shared-subscription QoS 1 message not acknowledged by a
// member that disconnects goes to another member of the group.
TEST_F(BrokerTest, SharedGroupRedistributesUnacknowledgedQos1OnDisconnect) {
  TestPeer a = Connected(IdOn(0, "member-a"), Version::kV5, true, 0);
  TestPeer b = Connected(IdOn(1, "member-b"), Version::kV5, true, 0);
  Subscribe(a, "$share/g/j/#", 1);
  Subscribe(b, "$share/g/j/#", 1);
  TestPeer pub = Connected(IdOn(0, "pub"));
  pub.SendPublish("j/1", "job", 1, 1);
  Poll();
  std::vector<Publish> got_a = Publishes(a, a.Take());
  std::vector<Publish> got_b = Publishes(b, b.Take());
  ASSERT_EQ(got_a.size() + got_b.size(), 1u) << "one member gets a shared message";
  TestPeer& holder = got_a.empty() ? b : a;
  TestPeer& other = got_a.empty() ? a : b;
  holder.conn().current.lock()->PeerClosed();  // without PUBACK
  Poll();
  std::vector<Publish> moved = Publishes(other, other.Take());
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].payload, "job");
  EXPECT_EQ(moved[0].qos, 1);
}

TEST_F(BrokerTest, SharedGroupDoesNotRedistributeAcknowledgedMessages) {
  TestPeer a = Connected(IdOn(0, "member-a"), Version::kV5, true, 0);
  TestPeer b = Connected(IdOn(1, "member-b"), Version::kV5, true, 0);
  Subscribe(a, "$share/g/j/#", 1);
  Subscribe(b, "$share/g/j/#", 1);
  TestPeer pub = Connected(IdOn(0, "pub"));
  pub.SendPublish("j/1", "job", 1, 1);
  Poll();
  std::vector<Publish> got_a = Publishes(a, a.Take());
  std::vector<Publish> got_b = Publishes(b, b.Take());
  ASSERT_EQ(got_a.size() + got_b.size(), 1u);
  TestPeer& holder = got_a.empty() ? b : a;
  TestPeer& other = got_a.empty() ? a : b;
  holder.SendAck(PacketType::kPuback, (got_a.empty() ? got_b : got_a)[0].packet_id);
  Poll();
  holder.conn().current.lock()->PeerClosed();
  Poll();
  EXPECT_THAT(other.Take(), IsEmpty());
}

// The delivery path to a remote node (issue 10 part 2): a node route gets one copy however many
// filters match, and the publisher's PUBACK waits until the remote releases the token.
TEST_F(BrokerTest, RemoteRouteGetsOneCopyAndPubackWaitsForTheRemote) {
  FakeRemote remote;
  broker_->set_remote_delivery(&remote);
  broker_->router().AddNodeRoute("t/#", 7);
  broker_->router().AddNodeRoute("t/x", 7);
  TestPeer pub = Connected(IdOn(1, "pub"));
  pub.SendPublish("t/x", "remote", 1, 11);
  Poll();
  ASSERT_EQ(remote.forwarded.size(), 1u);
  EXPECT_EQ(remote.forwarded[0].node, 7u);
  EXPECT_EQ(remote.forwarded[0].message->topic, "t/x");
  EXPECT_EQ(remote.forwarded[0].message->payload, "remote");
  ASSERT_NE(remote.forwarded[0].ack, nullptr);
  EXPECT_THAT(pub.Take(), IsEmpty()) << "PUBACK before the remote node confirmed";

  // A later QoS 0 publish does not overtake the held acknowledgement, and carries no token.
  pub.SendPublish("t/y", "q0", 0);
  pub.SendPublish("local/only", "q1", 1, 12);
  Poll();
  ASSERT_EQ(remote.forwarded.size(), 2u);
  EXPECT_EQ(remote.forwarded[1].ack, nullptr);
  EXPECT_THAT(pub.Take(), IsEmpty()) << "PUBACK 12 overtook PUBACK 11 [MQTT-4.6.0-2]";

  remote.forwarded[0].ack.reset();  // the remote node made it durable
  Poll();
  EXPECT_THAT(Acks(pub, pub.Take()), ElementsAre("PUBACK 11", "PUBACK 12"));
}

TEST_F(BrokerTest, RemoteTokenCancelledMeansNoPuback) {
  FakeRemote remote;
  broker_->set_remote_delivery(&remote);
  broker_->router().AddNodeRoute("t/#", 7);
  TestPeer pub = Connected(IdOn(0, "pub"));
  pub.SendPublish("t/x", "remote", 1, 11);
  Poll();
  ASSERT_EQ(remote.forwarded.size(), 1u);
  remote.forwarded[0].ack->Cancel();
  remote.forwarded[0].ack.reset();
  Poll();
  EXPECT_THAT(pub.Take(), IsEmpty()) << "acknowledged what the remote could not keep";
}

// ---------------------------------------------------------------------------------------------
// Admin: Broker::ListSessions and Broker::Kick (`mqttctl sessions`, `mqttctl kick`).

template <typename T>
T Ready(std::future<T>& future) {
  EXPECT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  return future.get();
}

std::vector<std::string> Ids(const std::vector<SessionInfo>& sessions) {
  std::vector<std::string> ids;
  for (const SessionInfo& s : sessions) ids.push_back(s.client_id);
  return ids;
}

// Every worker's sessions, sorted by client id, with their state; the filter and the limit.
TEST_F(BrokerTest, ListSessionsGathersEveryWorkerSortedWithTheirState) {
  const std::string a = IdOn(0, "a"), b = IdOn(1, "b"), c = IdOn(1, "c");
  TestPeer pa = Connected(a);
  TestPeer pb = Connected(b, Version::kV5, true, kSessionNeverExpires);
  Subscribe(pb, "x/1", 1);
  Subscribe(pb, "x/2", 0, 2);
  TestPeer pc = Connected(c, Version::kV5, true, 300);
  Subscribe(pc, "q/#", 1);
  pc.SendDisconnect();
  Poll();
  pa.SendPublish("q/1", "one", 1, 1);
  pa.SendPublish("q/2", "two", 1, 2);
  Poll();

  std::future<std::vector<SessionInfo>> all = broker_->ListSessions({});
  Poll();
  std::vector<SessionInfo> sessions = Ready(all);
  ASSERT_THAT(Ids(sessions), ElementsAre(a, b, c));
  EXPECT_TRUE(sessions[0].connected);
  EXPECT_EQ(sessions[0].protocol_level, 4);
  EXPECT_FALSE(sessions[0].persistent);
  EXPECT_EQ(sessions[0].expiry_interval, 0u);
  EXPECT_EQ(sessions[1].protocol_level, 5);
  EXPECT_TRUE(sessions[1].persistent);
  EXPECT_EQ(sessions[1].subscriptions, 2u);
  EXPECT_EQ(sessions[1].expiry_interval, kSessionNeverExpires);
  EXPECT_FALSE(sessions[2].connected);
  EXPECT_TRUE(sessions[2].persistent);
  EXPECT_EQ(sessions[2].inflight + sessions[2].queued, 2u);
  EXPECT_EQ(sessions[2].expiry_interval, 300u);

  std::future<std::vector<SessionInfo>> first_two = broker_->ListSessions({"", 2});
  std::future<std::vector<SessionInfo>> only_c = broker_->ListSessions({c, 1000});
  std::future<std::vector<SessionInfo>> unknown = broker_->ListSessions({"nobody", 1000});
  Poll();
  EXPECT_THAT(Ids(Ready(first_two)), ElementsAre(a, b));
  EXPECT_THAT(Ids(Ready(only_c)), ElementsAre(c));
  EXPECT_THAT(Ready(unknown), IsEmpty());
}

// 5.0: DISCONNECT 0x98 (Administrative action), then the connection closes and a clean session
// ends with it.
TEST_F(BrokerTest, KickSendsAdministrativeActionToA5ClientAndEndsItsCleanSession) {
  const std::string id = IdOn(1, "kick5");
  TestPeer peer = Connected(id, Version::kV5, true, 0);
  Subscribe(peer, "k/#", 1);
  std::future<bool> kicked = broker_->Kick(id, rc::kAdministrativeAction);
  Poll();
  EXPECT_TRUE(Ready(kicked));
  std::vector<WirePacket> packets = peer.Take();
  ASSERT_EQ(TypeNames(packets), "DISCONNECT");
  absl::StatusOr<Disconnect> disconnect = DecodeDisconnect(packets[0].body, Version::kV5);
  ASSERT_TRUE(disconnect.ok()) << disconnect.status();
  EXPECT_EQ(disconnect->reason_code, 0x98);
  EXPECT_TRUE(peer.conn().closed);
  EXPECT_EQ(broker_->shard(1).FindSession(id), nullptr);
  EXPECT_EQ(broker_->router().subscription_count(), 0u);
}

// 3.1.1: the connection closes without a packet; a persistent session stays, offline, and a
// second kick finds nothing connected.
TEST_F(BrokerTest, KickClosesA311ClientAndKeepsItsPersistentSessionOffline) {
  const std::string id = IdOn(0, "kick311");
  TestPeer peer = Connected(id, Version::kV311, /*clean_start=*/false);
  std::future<bool> kicked = broker_->Kick(id, rc::kAdministrativeAction);
  Poll();
  EXPECT_TRUE(Ready(kicked));
  EXPECT_THAT(peer.Take(), IsEmpty());
  EXPECT_TRUE(peer.conn().closed);
  Session* session = broker_->shard(0).FindSession(id);
  ASSERT_NE(session, nullptr);
  EXPECT_EQ(session->client(), nullptr);
  std::future<bool> again = broker_->Kick(id, rc::kAdministrativeAction);
  std::future<bool> unknown = broker_->Kick("nobody", rc::kAdministrativeAction);
  Poll();
  EXPECT_FALSE(Ready(again));
  EXPECT_FALSE(Ready(unknown));
}

// ---------------------------------------------------------------------------------------------
// With a Store: persistent sessions.

class PersistentBrokerTest : public BrokerTest {
 protected:
  void SetUp() override {
    storage::StoreOptions options;
    options.path = dir_.path() + "/db";
    auto store = storage::Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    MakeBroker(store_.get());
  }
  void TearDown() override {
    BrokerTest::TearDown();
    store_.reset();
  }

  storage::testing_util::TempDir dir_;
  std::unique_ptr<storage::Store> store_;
};

// [MQTT-4.6.0-2]: the PUBACK of a message stored for a persistent subscriber waits for the
// turn's batch; a later PUBLISH that needs no storage is acknowledged after it, not before.
TEST_F(PersistentBrokerTest, PubackOfStoredMessageIsNotOvertaken) {
  const std::string id = IdOn(0, "durable");
  TestPeer sub = Connected(id, Version::kV311, /*clean_start=*/false);
  Subscribe(sub, "d/#", 1);
  sub.SendDisconnect();
  Poll();
  TestPeer pub = Connected(IdOn(0, "pub"));
  std::string bytes;
  EncodePublish(Publish{"d/1", "stored", 1, false, false, 1, {}}, Version::kV311, &bytes);
  EncodePublish(Publish{"nobody", "fast", 1, false, false, 2, {}}, Version::kV311, &bytes);
  pub.Send(bytes);
  EXPECT_EQ(pub.conn().current.lock()->unsent_bytes(), 0u)
      << "an acknowledgement was encoded before the batch was written";
  Poll();
  EXPECT_THAT(Acks(pub, pub.Take()), ElementsAre("PUBACK 1", "PUBACK 2"));
  EXPECT_EQ(store_->queue_stats(id).count, 1u) << "stored before PUBACK";

  TestPeer again = Open(0);
  again.SendConnect(MakeConnect(id, Version::kV311, false));
  Poll();
  std::vector<WirePacket> packets = again.Take();
  ASSERT_EQ(TypeNames(packets), "CONNACK,PUBLISH");
  EXPECT_THAT(Payloads(Publishes(again, packets)), ElementsAre("stored"));
}

// A persistent subscriber on another worker: the message goes through the publishing worker's
// outbox; the PUBACK still waits for durability and the subscriber gets one copy.
TEST_F(PersistentBrokerTest, CrossWorkerPersistentDeliveryThenPuback) {
  const std::string id = IdOn(1, "durable");
  TestPeer sub = Connected(id, Version::kV311, false);
  Subscribe(sub, "d/#", 1);
  TestPeer pub = Connected(IdOn(0, "pub"));
  pub.SendPublish("d/1", "cross", 1, 4);
  EXPECT_EQ(pub.conn().current.lock()->unsent_bytes(), 0u);
  Poll();
  EXPECT_THAT(Acks(pub, pub.Take()), ElementsAre("PUBACK 4"));
  std::vector<Publish> got = Publishes(sub, sub.Take());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "cross");
  EXPECT_EQ(store_->queue_stats(Shard::OutboxId(0)).count, 0u) << "outbox entry left behind";
}

// A client's QoS 1 for a persistent session on another worker skips the outbox (its AckToken is
// all the publisher's state there is): one batch, the subscriber worker's, before the PUBACK.
// QoS 2 still goes through the publishing worker's outbox (issue 15).
TEST_F(PersistentBrokerTest, CrossWorkerQos1SkipsTheOutboxQos2DoesNot) {
  const std::string id = IdOn(1, "durable");
  TestPeer sub = Connected(id, Version::kV311, false);
  Subscribe(sub, "d/#", 2);
  sub.SendDisconnect();
  Poll();
  TestPeer pub = Connected(IdOn(0, "pub"));
  const uint64_t before = store_->stats().batches;
  pub.SendPublish("d/1", "one", 1, 4);
  Poll();
  EXPECT_THAT(Acks(pub, pub.Take()), ElementsAre("PUBACK 4"));
  EXPECT_EQ(store_->stats().batches - before, 1u) << "QoS 1 went through the outbox";
  EXPECT_EQ(store_->queue_stats(id).count, 1u) << "stored before PUBACK";
  const uint64_t mid = store_->stats().batches;
  pub.SendPublish("d/2", "two", 2, 5);
  Poll();
  EXPECT_THAT(Acks(pub, pub.Take()), ElementsAre("PUBREC 5"));
  EXPECT_EQ(store_->stats().batches - mid, 2u) << "QoS 2: the outbox, then the subscriber's";
  EXPECT_EQ(store_->queue_stats(id).count, 2u);
  EXPECT_EQ(store_->queue_stats(Shard::OutboxId(0)).count, 0u) << "outbox entry left behind";
}

// Session present after a restart of the broker over the same store [MQTT-3.2.2-3].
TEST_F(PersistentBrokerTest, SessionAndQueueSurviveABrokerRestart) {
  const std::string id = IdOn(1, "survivor");
  {
    TestPeer sub = Connected(id, Version::kV311, false);
    Subscribe(sub, "r/#", 1);
    sub.SendDisconnect();
    Poll();
    TestPeer pub = Connected(IdOn(0, "pub"));
    pub.SendPublish("r/1", "queued", 1, 1);
    Poll();
    EXPECT_THAT(Acks(pub, pub.Take()), ElementsAre("PUBACK 1"));
  }
  MakeBroker(store_.get());
  ASSERT_TRUE(broker_->Recover().ok());
  TestPeer again = Open(0);
  again.SendConnect(MakeConnect(id, Version::kV311, false));
  Poll();
  std::vector<WirePacket> packets = again.Take();
  ASSERT_EQ(TypeNames(packets), "CONNACK,PUBLISH");
  EXPECT_TRUE(DecodeConnack(packets[0].body, Version::kV311)->session_present);
  EXPECT_THAT(Payloads(Publishes(again, packets)), ElementsAre("queued"));
}

}  // namespace
}  // namespace mqtt::session_testing
