// SPDX-License-Identifier: Apache-2.0
#include <cmath>

#include "gtest/gtest.h"
#include "node/sys/sys_topics.h"

namespace mqtt::sys {
namespace {

std::map<std::string, std::string> AsMap(const SysOptions& o, const SysFigures& f) {
  std::map<std::string, std::string> out;
  for (auto& [topic, value] : SysValues(o, f)) out[topic] = value;
  return out;
}

TEST(SysValuesTest, MosquittoNamesAndFormats) {
  SysOptions options;
  options.version = "1.2.3";
  SysFigures f;
  f.uptime_seconds = 42;
  f.clients_connected = 3;
  f.sessions = 5;
  f.traffic.messages_received[1] = 7;
  f.traffic.messages_sent[0] = 2;
  f.traffic.bytes_received = 100;
  f.retained = 4;
  f.subscriptions = 9;
  auto v = AsMap(options, f);
  EXPECT_EQ(v["$SYS/broker/version"], "mqttd 1.2.3");
  EXPECT_EQ(v["$SYS/broker/uptime"], "42 seconds");
  EXPECT_EQ(v["$SYS/broker/clients/connected"], "3");
  EXPECT_EQ(v["$SYS/broker/clients/disconnected"], "2");
  EXPECT_EQ(v["$SYS/broker/clients/total"], "5");
  EXPECT_EQ(v["$SYS/broker/messages/received"], "7");
  EXPECT_EQ(v["$SYS/broker/messages/sent"], "2");
  EXPECT_EQ(v["$SYS/broker/bytes/received"], "100");
  EXPECT_EQ(v["$SYS/broker/retained messages/count"], "4");
  EXPECT_EQ(v["$SYS/broker/subscriptions/count"], "9");
  EXPECT_EQ(v.count("$SYS/broker/store/messages/count"), 0u);  // no store
  EXPECT_EQ(v.count("$SYS/cluster/node"), 0u);                 // not clustered
}

TEST(SysValuesTest, ClusterSummaryWhenClustered) {
  SysOptions options;
  options.node_id = "n1";
  options.cluster_members = [] { return std::map<std::string, uint64_t>{}; };
  SysFigures f;
  f.cluster_members = {{"alive", 3}, {"dead", 1}};
  auto v = AsMap(options, f);
  EXPECT_EQ(v["$SYS/cluster/node"], "n1");
  EXPECT_EQ(v["$SYS/cluster/nodes/alive"], "3");
  EXPECT_EQ(v["$SYS/cluster/nodes/suspect"], "0");
  EXPECT_EQ(v["$SYS/cluster/nodes/dead"], "1");
}

TEST(SysValuesTest, ConnectedBeyondSessionCountNeverUnderflows) {
  SysFigures f;
  f.clients_connected = 2;  // read after the session counts: a client connected in between
  f.sessions = 1;
  auto v = AsMap(SysOptions{}, f);
  EXPECT_EQ(v["$SYS/broker/clients/disconnected"], "0");
  EXPECT_EQ(v["$SYS/broker/clients/total"], "2");
}

TEST(LoadAverageTest, ConvergesToTheSteadyPerMinuteRate) {
  LoadAverage load;
  uint64_t total = 0;
  load.Update(total, 10);  // the first update only sets the base
  EXPECT_EQ(load.per_minute(0), 0);
  for (int i = 0; i < 6 * 180; ++i) {  // three hours at 10 messages a second
    total += 100;
    load.Update(total, 10);
  }
  EXPECT_NEAR(load.per_minute(0), 600, 1);
  EXPECT_NEAR(load.per_minute(2), 600, 1);
}

TEST(LoadAverageTest, OneMinuteReactsFasterThanFifteen) {
  LoadAverage load;
  load.Update(0, 10);
  load.Update(1000, 10);  // one burst: 6000 a minute over 10 s
  EXPECT_NEAR(load.per_minute(0), 6000 * (1 - std::exp(-10.0 / 60)), 1e-6);
  EXPECT_GT(load.per_minute(0), load.per_minute(1));
  EXPECT_GT(load.per_minute(1), load.per_minute(2));
}

}  // namespace
}  // namespace mqtt::sys
