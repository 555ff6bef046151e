// SPDX-License-Identifier: Apache-2.0
// Registry over libraft: 3 (and a 4th) Registry instances in one process, each with its own raft
// port on 127.0.0.1 and its own data directory, with short timings. Every wait has a deadline,
// so a hang fails the test instead of stalling ctest.
#include "cluster/registry.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "tests/unit/cluster/test_util.h"

namespace mqtt::cluster {
namespace {

constexpr absl::Duration kWait = absl::Seconds(10);  // bound of every wait for convergence

using test_util::FreePort;

bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout = kWait) {
  return test_util::WaitUntil(done, timeout);
}

// What a node's listener saw.
struct Recorder {
  absl::Mutex mu;
  std::vector<RegistryChange> changes ABSL_GUARDED_BY(mu);

  size_t count() {
    absl::MutexLock lock(&mu);
    return changes.size();
  }
  std::vector<RegistryChange> all() {
    absl::MutexLock lock(&mu);
    return changes;
  }
};

struct Node {
  std::string id;
  std::string address;
  std::string dir;
  std::shared_ptr<Recorder> recorder;  // replaced at each start (a restart replays the log)
  std::unique_ptr<Registry> registry;

  bool running() const { return registry != nullptr; }
  void Stop() { registry.reset(); }
};

using Result = absl::StatusOr<std::vector<RegistryChange>>;

Result ProposeAndWait(Registry& registry, std::vector<v1::RegistryCommand> commands,
                      absl::Duration timeout = kWait) {
  return test_util::ProposeAndWait(registry, std::move(commands), timeout);
}

absl::Status ChangeAndWait(const std::function<void(Registry::DoneCallback)>& change) {
  struct Shared {
    absl::Notification done;
    absl::Status status;
  };
  auto shared = std::make_shared<Shared>();
  change([shared](absl::Status s) {
    shared->status = std::move(s);
    shared->done.Notify();
  });
  if (!shared->done.WaitForNotificationWithTimeout(absl::Seconds(20))) {
    return absl::DeadlineExceededError("test: no callback in time");
  }
  return shared->status;
}

Result Register(Registry& registry, const std::string& client, const std::string& node) {
  return ProposeAndWait(registry, {RegisterCommand(client, node)});
}

class RegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { std::signal(SIGPIPE, SIG_IGN); }  // as mqttd does

  void SetUp() override {
    std::string root = (std::filesystem::temp_directory_path() / "registry_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(root.data()), nullptr);
    root_ = root;
  }
  void TearDown() override {
    for (auto& node : nodes_) node->Stop();
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  Node* NewNode(const std::string& id) {
    auto node = std::make_unique<Node>();
    node->id = id;
    node->address = absl::StrCat("127.0.0.1:", FreePort());
    node->dir = root_ + "/" + id;
    nodes_.push_back(std::move(node));
    return nodes_.back().get();
  }

  RegistryOptions Options(const Node& node, std::vector<RegistryPeer> bootstrap) {
    RegistryOptions o;
    o.node_id = node.id;
    o.raft_address = node.address;
    o.data_dir = node.dir;
    o.bootstrap = std::move(bootstrap);
    o.election_timeout = election_timeout_;
    o.heartbeat_timeout = absl::Milliseconds(50);
    o.connect_retry_delay = absl::Milliseconds(50);
    o.proposal_timeout = proposal_timeout_;
    o.member_change_timeout = absl::Seconds(15);
    o.snapshot_threshold = snapshot_threshold_;
    o.snapshot_trailing = snapshot_trailing_;
    return o;
  }

  // (Re)starts `node` on its address and directory.
  void Start(Node* node, std::vector<RegistryPeer> bootstrap) {
    node->recorder = std::make_shared<Recorder>();
    std::shared_ptr<Recorder> recorder = node->recorder;
    node->registry = std::make_unique<Registry>(Options(*node, std::move(bootstrap)),
                                                [recorder](const RegistryChange& change) {
                                                  absl::MutexLock lock(&recorder->mu);
                                                  recorder->changes.push_back(change);
                                                });
    const absl::Status status = node->registry->Start();
    ASSERT_TRUE(status.ok()) << status;
  }

  std::vector<RegistryPeer> Bootstrap() const {
    std::vector<RegistryPeer> peers;
    for (int i = 0; i < 3; ++i) peers.push_back({nodes_[i]->id, nodes_[i]->address});
    return peers;
  }

  // n1, n2, n3, each bootstrapping the same three voters.
  void StartCluster() {
    for (int i = 1; i <= 3; ++i) NewNode(absl::StrCat("n", i));
    for (int i = 0; i < 3; ++i) Start(nodes_[i].get(), Bootstrap());
  }

  // The leader once exactly one running node leads and every running voter agrees on it.
  Node* WaitForLeader(absl::Duration timeout = kWait) {
    Node* leader = nullptr;
    const bool found = WaitUntil(
        [&] {
          leader = nullptr;
          for (auto& node : nodes_) {
            if (!node->running() || !node->registry->IsLeader()) continue;
            if (leader != nullptr) return false;
            leader = node.get();
          }
          if (leader == nullptr) return false;
          for (int i = 0; i < 3; ++i) {
            if (nodes_[i]->running() && nodes_[i]->registry->LeaderId() != leader->id) return false;
          }
          return true;
        },
        timeout);
    return found ? leader : nullptr;
  }

  Node* AFollower(const Node* leader) {
    for (int i = 0; i < 3; ++i) {
      if (nodes_[i].get() != leader && nodes_[i]->running()) return nodes_[i].get();
    }
    return nullptr;
  }

  std::string root_;
  std::vector<std::unique_ptr<Node>> nodes_;
  absl::Duration election_timeout_ = absl::Milliseconds(300);
  absl::Duration proposal_timeout_ = absl::Seconds(2);
  unsigned snapshot_threshold_ = 1024;
  unsigned snapshot_trailing_ = 128;
};

bool HolderIs(const Node& node, const std::string& client, const std::string& holder,
              uint64_t epoch) {
  std::optional<RegistryHolder> h = node.registry->Holder(client);
  return h.has_value() && h->node_id == holder && h->epoch == epoch;
}

TEST(RegistryIdTest, RaftIdIsStableNonZeroAndDistinct) {
  EXPECT_NE(Registry::RaftId("n1"), 0u);
  EXPECT_EQ(Registry::RaftId("n1"), Registry::RaftId(std::string("n1")));
  EXPECT_NE(Registry::RaftId("n1"), Registry::RaftId("n2"));
  EXPECT_NE(Registry::RaftId(""), 0u);
}

TEST_F(RegistryTest, RejectsABootstrapListWithoutItself) {
  Node* node = NewNode("n1");
  Node* other = NewNode("n2");
  Registry registry(Options(*node, {{other->id, other->address}}));
  EXPECT_EQ(registry.Start().code(), absl::StatusCode::kInvalidArgument);
  // Not running: callbacks come at once.
  Result result = ProposeAndWait(registry, {RegisterCommand("c", "n1")});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(RegistryTest, ReportsAPortInUseAndCanStartOnceItIsFree) {
  Node* node = NewNode("n1");
  Start(node, {{node->id, node->address}});
  Node* twin = NewNode("n1b");
  twin->address = node->address;
  Registry registry(Options(*twin, {{twin->id, twin->address}}));
  const absl::Status status = registry.Start();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("raft_start"), std::string::npos) << status;
  EXPECT_NE(status.message().find(node->address), std::string::npos) << status;
  // Once the port is free, a second Start of the same Registry succeeds (it used to answer
  // "already started" forever, and mqttd retried it every tick without a registry).
  node->Stop();
  const absl::Status again = registry.Start();
  ASSERT_TRUE(again.ok()) << again;
  EXPECT_TRUE(WaitUntil([&] { return registry.IsLeader(); }));
}

TEST_F(RegistryTest, ElectsOneLeaderThatEveryNodeNames) {
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(nodes_[i]->registry->LeaderAddress(), leader->address);
  }
  std::vector<RegistryMember> members = leader->registry->Members();
  ASSERT_EQ(members.size(), 3u);
  for (const RegistryMember& m : members) {
    EXPECT_EQ(m.role, RegistryMember::Role::kVoter);
    EXPECT_FALSE(m.node_id.empty());
    EXPECT_EQ(m.raft_id, Registry::RaftId(m.node_id));
  }
}

TEST_F(RegistryTest, ProposalsOnTheLeaderAreAppliedAlikeOnEveryNode) {
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  Result first =
      ProposeAndWait(*leader->registry, {RegisterCommand("c1", "n1"), RegisterCommand("c2", "n2")});
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ((*first)[0].client_id, "c1");
  EXPECT_EQ((*first)[0].holder.epoch, 1u);
  EXPECT_FALSE((*first)[0].previous.has_value());
  EXPECT_EQ((*first)[1].holder.epoch, 2u);
  Result second = Register(*leader->registry, "c1", "n3");
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].holder.epoch, 3u);
  ASSERT_TRUE((*second)[0].previous.has_value());
  EXPECT_EQ((*second)[0].previous->node_id, "n1");
  Result third = ProposeAndWait(*leader->registry, {ReleaseCommand("c2", "n2", 2)});
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ((*third)[0].kind, RegistryChange::Kind::kReleased);

  for (int i = 0; i < 3; ++i) {
    Node& node = *nodes_[i];
    ASSERT_TRUE(WaitUntil([&] { return node.recorder->count() == 4; })) << node.id;
    EXPECT_TRUE(HolderIs(node, "c1", "n3", 3)) << node.id;
    EXPECT_FALSE(node.registry->Holder("c2").has_value()) << node.id;
    std::vector<RegistryChange> seen = node.recorder->all();
    ASSERT_EQ(seen.size(), 4u);
    EXPECT_EQ(seen[2].client_id, "c1");
    EXPECT_EQ(seen[2].holder.node_id, "n3");
    EXPECT_EQ(seen[2].holder.epoch, 3u);
    ASSERT_TRUE(seen[2].previous.has_value()) << node.id;
    EXPECT_EQ(seen[2].previous->node_id, "n1");
    EXPECT_EQ(seen[2].previous->epoch, 1u);
    EXPECT_EQ(seen[3].kind, RegistryChange::Kind::kReleased);
  }
}

TEST_F(RegistryTest, AFollowerRefusesAndNamesTheLeader) {
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  Node* follower = AFollower(leader);
  EXPECT_FALSE(follower->registry->IsLeader());
  Result result = Register(*follower->registry, "c1", follower->id);
  ASSERT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition) << result.status();
  EXPECT_NE(result.status().message().find(
                absl::StrCat("leader is ", leader->id, " at ", leader->address)),
            std::string::npos)
      << result.status();
  EXPECT_FALSE(follower->registry->Holder("c1").has_value());
}

TEST_F(RegistryTest, ConcurrentProposalsShareEntries) {
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  const RegistryStats before = leader->registry->stats();
  constexpr int kThreads = 8, kPerThread = 25, kTotal = kThreads * kPerThread;
  struct Tally {  // shared: a callback may outlive a failed wait
    absl::Mutex mu;
    int ok ABSL_GUARDED_BY(mu) = 0;
    int failed ABSL_GUARDED_BY(mu) = 0;
    absl::flat_hash_set<uint64_t> epochs ABSL_GUARDED_BY(mu);
  };
  auto tally = std::make_shared<Tally>();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string client = absl::StrCat("c-", t, "-", i);
        leader->registry->Propose({RegisterCommand(client, leader->id)}, [tally, client](Result r) {
          absl::MutexLock lock(&tally->mu);
          if (r.ok() && r->size() == 1 && (*r)[0].client_id == client) {
            ++tally->ok;
            tally->epochs.insert((*r)[0].holder.epoch);
          } else {
            ++tally->failed;
          }
        });
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(WaitUntil([&] {
    absl::MutexLock lock(&tally->mu);
    return tally->ok + tally->failed == kTotal;
  }));
  {
    absl::MutexLock lock(&tally->mu);
    EXPECT_EQ(tally->ok, kTotal);
    EXPECT_EQ(tally->epochs.size(), static_cast<size_t>(kTotal));
  }
  const RegistryStats after = leader->registry->stats();
  const uint64_t entries = after.entries_applied - before.entries_applied;
  std::cerr << kTotal << " proposals in " << entries << " entries\n";
  EXPECT_GE(entries, 1u);
  EXPECT_LT(entries, static_cast<uint64_t>(kTotal));
  EXPECT_EQ(after.entries_proposed - before.entries_proposed, entries);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitUntil([&] { return nodes_[i]->registry->size() == kTotal; })) << i;
  }
}

TEST_F(RegistryTest, ANewLeaderTakesOverWhenTheLeaderStops) {
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  ASSERT_TRUE(Register(*leader->registry, "before", leader->id).ok());
  const std::string old_id = leader->id;
  leader->Stop();
  const absl::Time stopped = absl::Now();
  Node* next = WaitForLeader(absl::Seconds(5));
  ASSERT_NE(next, nullptr);
  EXPECT_NE(next->id, old_id);
  std::cerr << "new leader after " << absl::Now() - stopped << "\n";
  Result result = Register(*next->registry, "after", next->id);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ((*result)[0].holder.epoch, 2u);
  for (int i = 0; i < 3; ++i) {
    if (!nodes_[i]->running()) continue;
    EXPECT_TRUE(WaitUntil([&] { return HolderIs(*nodes_[i], "after", next->id, 2); }));
    EXPECT_TRUE(HolderIs(*nodes_[i], "before", old_id, 1));
  }
}

TEST_F(RegistryTest, AMinorityCannotCommitUntilAPeerReturns) {
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  ASSERT_TRUE(Register(*leader->registry, "c1", "n1").ok());
  // Leave one node alone (the leader, the harder case: it accepts the entry, cannot commit it).
  std::vector<Node*> stopped;
  for (int i = 0; i < 3; ++i) {
    if (nodes_[i].get() == leader) continue;
    nodes_[i]->Stop();
    stopped.push_back(nodes_[i].get());
  }
  const absl::Time start = absl::Now();
  Result result = Register(*leader->registry, "c2", leader->id);
  EXPECT_FALSE(result.ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(3)) << "bounded by proposal_timeout";
  std::cerr << "minority proposal: " << result.status() << "\n";
  EXPECT_FALSE(leader->registry->Holder("c2").has_value());
  // A majority again: the same node commits (a retried proposal), and the returning peer has
  // everything.
  Start(stopped[0], Bootstrap());
  Node* now = WaitForLeader();
  ASSERT_NE(now, nullptr);
  Result retried = Register(*now->registry, "c3", now->id);
  ASSERT_TRUE(retried.ok()) << retried.status();
  ASSERT_TRUE(WaitUntil([&] { return stopped[0]->registry->Holder("c3").has_value(); }));
  EXPECT_TRUE(HolderIs(*stopped[0], "c1", "n1", 1));
}

TEST_F(RegistryTest, AProposalThatCannotCommitTimesOut) {
  election_timeout_ = absl::Seconds(2);  // the lone leader steps down only after this
  proposal_timeout_ = absl::Milliseconds(200);
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  for (int i = 0; i < 3; ++i) {
    if (nodes_[i].get() != leader) nodes_[i]->Stop();
  }
  const absl::Time start = absl::Now();
  Result result = Register(*leader->registry, "c1", leader->id);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kDeadlineExceeded) << result.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
}

TEST_F(RegistryTest, ARestartedNodeCatchesUp) {
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  ASSERT_TRUE(Register(*leader->registry, "c1", "n1").ok());
  Node* follower = AFollower(leader);
  ASSERT_TRUE(WaitUntil([&] { return follower->registry->Holder("c1").has_value(); }));
  follower->Stop();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(Register(*leader->registry, absl::StrCat("down-", i), leader->id).ok());
  }
  Start(follower, Bootstrap());  // same directory: no second bootstrap
  EXPECT_TRUE(WaitUntil([&] { return HolderIs(*follower, "down-4", leader->id, 6); }));
  EXPECT_TRUE(HolderIs(*follower, "c1", "n1", 1));
  EXPECT_EQ(follower->registry->size(), 6u);
}

TEST_F(RegistryTest, AJoiningNodeIsAddedAsStandbyThenVoter) {
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  ASSERT_TRUE(Register(*leader->registry, "c1", "n1").ok());
  Node* n4 = NewNode("n4");
  Start(n4, {});  // join: waits to be added
  EXPECT_FALSE(n4->registry->Holder("c1").has_value());
  absl::Status added = ChangeAndWait([&](Registry::DoneCallback done) {
    leader->registry->AddMember(n4->id, n4->address, /*voter=*/false, std::move(done));
  });
  ASSERT_TRUE(added.ok()) << added;
  EXPECT_TRUE(WaitUntil([&] { return HolderIs(*n4, "c1", "n1", 1); }));
  auto role_of = [&](const std::string& id) {
    for (const RegistryMember& m : leader->registry->Members()) {
      if (m.node_id == id) return m.role;
    }
    return RegistryMember::Role::kSpare;
  };
  EXPECT_EQ(role_of("n4"), RegistryMember::Role::kStandby);
  added = ChangeAndWait([&](Registry::DoneCallback done) {
    leader->registry->AddMember(n4->id, n4->address, /*voter=*/true, std::move(done));
  });
  ASSERT_TRUE(added.ok()) << added;
  EXPECT_EQ(role_of("n4"), RegistryMember::Role::kVoter);
  // Asked again: already so.
  EXPECT_TRUE(ChangeAndWait([&](Registry::DoneCallback done) {
                leader->registry->AddMember(n4->id, n4->address, true, std::move(done));
              }).ok());
  // Four voters: one follower down still leaves a majority.
  AFollower(leader)->Stop();
  Result result = Register(*leader->registry, "c2", "n4");
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(WaitUntil([&] { return HolderIs(*n4, "c2", "n4", 2); }));
  // And out again.
  absl::Status removed = ChangeAndWait(
      [&](Registry::DoneCallback done) { leader->registry->RemoveMember("n4", std::move(done)); });
  ASSERT_TRUE(removed.ok()) << removed;
  EXPECT_EQ(leader->registry->Members().size(), 3u);
  removed = ChangeAndWait(
      [&](Registry::DoneCallback done) { leader->registry->RemoveMember("n4", std::move(done)); });
  EXPECT_EQ(removed.code(), absl::StatusCode::kNotFound) << removed;
}

TEST_F(RegistryTest, MemberChangesOnAFollowerFail) {
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  Node* follower = AFollower(leader);
  absl::Status status = ChangeAndWait([&](Registry::DoneCallback done) {
    follower->registry->AddMember("n9", "127.0.0.1:1", true, std::move(done));
  });
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
}

TEST_F(RegistryTest, SnapshotsReachARestartedNode) {
  snapshot_threshold_ = 8;
  snapshot_trailing_ = 2;
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  Node* follower = AFollower(leader);
  follower->Stop();
  constexpr int kClients = 40;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(Register(*leader->registry, absl::StrCat("c", i), leader->id).ok()) << i;
  }
  EXPECT_GT(leader->registry->stats().snapshots_taken, 0u);
  // The leader's log no longer holds what the follower misses: it installs its snapshot.
  Start(follower, Bootstrap());
  ASSERT_TRUE(WaitUntil([&] { return follower->registry->size() == kClients; }));
  EXPECT_TRUE(HolderIs(*follower, "c39", leader->id, kClients));
  EXPECT_TRUE(HolderIs(*follower, "c0", leader->id, 1));
  EXPECT_GT(follower->registry->stats().snapshots_restored, 0u);
  // A whole-cluster restart: each node loads its own snapshot and log, and a new leader's
  // barrier commits what is left so that every node applies it.
  for (auto& node : nodes_) node->Stop();
  for (auto& node : nodes_) Start(node.get(), Bootstrap());
  for (auto& node : nodes_) {
    EXPECT_GT(node->registry->stats().snapshots_restored, 0u) << node->id;
    EXPECT_TRUE(WaitUntil([&] { return node->registry->size() == kClients; })) << node->id;
  }
  leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  Result result = Register(*leader->registry, "c0", leader->id);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ((*result)[0].holder.epoch, kClients + 1u);
}

TEST(RegistrySnapshotTest, ThresholdIsTheConfiguredOneOrAQuarterOfTheClients) {
  EXPECT_EQ(SnapshotThresholdFor(1024, 0), 1024u);
  EXPECT_EQ(SnapshotThresholdFor(1024, 4096), 1024u);
  EXPECT_EQ(SnapshotThresholdFor(1024, 1000000), 250000u);
  EXPECT_EQ(SnapshotThresholdFor(8, 1000), 250u);
}

// With a fixed threshold of 8, 400 clients registered one entry each would take ~50 snapshots,
// each of the whole registry; as the threshold follows the registry's size, the count grows with
// its logarithm (~15 here).
TEST_F(RegistryTest, SnapshotsGrowFartherApartAsTheRegistryGrows) {
  snapshot_threshold_ = 8;
  snapshot_trailing_ = 2;
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  constexpr int kClients = 400;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(Register(*leader->registry, absl::StrCat("c", i), leader->id).ok()) << i;
  }
  const uint64_t taken = leader->registry->stats().snapshots_taken;
  EXPECT_GT(taken, 0u);
  EXPECT_LE(taken, 25u);
}

TEST_F(RegistryTest, StopAnswersEveryPendingProposal) {
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  absl::Mutex mu;
  int answered = 0, unexpected = 0;
  constexpr int kProposals = 100;
  for (int i = 0; i < kProposals; ++i) {
    leader->registry->Propose({RegisterCommand(absl::StrCat("c", i), "n1")}, [&](Result r) {
      absl::MutexLock lock(&mu);
      ++answered;
      const absl::StatusCode code = r.status().code();
      if (code != absl::StatusCode::kOk && code != absl::StatusCode::kUnavailable) ++unexpected;
    });
  }
  leader->Stop();  // joins the raft thread: every callback has run by now
  absl::MutexLock lock(&mu);
  EXPECT_EQ(answered, kProposals);
  EXPECT_EQ(unexpected, 0);
}

}  // namespace
}  // namespace mqtt::cluster
