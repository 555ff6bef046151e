// SPDX-License-Identifier: Apache-2.0
#include "node/config/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

namespace mqtt {
namespace {

absl::StatusOr<Config> Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "mqttd");
  return ParseCommandLine(static_cast<int>(args.size()), args.data());
}

TEST(ConfigTest, DefaultsListenOn1883WithDataInDotData) {
  auto config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->listeners.size(), 1u);
  EXPECT_EQ(config->listeners[0].port, 1883);
  EXPECT_EQ(config->data_dir, "./data");
  EXPECT_FALSE(config->node_id.empty());
}

TEST(ConfigTest, RepeatedListenFlagsAllApply) {
  auto config = Parse({"--listen", "127.0.0.1:0", "--listen=[::1]:1884"});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->listeners.size(), 2u);
  EXPECT_EQ(config->listeners[0].host, "127.0.0.1");
  EXPECT_EQ(config->listeners[1].host, "::1");
  EXPECT_EQ(config->listeners[1].port, 1884);
}

TEST(ConfigTest, ClusterOptionsParse) {
  auto config = Parse({"--cluster-listen", "0.0.0.0:7946", "--cluster-advertise", "n1.svc:7946",
                       "--join", "a:7946, b:7946", "--join-dns", "peers.svc:7946",
                       "--cluster-remove-after", "60", "--storage-wal-budget", "8388608"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->cluster_listen, "0.0.0.0:7946");
  EXPECT_EQ(config->cluster_advertise, "n1.svc:7946");
  EXPECT_EQ(config->join, (std::vector<std::string>{"a:7946", "b:7946"}));
  EXPECT_EQ(config->join_dns, "peers.svc:7946");
  EXPECT_EQ(config->cluster_remove_after, 60u);
  EXPECT_EQ(config->storage_wal_budget, 8388608u);
  EXPECT_TRUE(Parse({})->cluster_listen.empty());  // alone unless asked
}

TEST(ConfigTest, BadClusterAddressesAreNamed) {
  for (const char* bad : {"7946", ":7946", "host:", "host:70000"}) {
    auto config = Parse({"--join", bad});
    ASSERT_FALSE(config.ok()) << bad;
    EXPECT_NE(config.status().message().find("'join'"), absl::string_view::npos) << config.status();
  }
  auto budget = Parse({"--storage-wal-budget", "1024"});  // below the 4 MiB minimum
  ASSERT_FALSE(budget.ok());
  EXPECT_NE(budget.status().message().find("'storage-wal-budget'"), absl::string_view::npos);
}

TEST(ConfigTest, UnknownFlagIsNamed) {
  auto config = Parse({"--no-such-flag", "1"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("--no-such-flag"), absl::string_view::npos);
}

TEST(ConfigTest, BadValueNamesTheOption) {
  auto config = Parse({"--max-inflight", "zero"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("max-inflight"), absl::string_view::npos);
  EXPECT_FALSE(Parse({"--listen", "127.0.0.1:70000"}).ok());
  EXPECT_FALSE(Parse({"--log-level", "loud"}).ok());
  EXPECT_FALSE(Parse({"--workers"}).ok());
}

TEST(ConfigTest, FileErrorNamesFileLineAndKey) {
  Config config;
  absl::Status status =
      ParseConfigText("# comment\nmax-inflight 5\n\nmax-qeued-messages 10\n", "node.conf", &config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("node.conf:4"), absl::string_view::npos) << status;
  EXPECT_NE(status.message().find("max-qeued-messages"), absl::string_view::npos) << status;
  EXPECT_EQ(config.max_inflight, 5u);
}

TEST(ConfigTest, FileBadValueNamesLine) {
  Config config;
  absl::Status status = ParseConfigText("workers = 0\n", "x.conf", &config);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("x.conf:1"), absl::string_view::npos) << status;
  EXPECT_NE(status.message().find("workers"), absl::string_view::npos) << status;
}

TEST(ConfigTest, CommandLineOverridesFile) {
  std::string path = ::testing::TempDir() + "/mqttd-config-test.conf";
  {
    std::ofstream out(path);
    out << "max-inflight = 7\nlisten 127.0.0.1:1999\nmax-queued-messages 33\n";
  }
  auto config = Parse({"--max-inflight", "9", "--config", path.c_str()});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->max_inflight, 9u);
  EXPECT_EQ(config->max_queued_messages, 33u);
  ASSERT_EQ(config->listeners.size(), 1u);
  EXPECT_EQ(config->listeners[0].port, 1999);
}

TEST(ConfigTest, MissingConfigFileIsAnError) {
  auto config = Parse({"--config", "/nonexistent/mqttd.conf"});
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("/nonexistent/mqttd.conf"), absl::string_view::npos);
}

TEST(ConfigTest, HelpListsEveryOption) {
  std::string help = HelpText();
  for (const char* name :
       {"--config", "--listen", "--data-dir", "--node-id", "--log-level", "--workers",
        "--max-inflight", "--max-queued-messages", "--max-packet-size"}) {
    EXPECT_NE(help.find(name), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace mqtt
