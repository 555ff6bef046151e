// SPDX-License-Identifier: Apache-2.0
// RegistryClient over real gRPC: 3 Registries (libraft on 127.0.0.1, short timings) in one
// process, each with a RegistryClient whose service runs on a grpc::Server of its own; node ids
// map to gRPC addresses through a std::map, as membership will. Every wait has a deadline, so a
// hang fails the test instead of stalling ctest. Times are printed.
#include "cluster/registry_client.h"

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
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

using Result = absl::StatusOr<std::vector<RegistryChange>>;

Result ProposeAndWait(RegistryClient& client, std::vector<v1::RegistryCommand> commands,
                      absl::Duration timeout = kWait) {
  return test_util::ProposeAndWait(client, std::move(commands), timeout);
}

// node id -> gRPC address, filled as the servers start; read from gRPC and raft threads.
struct AddressBook {
  absl::Mutex mu;
  std::map<std::string, std::string> addresses ABSL_GUARDED_BY(mu);

  void Set(const std::string& id, const std::string& address) {
    absl::MutexLock lock(&mu);
    addresses[id] = address;
  }
  std::string Get(const std::string& id) {
    absl::MutexLock lock(&mu);
    auto it = addresses.find(id);
    return it == addresses.end() ? std::string() : it->second;
  }
};

struct Node {
  std::string id;
  std::string raft_address;
  std::string grpc_address;
  std::unique_ptr<Registry> registry;
  std::unique_ptr<RegistryClient> client;
  std::unique_ptr<grpc::Server> server;

  bool running() const { return registry != nullptr; }
  // As a killed process looks to its peers. The server goes first (its calls in flight wait on
  // the Registry, each within its proposal timeout), then the client, then the Registry.
  void Stop() {
    if (server != nullptr) server->Shutdown(std::chrono::system_clock::now());
    server.reset();
    client.reset();
    registry.reset();
  }
  ~Node() { Stop(); }
};

class RegistryClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { std::signal(SIGPIPE, SIG_IGN); }  // as mqttd does

  void SetUp() override {
    std::string root =
        (std::filesystem::temp_directory_path() / "registry_client_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(root.data()), nullptr);
    root_ = root;
  }
  void TearDown() override {
    for (auto& node : nodes_) node->Stop();
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  // n1, n2, n3: each bootstraps the same three voters and serves its client's RegistryService.
  void StartCluster() {
    for (int i = 1; i <= 3; ++i) {
      auto node = std::make_unique<Node>();
      node->id = absl::StrCat("n", i);
      node->raft_address = absl::StrCat("127.0.0.1:", FreePort());
      nodes_.push_back(std::move(node));
    }
    std::vector<RegistryPeer> bootstrap;
    for (auto& node : nodes_) bootstrap.push_back({node->id, node->raft_address});
    // Every raft port is bound before any gRPC server picks a free port, which could otherwise
    // be one of theirs.
    for (auto& node : nodes_) ASSERT_NO_FATAL_FAILURE(StartRegistry(node.get(), bootstrap));
    for (auto& node : nodes_) ASSERT_NO_FATAL_FAILURE(StartService(node.get()));
  }

  void StartRegistry(Node* node, const std::vector<RegistryPeer>& bootstrap) {
    RegistryOptions o;
    o.node_id = node->id;
    o.raft_address = node->raft_address;
    o.data_dir = root_ + "/" + node->id;
    o.bootstrap = bootstrap;
    o.election_timeout = absl::Milliseconds(300);
    o.heartbeat_timeout = absl::Milliseconds(50);
    o.connect_retry_delay = absl::Milliseconds(50);
    o.proposal_timeout = absl::Seconds(2);
    node->registry = std::make_unique<Registry>(std::move(o));
    const absl::Status started = node->registry->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  void StartService(Node* node) {
    RegistryClientOptions c;
    c.node_id = node->id;
    c.rpc_timeout = absl::Seconds(3);
    c.propose_timeout = propose_timeout_;
    node->client = std::make_unique<RegistryClient>(
        node->registry.get(), [book = book_](const std::string& id) { return book->Get(id); },
        std::move(c));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(node->client->service());
    node->server = builder.BuildAndStart();
    ASSERT_NE(node->server, nullptr);
    ASSERT_NE(port, 0);
    node->grpc_address = absl::StrCat("127.0.0.1:", port);
    book_->Set(node->id, node->grpc_address);
  }

  // The leader once exactly one running node leads and every running node agrees on it.
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
          for (auto& node : nodes_) {
            if (node->running() && node->registry->LeaderId() != leader->id) return false;
          }
          return true;
        },
        timeout);
    return found ? leader : nullptr;
  }

  std::vector<Node*> Followers(const Node* leader) {
    std::vector<Node*> followers;
    for (auto& node : nodes_) {
      if (node.get() != leader && node->running()) followers.push_back(node.get());
    }
    return followers;
  }

  bool HolderIs(const Node& node, const std::string& client, const std::string& holder,
                uint64_t epoch) {
    std::optional<RegistryHolder> h = node.registry->Holder(client);
    return h.has_value() && h->node_id == holder && h->epoch == epoch;
  }

  std::string root_;
  std::shared_ptr<AddressBook> book_ = std::make_shared<AddressBook>();
  std::vector<std::unique_ptr<Node>> nodes_;
  absl::Duration propose_timeout_ = absl::Seconds(8);
};

TEST_F(RegistryClientTest, AProposalOnAFollowerReachesTheLeaderAndIsAppliedEverywhere) {
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  Node* follower = Followers(leader)[0];
  Result registered = ProposeAndWait(*follower->client, {RegisterCommand("c1", follower->id)});
  ASSERT_TRUE(registered.ok()) << registered.status();
  ASSERT_EQ(registered->size(), 1u);
  EXPECT_EQ((*registered)[0].kind, RegistryChange::Kind::kRegistered);
  EXPECT_EQ((*registered)[0].client_id, "c1");
  EXPECT_EQ((*registered)[0].holder.node_id, follower->id);
  EXPECT_EQ((*registered)[0].holder.epoch, 1u);
  EXPECT_FALSE((*registered)[0].previous.has_value());
  for (auto& node : nodes_) {
    EXPECT_TRUE(WaitUntil([&] { return HolderIs(*node, "c1", follower->id, 1); })) << node->id;
  }
  // The previous holder crosses the wire too, and the leader's own client proposes locally.
  Result moved = ProposeAndWait(*leader->client, {RegisterCommand("c1", leader->id)});
  ASSERT_TRUE(moved.ok()) << moved.status();
  ASSERT_EQ(moved->size(), 1u);
  ASSERT_TRUE((*moved)[0].previous.has_value());
  EXPECT_EQ((*moved)[0].previous->node_id, follower->id);
  EXPECT_EQ((*moved)[0].previous->epoch, 1u);
  // A Release from a follower: applied once, ignored when stale.
  Result released = ProposeAndWait(
      *follower->client, {ReleaseCommand("c1", leader->id, 2), ReleaseCommand("c1", "n9", 2)});
  ASSERT_TRUE(released.ok()) << released.status();
  ASSERT_EQ(released->size(), 2u);
  EXPECT_EQ((*released)[0].kind, RegistryChange::Kind::kReleased);
  EXPECT_EQ((*released)[0].holder.epoch, 2u);
  EXPECT_EQ((*released)[1].kind, RegistryChange::Kind::kIgnored);
  for (auto& node : nodes_) {
    EXPECT_TRUE(WaitUntil([&] { return node->registry->size() == 0; })) << node->id;
  }
}

TEST_F(RegistryClientTest, AFollowersServiceRefusesWithFailedPrecondition) {
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  Node* follower = Followers(leader)[0];
  auto stub = v1::RegistryService::NewStub(
      grpc::CreateChannel(follower->grpc_address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + kWait));
  v1::ProposeRequest request;
  *request.add_commands() = RegisterCommand("c1", follower->id);
  v1::ProposeResponse response;
  const grpc::Status status = stub->Propose(&ctx, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  EXPECT_NE(status.error_message().find(absl::StrCat("leader is ", leader->id)), std::string::npos)
      << status.error_message();
  EXPECT_FALSE(follower->registry->Holder("c1").has_value());
}

TEST_F(RegistryClientTest, ConcurrentProposalsOverEveryClientGetDistinctEpochs) {
  StartCluster();
  ASSERT_NE(WaitForLeader(), nullptr);
  constexpr int kThreads = 4, kPerThread = 25, kTotal = kThreads * kPerThread;
  struct Tally {  // shared: a callback may outlive a failed wait
    absl::Mutex mu;
    int ok ABSL_GUARDED_BY(mu) = 0;
    std::vector<std::string> failures ABSL_GUARDED_BY(mu);
    absl::flat_hash_set<uint64_t> epochs ABSL_GUARDED_BY(mu);
  };
  auto tally = std::make_shared<Tally>();
  const absl::Time start = absl::Now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string client = absl::StrCat("c-", t, "-", i);
        Node& node = *nodes_[(t * kPerThread + i) % 3];
        node.client->Propose({RegisterCommand(client, node.id)}, [tally, client](Result r) {
          absl::MutexLock lock(&tally->mu);
          if (r.ok() && r->size() == 1 && (*r)[0].client_id == client) {
            ++tally->ok;
            tally->epochs.insert((*r)[0].holder.epoch);
          } else {
            tally->failures.push_back(r.ok() ? "wrong changes" : r.status().ToString());
          }
        });
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(WaitUntil([&] {
    absl::MutexLock lock(&tally->mu);
    return tally->ok + static_cast<int>(tally->failures.size()) == kTotal;
  }));
  std::cout << "[ measure  ] " << kTotal << " proposals over 3 clients: " << absl::Now() - start
            << std::endl;
  {
    absl::MutexLock lock(&tally->mu);
    EXPECT_EQ(tally->ok, kTotal);
    for (const std::string& failure : tally->failures) ADD_FAILURE() << failure;
    EXPECT_EQ(tally->epochs.size(), static_cast<size_t>(kTotal));
  }
  for (auto& node : nodes_) {
    EXPECT_TRUE(WaitUntil([&] { return node->registry->size() == kTotal; })) << node->id;
  }
}

TEST_F(RegistryClientTest, ProposalsSucceedOnceANewLeaderIsElected) {
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  ASSERT_TRUE(ProposeAndWait(*leader->client, {RegisterCommand("before", leader->id)}).ok());
  const std::string old_id = leader->id;
  std::vector<Node*> remaining = Followers(leader);
  leader->Stop();  // its address stays in the book: calls to it fail until a new leader is known
  const absl::Time stopped = absl::Now();
  // Proposed at once, before any election: each retries until the new leader answers.
  std::vector<Result> results(remaining.size(), absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < remaining.size(); ++i) {
    threads.emplace_back([&, i] {
      results[i] = ProposeAndWait(*remaining[i]->client,
                                  {RegisterCommand(absl::StrCat("after-", i), remaining[i]->id)});
    });
  }
  for (std::thread& t : threads) t.join();
  const absl::Duration took = absl::Now() - stopped;
  std::cout << "[ measure  ] proposals through a leader change: " << took << std::endl;
  EXPECT_LT(took, propose_timeout_);
  for (size_t i = 0; i < remaining.size(); ++i) {
    ASSERT_TRUE(results[i].ok()) << remaining[i]->id << ": " << results[i].status();
    EXPECT_EQ((*results[i])[0].holder.node_id, remaining[i]->id);
  }
  Node* next = WaitForLeader();
  ASSERT_NE(next, nullptr);
  EXPECT_NE(next->id, old_id);
  for (Node* node : remaining) {
    EXPECT_TRUE(WaitUntil([&] { return node->registry->size() == 3; })) << node->id;
    EXPECT_TRUE(HolderIs(*node, "before", old_id, 1)) << node->id;
  }
}

TEST_F(RegistryClientTest, WithoutAMajorityAProposalFailsUnavailableInTime) {
  propose_timeout_ = absl::Milliseconds(1500);
  StartCluster();
  Node* leader = WaitForLeader();
  ASSERT_NE(leader, nullptr);
  Node* survivor = Followers(leader)[0];
  for (auto& node : nodes_) {
    if (node.get() != survivor) node->Stop();
  }
  const absl::Time start = absl::Now();
  Result result = ProposeAndWait(*survivor->client, {RegisterCommand("c1", survivor->id)});
  const absl::Duration took = absl::Now() - start;
  std::cout << "[ measure  ] minority proposal failed after " << took << ": " << result.status()
            << std::endl;
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
  EXPECT_NE(result.status().message().find("no registry leader reachable"), std::string::npos)
      << result.status();
  EXPECT_LE(took, propose_timeout_ + absl::Milliseconds(500));
  EXPECT_FALSE(survivor->registry->Holder("c1").has_value());
}

TEST_F(RegistryClientTest, AStoppedClientRefusesAtOnce) {
  StartCluster();
  Node* node = nodes_[0].get();
  node->client->Stop();
  Result result = ProposeAndWait(*node->client, {RegisterCommand("c1", node->id)});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable) << result.status();
}

}  // namespace
}  // namespace mqtt::cluster
