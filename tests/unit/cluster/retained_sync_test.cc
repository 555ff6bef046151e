// SPDX-License-Identifier: Apache-2.0
// Retained messages replicated over real gRPC: 2 or 3 RetainedSyncs in one process, each with
// its own grpc::Server on 127.0.0.1, a real Router and (where a test needs one) a real Store in
// a temporary directory. Peers are wired by hand (PeerAlive / PeerDead / PeerGone, as the node's
// membership listener does). Every wait has a deadline, so a hang fails the test.
#include "cluster/retained_sync.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "node/persist/convert.h"
#include "tests/unit/storage/store_test_util.h"

namespace mqtt::cluster {
namespace {

using storage::testing_util::TempDir;

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(2));
  }
  return true;
}

// A worker's storage as a Session sees it: one batch, written by CommitNow.
class FakeStorage final : public SessionStorage {
 public:
  storage::Store* store() const override { return store_; }
  storage::Batch* batch() override { return store_ != nullptr ? &batch_ : nullptr; }
  uint64_t PutMessage(const Message&) override { return 0; }
  void HoldUntilCommitted(AckTokenPtr token) override {
    if (token != nullptr) held_.push_back(std::move(token));
  }
  bool CommitNow() override {
    bool ok = true;
    if (store_ != nullptr && !batch_.empty()) ok = store_->Write(std::move(batch_)).ok();
    batch_.Clear();
    held_.clear();
    return ok;
  }
  void StorageFailed(const absl::Status&) override {}
  void CountDrop(DropReason) override {}
  void ExpiryChanged(uint64_t, int64_t, int64_t) override {}
  SessionTotals* totals() override { return &totals_; }
  SessionTotals totals_;
  size_t held() const { return held_.size(); }

  storage::Store* store_ = nullptr;

 private:
  storage::Batch batch_;
  std::vector<AckTokenPtr> held_;
};

class CountingListener final : public AckListener {
 public:
  void OnDurable(uint64_t) override { ++acks; }
  std::atomic<int> acks{0};
};

struct Node {
  std::string id;
  std::string address;
  int port = 0;
  std::atomic<uint64_t> wall_ms{0};  // 0: the system clock
  std::unique_ptr<TempDir> dir;      // with a store: kept across restarts
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<Router> router;
  FakeStorage worker;
  std::unique_ptr<RetainedSync> sync;
  std::unique_ptr<grpc::Server> server;

  // A retained publish on one of this node's workers, committed at the end of its turn.
  void Publish(const std::string& topic, const std::string& payload, int64_t expires_at_ms = 0) {
    auto m = std::make_shared<Message>();
    m->topic = topic;
    m->payload = payload;
    m->qos = 1;
    m->retain = true;
    m->expires_at_ms = expires_at_ms;
    sync->PublishRetained(worker, m, nullptr);
    EXPECT_TRUE(worker.CommitNow());
  }
  std::optional<std::string> Retained(const std::string& topic) const {
    for (const MessagePtr& m : router->RetainedMatching(topic)) {
      if (m->topic == topic) return m->payload;
    }
    return std::nullopt;
  }
  std::optional<RetainedEntryInfo> Entry(const std::string& topic) const {
    for (RetainedEntryInfo& e : sync->Snapshot()) {
      if (e.topic == topic) return e;
    }
    return std::nullopt;
  }
  // The store's record of `topic`, tombstones included.
  std::optional<storage::v1::RetainedRecord> Record(const std::string& topic) const {
    std::optional<storage::v1::RetainedRecord> found;
    EXPECT_TRUE(store
                    ->LoadRetainedRecords(0,
                                          [&](std::string_view t, const auto& r) {
                                            if (t == topic) found = r;
                                            return absl::OkStatus();
                                          })
                    .ok());
    return found;
  }
  // A process kill as peers see it; the store stays on disk.
  void Kill() {
    if (server != nullptr) server->Shutdown(std::chrono::system_clock::now());
    server.reset();
    if (sync != nullptr) sync->Stop();
    sync.reset();
    store.reset();
    worker.store_ = nullptr;
  }
  ~Node() { Kill(); }
};

struct NodeOptions {
  absl::Duration sync_interval = absl::Seconds(30);  // only pushes and the PeerAlive sync
  absl::Duration collect_after_start = absl::Hours(1);
  absl::Duration tombstone_grace = absl::Seconds(1);
  bool with_store = false;
  uint64_t wall_ms = 0;
};

class RetainedSyncTest : public ::testing::Test {
 protected:
  Node* StartNode(const std::string& id, NodeOptions o = {}) {
    auto node = std::make_unique<Node>();
    node->id = id;
    if (o.with_store) node->dir = std::make_unique<TempDir>();
    nodes_.push_back(std::move(node));
    return Restart(nodes_.back().get(), o) ? nodes_.back().get() : nullptr;
  }

  // (Re)starts `node` as a process would: the store is opened, the router is loaded from it by
  // the broker's Recover, then the RetainedSync starts and its server listens.
  bool Restart(Node* node, NodeOptions o) {
    node->Kill();
    node->router = std::make_unique<Router>(ShareStrategy::kRoundRobin);
    if (node->dir != nullptr) {
      storage::StoreOptions so;
      so.path = node->dir->path();
      absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::Store::Open(so);
      EXPECT_TRUE(store.ok()) << store.status();
      if (!store.ok()) return false;
      node->store = std::move(*store);
      node->worker.store_ = node->store.get();
      EXPECT_TRUE(node->store
                      ->LoadRetained(UnixMs(),
                                     [&](std::string_view, const storage::MessageRecord& r) {
                                       node->router->SetRetained(persist::FromStored(0, r));
                                       return absl::OkStatus();
                                     })
                      .ok());
    }
    node->wall_ms = o.wall_ms;
    RetainedSyncOptions options;
    options.node_id = node->id;
    options.sync_interval = o.sync_interval;
    options.rpc_timeout = absl::Seconds(2);
    options.collect_after_start = o.collect_after_start;
    options.tombstone_grace = o.tombstone_grace;
    options.max_batch_bytes = 4096;  // several calls for the larger tests
    if (o.wall_ms != 0) options.wall_clock = [node] { return node->wall_ms.load(); };
    node->sync =
        std::make_unique<RetainedSync>(std::move(options), node->router.get(), node->store.get());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(node->port),
                             grpc::InsecureServerCredentials(), &node->port);
    builder.RegisterService(node->sync->service());
    node->server = builder.BuildAndStart();
    EXPECT_NE(node->server, nullptr);
    if (node->server == nullptr) return false;
    node->address = "127.0.0.1:" + std::to_string(node->port);
    absl::Status s = node->sync->Start(node->address);
    EXPECT_TRUE(s.ok()) << s;
    return s.ok();
  }

  // Every pair of running nodes learns of each other, as from membership events.
  void ConnectAll() {
    for (const auto& a : nodes_) {
      for (const auto& b : nodes_) {
        if (a != b && a->sync != nullptr && b->sync != nullptr) {
          a->sync->PeerAlive(b->id, b->address);
        }
      }
    }
  }

  bool AllHave(const std::string& topic, const std::optional<std::string>& payload) {
    for (const auto& n : nodes_) {
      if (n->sync != nullptr && n->Retained(topic) != payload) return false;
    }
    return true;
  }

  // A Push made by hand, as a peer `sender` would make it.
  static grpc::Status RawPush(const Node& to, const std::string& sender, const std::string& topic,
                              uint64_t hlc, const std::string& origin, const std::string& payload) {
    auto stub = v1::RetainedSync::NewStub(
        grpc::CreateChannel(to.address, grpc::InsecureChannelCredentials()));
    v1::RetainedPushRequest req;
    req.set_sender_node_id(sender);
    v1::RetainedChange* c = req.add_changes();
    c->set_topic(topic);
    c->set_hlc(hlc);
    c->set_origin(origin);
    if (payload.empty()) {
      c->set_tombstone(true);
    } else {
      c->mutable_message()->set_topic(topic);
      c->mutable_message()->set_payload(payload);
      c->mutable_message()->set_retain(true);
    }
    v1::RetainedPushResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    return stub->Push(&ctx, req, &resp);
  }

  std::vector<std::unique_ptr<Node>> nodes_;
};

TEST_F(RetainedSyncTest, SetOnOneNodeReachesEveryRouterAndAnswersWildcards) {
  Node* a = StartNode("a");
  Node* b = StartNode("b");
  Node* c = StartNode("c");
  ASSERT_TRUE(a && b && c);
  ConnectAll();
  const absl::Time start = absl::Now();
  a->Publish("home/kitchen/temp", "21");
  ASSERT_TRUE(WaitUntil([&] { return AllHave("home/kitchen/temp", "21"); }));
  std::cout << "[ measure  ] retained set seen by 2 peers in "
            << absl::FormatDuration(absl::Now() - start) << std::endl;
  ASSERT_EQ(c->router->RetainedMatching("home/+/temp").size(), 1u);
  EXPECT_EQ(c->router->RetainedMatching("home/#")[0]->payload, "21");
  std::optional<RetainedEntryInfo> e = b->Entry("home/kitchen/temp");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->origin, "a");
  EXPECT_EQ(e->payload_bytes, 2u);
  EXPECT_EQ(e->hlc, a->Entry("home/kitchen/temp")->hlc);
  EXPECT_FALSE(e->tombstone);
}

TEST_F(RetainedSyncTest, ConcurrentSetsConvergeToTheHigherHlcThenTheGreaterNodeId) {
  // Clocks frozen at the same millisecond: the first stamps of both nodes are equal.
  NodeOptions o;
  o.wall_ms = 1'000'000;
  Node* a = StartNode("a", o);
  Node* b = StartNode("b", o);
  ASSERT_TRUE(a && b);
  a->Publish("tie", "from-a");
  b->Publish("tie", "from-b");
  // b's clock is behind a's in this one: a's set wins although b's was made later.
  a->wall_ms = 2'000'000;
  a->Publish("clock", "from-a");
  b->Publish("clock", "from-b");
  ConnectAll();
  ASSERT_TRUE(WaitUntil([&] { return AllHave("tie", "from-b") && AllHave("clock", "from-a"); }))
      << *a->Retained("tie") << " " << *b->Retained("clock");
  EXPECT_EQ(a->Entry("tie")->hlc, b->Entry("tie")->hlc);
  EXPECT_EQ(a->Entry("tie")->origin, "b");
  // b has now observed a's clock: its next set wins everywhere though its wall clock is behind.
  b->Publish("clock", "from-b-again");
  ASSERT_TRUE(WaitUntil([&] { return AllHave("clock", "from-b-again"); }));
  EXPECT_GT(b->Entry("clock")->hlc, Hlc::FromWallMs(2'000'000));
}

TEST_F(RetainedSyncTest, DeleteRemovesEverywhereAndItsTombstoneBeatsAnOlderSetArrivingLate) {
  Node* a = StartNode("a");
  Node* b = StartNode("b");
  ASSERT_TRUE(a && b);
  ConnectAll();
  a->Publish("door", "open");
  ASSERT_TRUE(WaitUntil([&] { return AllHave("door", "open"); }));
  a->Publish("door", "");  // an empty retained payload deletes
  ASSERT_TRUE(WaitUntil([&] { return AllHave("door", std::nullopt); }));
  std::optional<RetainedEntryInfo> tombstone = b->Entry("door");
  ASSERT_TRUE(tombstone.has_value());
  EXPECT_TRUE(tombstone->tombstone);

  // A set older than the delete, from a third node, arrives late: ignored.
  ASSERT_TRUE(RawPush(*b, "z", "door", tombstone->hlc - 1, "z", "late").ok());
  ASSERT_TRUE(RawPush(*b, "z", "door", tombstone->hlc, "0", "late").ok());  // "0" < "a"
  EXPECT_EQ(b->Retained("door"), std::nullopt);
  EXPECT_EQ(b->Entry("door")->hlc, tombstone->hlc);
  // A newer one replaces the tombstone.
  ASSERT_TRUE(RawPush(*b, "z", "door", tombstone->hlc + 1, "z", "closed").ok());
  EXPECT_EQ(b->Retained("door"), "closed");
}

TEST_F(RetainedSyncTest, LateAndReturningNodesGetEverySetAndDeleteTheyMissed) {
  NodeOptions with_store;
  with_store.with_store = true;
  Node* a = StartNode("a", with_store);
  Node* b = StartNode("b");
  Node* c = StartNode("c", with_store);
  ASSERT_TRUE(a && b && c);
  ConnectAll();
  c->Publish("stale/0", "c-before");  // c has it, then goes away before it is deleted
  c->Publish("stale/1", "c-before");
  ASSERT_TRUE(WaitUntil([&] { return AllHave("stale/1", "c-before"); }));
  c->Kill();
  for (Node* n : {a, b}) n->sync->PeerDead("c");

  for (int i = 0; i < 200; ++i) a->Publish("site/" + std::to_string(i), "v" + std::to_string(i));
  // b deletes after it has seen the sets (otherwise they are concurrent, and the later hlc wins).
  ASSERT_TRUE(WaitUntil([&] { return b->router->RetainedMatching("site/+").size() == 200; }));
  for (int i = 0; i < 200; i += 2) b->Publish("site/" + std::to_string(i), "");
  a->Publish("stale/0", "");
  b->Publish("stale/1", "b-after");
  ASSERT_TRUE(WaitUntil([&] {
    return a->Retained("site/198") == std::nullopt && b->Retained("site/199") == "v199" &&
           a->Retained("stale/1") == "b-after" && b->Retained("stale/0") == std::nullopt;
  }));

  // c comes back with its store (its router holds the stale copies), having published one
  // more meanwhile while cut off; d joins with nothing.
  ASSERT_TRUE(Restart(c, with_store));
  EXPECT_EQ(c->Retained("stale/0"), "c-before");
  c->Publish("cut-off", "c-only");
  Node* d = StartNode("d");
  ASSERT_NE(d, nullptr);
  const absl::Time start = absl::Now();
  ConnectAll();
  ASSERT_TRUE(WaitUntil([&] {
    for (Node* n : {c, d}) {
      if (n->router->retained_count() != 100u + 2u) return false;  // odd sites, stale/1, cut-off
      if (n->Retained("site/198") != std::nullopt || n->Retained("site/199") != "v199" ||
          n->Retained("stale/0") != std::nullopt || n->Retained("stale/1") != "b-after") {
        return false;
      }
    }
    return AllHave("cut-off", "c-only");
  }));
  std::cout << "[ measure  ] 200 topics (100 deleted) synced to a returning and a new node in "
            << absl::FormatDuration(absl::Now() - start) << std::endl;
  // The routers can agree a moment before the last tombstone is recorded (seen once in a
  // fresh-clone run: 202 on c): wait for it, then check.
  WaitUntil([&] {
    for (Node* n : {a, b, c, d}) {
      if (n->sync->Snapshot().size() != 200u + 3u) return false;
    }
    return true;
  });
  for (Node* n : {a, b, c, d}) {
    EXPECT_EQ(n->router->retained_count(), 100u + 2u) << n->id;
    EXPECT_EQ(n->sync->Snapshot().size(), 200u + 3u) << n->id;  // with 101 tombstones
  }
  // Persisted on c: the delete as a tombstone, the later set as a record.
  ASSERT_TRUE(WaitUntil([&] {
    std::optional<storage::v1::RetainedRecord> r = c->Record("stale/0");
    return r.has_value() && r->tombstone() &&
           c->Record("stale/1")->message().payload() == "b-after";
  }));
  ASSERT_TRUE(WaitUntil([&] { return a->Record("cut-off").has_value(); }));
}

TEST_F(RetainedSyncTest, RestartKeepsVersionsSoAnOlderSetDoesNotWin) {
  NodeOptions o;
  o.with_store = true;
  o.wall_ms = 5'000'000;
  Node* a = StartNode("a", o);
  ASSERT_NE(a, nullptr);
  auto listener = std::make_shared<CountingListener>();
  auto ack = std::make_shared<AckToken>(nullptr, listener, 1);
  auto m = std::make_shared<Message>();
  m->topic = "k";
  m->payload = "new";
  m->retain = true;
  a->sync->PublishRetained(a->worker, m, ack);
  ack.reset();
  EXPECT_EQ(listener->acks, 0);  // held by the worker's batch until it is written
  EXPECT_GE(a->worker.held(), 1u);
  ASSERT_TRUE(a->worker.CommitNow());
  EXPECT_EQ(listener->acks, 1);
  a->Publish("d", "x");
  a->Publish("d", "");
  const uint64_t k_hlc = a->Entry("k")->hlc;
  const uint64_t d_hlc = a->Entry("d")->hlc;

  // Restarted with its wall clock far behind.
  o.wall_ms = 1'000;
  ASSERT_TRUE(Restart(a, o));
  EXPECT_EQ(a->Retained("k"), "new");
  ASSERT_TRUE(a->Entry("k").has_value());
  EXPECT_EQ(a->Entry("k")->hlc, k_hlc);
  EXPECT_EQ(a->Entry("k")->origin, "a");
  ASSERT_TRUE(a->Entry("d").has_value());
  EXPECT_TRUE(a->Entry("d")->tombstone);
  EXPECT_EQ(a->Entry("d")->hlc, d_hlc);

  ASSERT_TRUE(RawPush(*a, "b", "k", k_hlc - 1, "b", "older").ok());
  ASSERT_TRUE(RawPush(*a, "b", "d", d_hlc - 1, "b", "older").ok());
  EXPECT_EQ(a->Retained("k"), "new");
  EXPECT_EQ(a->Retained("d"), std::nullopt);
  // A local set after the restart is stamped above what was loaded, despite the clock.
  a->Publish("k", "newer");
  EXPECT_GT(a->Entry("k")->hlc, d_hlc);
  EXPECT_EQ(a->Record("k")->message().payload(), "newer");
}

TEST_F(RetainedSyncTest, TombstoneIsCollectedOnlyOnceEveryMemberHasIt) {
  NodeOptions o;
  o.sync_interval = absl::Milliseconds(100);
  o.collect_after_start = absl::ZeroDuration();
  o.tombstone_grace = absl::Seconds(2);
  o.with_store = true;
  Node* a = StartNode("a", o);
  Node* b = StartNode("b", o);
  Node* c = StartNode("c", o);
  ASSERT_TRUE(a && b && c);
  ConnectAll();
  a->Publish("t", "x");
  ASSERT_TRUE(WaitUntil([&] { return AllHave("t", "x"); }));

  // c is down (dead, still a member) while t is deleted: a and b keep the tombstone for it.
  c->Kill();
  for (Node* n : {a, b}) n->sync->PeerDead("c");
  a->Publish("t", "");
  ASSERT_TRUE(WaitUntil([&] { return b->Entry("t").has_value() && b->Entry("t")->tombstone; }));
  const uint64_t digests = a->sync->stats().digests + b->sync->stats().digests;
  ASSERT_TRUE(WaitUntil(
      [&] { return a->sync->stats().digests + b->sync->stats().digests >= digests + 6; }));
  for (Node* n : {a, b}) {
    ASSERT_TRUE(n->Entry("t").has_value()) << n->id;
    EXPECT_TRUE(n->Entry("t")->tombstone);
    EXPECT_TRUE(n->Record("t").has_value()) << n->id;
    EXPECT_EQ(n->sync->stats().tombstones_collected, 0u);
  }

  // c comes back with the old set in its store: it gets the delete, then all three collect.
  ASSERT_TRUE(Restart(c, o));
  EXPECT_EQ(c->Retained("t"), "x");
  ConnectAll();
  ASSERT_TRUE(WaitUntil([&] { return AllHave("t", std::nullopt); }));
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& n : nodes_) {
      if (n->Entry("t").has_value() || n->Record("t").has_value()) return false;
    }
    return true;
  }));
  for (const auto& n : nodes_) EXPECT_EQ(n->sync->stats().tombstones_collected, 1u) << n->id;
  // After the grace period nothing comes back (no node starts the tombstone over).
  const uint64_t periods = a->sync->stats().periods;
  ASSERT_TRUE(WaitUntil([&] { return a->sync->stats().periods >= periods + 25; }));
  for (const auto& n : nodes_) {
    EXPECT_EQ(n->sync->stats().tombstones, 0u) << n->id;
    EXPECT_EQ(n->sync->stats().tombstones_collected, 1u) << n->id;
    EXPECT_EQ(n->Retained("t"), std::nullopt) << n->id;
  }
}

TEST_F(RetainedSyncTest, GoneMemberNoLongerHoldsTombstonesBack) {
  NodeOptions o;
  o.sync_interval = absl::Milliseconds(100);
  o.collect_after_start = absl::ZeroDuration();
  Node* a = StartNode("a", o);
  Node* b = StartNode("b", o);
  ASSERT_TRUE(a && b);
  ConnectAll();
  a->Publish("t", "x");
  ASSERT_TRUE(WaitUntil([&] { return AllHave("t", "x"); }));
  b->Kill();
  a->sync->PeerDead("b");
  a->Publish("t", "");
  const uint64_t periods = a->sync->stats().periods;
  ASSERT_TRUE(WaitUntil([&] { return a->sync->stats().periods >= periods + 4; }));
  EXPECT_EQ(a->sync->stats().tombstones, 1u);  // b is dead, not gone: it may come back
  EXPECT_EQ(a->sync->stats().tombstones_collected, 0u);
  a->sync->PeerGone("b");
  ASSERT_TRUE(WaitUntil([&] { return a->sync->stats().tombstones_collected == 1; }));
  EXPECT_FALSE(a->Entry("t").has_value());
}

TEST_F(RetainedSyncTest, ExpiredMessageIsNotSentAndExpiresEverywhere) {
  NodeOptions o;
  o.sync_interval = absl::Milliseconds(100);
  Node* a = StartNode("a", o);
  Node* b = StartNode("b", o);
  ASSERT_TRUE(a && b);
  a->Publish("short", "x", MonotonicMs() + 150);
  a->Publish("long", "y", MonotonicMs() + 60'000);
  ASSERT_TRUE(WaitUntil([&] { return a->sync->stats().expired == 1; }));  // a's period
  EXPECT_EQ(a->Retained("short"), std::nullopt);
  ConnectAll();
  ASSERT_TRUE(WaitUntil([&] { return b->Retained("long") == "y"; }));
  EXPECT_EQ(b->Retained("short"), std::nullopt);
  ASSERT_TRUE(b->Entry("short").has_value());  // known there as deleted, at the same version
  EXPECT_TRUE(b->Entry("short")->tombstone);
  EXPECT_EQ(b->Entry("short")->hlc, a->Entry("short")->hlc);

  // One that expires after it was replicated goes on every node by itself.
  a->Publish("soon", "z", MonotonicMs() + 300);
  ASSERT_TRUE(WaitUntil([&] { return b->Retained("soon") == "z"; }));
  ASSERT_TRUE(WaitUntil([&] { return b->sync->stats().expired == 1; }));
  EXPECT_EQ(b->Retained("soon"), std::nullopt);
}

TEST_F(RetainedSyncTest, StoppedOrNotStartedServiceAnswersUnavailable) {
  Node* a = StartNode("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(RawPush(*a, "a", "t", 1, "a", "x").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  a->sync->Stop();
  EXPECT_EQ(RawPush(*a, "b", "t", 1, "b", "x").error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(a->Retained("t"), std::nullopt);
  EXPECT_TRUE(absl::IsFailedPrecondition(a->sync->Start()));
}

}  // namespace
}  // namespace mqtt::cluster
