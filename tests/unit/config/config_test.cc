// SPDX-License-Identifier: Apache-2.0
// The command line, the environment and their precedence; --help. The YAML file and
// --print-config are in config_file_test.cc.
#include "node/config/config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "tests/unit/config/config_test_util.h"

namespace mqtt {
namespace {

using testing_config::Parse;
using testing_config::WriteFile;

TEST(ConfigTest, DefaultsListenOn1883WithDataInDotData) {
  auto config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->listeners.size(), 1u);
  EXPECT_EQ(config->listeners[0].port, 1883);
  EXPECT_EQ(config->data_dir, "./data");
  EXPECT_FALSE(config->node_id.empty());
  EXPECT_GE(config->workers, 1u);  // one per core
  EXPECT_EQ(config->log_format, "text");
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

// The cluster's identity: membership refuses peers of another name (cluster/README.md).
TEST(ConfigTest, ClusterNameDefaultsToMqttdAndTakesAValidName) {
  auto defaults = Parse({});
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->cluster_name, "mqttd");
  const std::string longest(64, 'x');
  for (const char* name : {"prod", "eu-west.1_B", "0", longest.c_str()}) {
    auto config = Parse({"--cluster-name", name});
    ASSERT_TRUE(config.ok()) << name << ": " << config.status();
    EXPECT_EQ(config->cluster_name, name);
  }
  EXPECT_EQ(Parse({}, {"MQTTD_CLUSTER_NAME=staging"})->cluster_name, "staging");
}

TEST(ConfigTest, BadClusterNameIsRefusedAndNamed) {
  const std::string too_long(65, 'x');
  for (const char* bad : {"", "two words", "a/b", "caf\xc3\xa9", "x:y", too_long.c_str()}) {
    auto config = Parse({"--cluster-name", bad});
    ASSERT_FALSE(config.ok()) << bad;
    EXPECT_EQ(config.status().message(),
              absl::StrCat("--cluster-name: must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' "
                           "and '-', not '",
                           bad, "'"));
  }
  auto env = Parse({}, {"MQTTD_CLUSTER_NAME=a b"});
  ASSERT_FALSE(env.ok());
  EXPECT_TRUE(absl::StartsWith(env.status().message(), "MQTTD_CLUSTER_NAME: must be 1 to 64"))
      << env.status();
}

TEST(ConfigTest, AccessControlOptionsParse) {
  auto config = Parse({"--password-file", "/etc/mqttd/passwd", "--acl-file", "/etc/mqttd/acl",
                       "--allow-anonymous", "true"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->password_file, "/etc/mqttd/passwd");
  EXPECT_EQ(config->acl_file, "/etc/mqttd/acl");
  EXPECT_EQ(config->allow_anonymous, "true");
  auto defaults = Parse({});
  EXPECT_TRUE(defaults->password_file.empty());
  EXPECT_EQ(defaults->allow_anonymous, "auto");  // true without a password file
  auto bad = Parse({"--allow-anonymous", "yes"});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "--allow-anonymous: must be one of auto, true, false, not 'yes'");
}

TEST(ConfigTest, BadClusterAddressesAreNamed) {
  for (const char* bad : {"7946", ":7946", "host:", "host:70000"}) {
    auto config = Parse({"--join", bad});
    ASSERT_FALSE(config.ok()) << bad;
    EXPECT_EQ(config.status().message(),
              absl::StrCat("--join: '", bad, "' is not HOST:PORT with a port in 1..65535"));
  }
  auto budget = Parse({"--storage-wal-budget", "1024"});  // below the 4 MiB minimum
  ASSERT_FALSE(budget.ok());
  EXPECT_EQ(budget.status().message(),
            "--storage-wal-budget: must be between 4194304 and 4000000000");
}

TEST(ConfigTest, UnknownFlagIsNamed) {
  auto config = Parse({"--no-such-flag", "1"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "unknown option '--no-such-flag'");
}

TEST(ConfigTest, BadValueNamesTheOption) {
  auto config = Parse({"--max-inflight", "zero"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(),
            "--max-inflight: must be an integer between 1 and 65535, not 'zero'");
  EXPECT_FALSE(Parse({"--listen", "127.0.0.1:70000"}).ok());
  EXPECT_FALSE(Parse({"--log-level", "loud"}).ok());
  EXPECT_FALSE(Parse({"--log-format", "xml"}).ok());
  EXPECT_FALSE(Parse({"--workers"}).ok());
  EXPECT_FALSE(Parse({"--help=yes"}).ok());
}

TEST(ConfigTest, MissingConfigFileIsAnError) {
  auto config = Parse({"--config", "/nonexistent/mqttd.yaml"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "--config: cannot read '/nonexistent/mqttd.yaml'");
}

TEST(ConfigTest, EnvironmentOverridesFile) {
  std::string path = WriteFile("env.yaml", "node_id: from-file\nlimits:\n  max_inflight: 7\n");
  auto config = Parse({"--config", path.c_str()},
                      {"MQTTD_LIMITS_MAX_INFLIGHT=9", "MQTTD_CLUSTER_JOIN_DNS=peers:7946"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->max_inflight, 9u);
  EXPECT_EQ(config->node_id, "from-file");
  EXPECT_EQ(config->join_dns, "peers:7946");
  EXPECT_EQ(Parse({}, {"MQTTD_NODE_ID=n7"})->node_id, "n7");
}

TEST(ConfigTest, FlagOverridesEnvironmentWhateverTheOrder) {
  std::string path = WriteFile("flag.yaml", "limits:\n  max_inflight: 7\n");
  auto config = Parse({"--max-inflight", "11", "--config", path.c_str()},
                      {"MQTTD_LIMITS_MAX_INFLIGHT=9", "MQTTD_LOG_LEVEL=debug"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->max_inflight, 11u);
  EXPECT_EQ(config->log_level, LogLevel::kDebug);
}

TEST(ConfigTest, EnvironmentListsAreCommaSeparatedAndReplaceTheFiles) {
  std::string path = WriteFile(
      "lists.yaml",
      "listeners:\n  - {protocol: mqtt, address: 0.0.0.0:1999}\ncluster:\n  join: [x:1]\n");
  auto config = Parse({"--config", path.c_str()},
                      {"MQTTD_LISTENERS=127.0.0.1:0,[::1]:1884", "MQTTD_CLUSTER_JOIN=a:1, b:2"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listeners, (std::vector<ListenAddress>{{"127.0.0.1", 0}, {"::1", 1884}}));
  EXPECT_EQ(config->join, (std::vector<std::string>{"a:1", "b:2"}));
}

TEST(ConfigTest, ListenerFlagsReplaceOnlyTheirProtocolsListeners) {
  std::string path = WriteFile("secure.yaml",
                               "listeners:\n  - {protocol: mqtt, address: 0.0.0.0:1999}\n"
                               "  - {protocol: wss, address: 0.0.0.0:8443, path: /x}\n"
                               "  - {protocol: mqtts, address: 0.0.0.0:8883}\n");
  auto config = Parse({"--config", path.c_str(), "--listen", "127.0.0.1:0", "--tls-listen",
                       "127.0.0.1:1", "--tls-listen", "127.0.0.1:2"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->listeners, (std::vector<ListenAddress>{{"127.0.0.1", 0}}));
  ASSERT_EQ(config->secure_listeners.size(), 3u);
  EXPECT_EQ(config->secure_listeners[0].protocol, "wss");  // the file's, kept
  EXPECT_EQ(config->secure_listeners[0].path, "/x");
  EXPECT_EQ(config->secure_listeners[1].address, (ListenAddress{"127.0.0.1", 1}));
  EXPECT_EQ(config->secure_listeners[2].address, (ListenAddress{"127.0.0.1", 2}));
}

TEST(ConfigTest, NoPlainListenerByDefaultWhenAnotherIsGiven) {
  auto config = Parse({"--wss-listen", "127.0.0.1:0"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->listeners.empty());
  ASSERT_EQ(config->secure_listeners.size(), 1u);
  EXPECT_EQ(config->secure_listeners[0].protocol, "wss");
  EXPECT_EQ(Parse({})->listeners.size(), 1u);
}

TEST(ConfigTest, ListFlagsReplaceTheEnvironmentsAndAddUp) {
  auto config = Parse({"--join", "c:3", "--join", "d:4,e:5"}, {"MQTTD_CLUSTER_JOIN=a:1"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->join, (std::vector<std::string>{"c:3", "d:4", "e:5"}));
}

TEST(ConfigTest, EmptyVariableClearsAnOptionalAddress) {
  std::string path = WriteFile("clear.yaml", "cluster:\n  listen: 0.0.0.0:7946\n");
  auto config = Parse({"--config", path.c_str()}, {"MQTTD_CLUSTER_LISTEN="});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->cluster_listen.empty());
}

TEST(ConfigTest, BadVariableValueNamesTheVariable) {
  auto config = Parse({}, {"MQTTD_LIMITS_MAX_INFLIGHT=0"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().message(), "MQTTD_LIMITS_MAX_INFLIGHT: must be between 1 and 65535");
  auto listeners = Parse({}, {"MQTTD_LISTENERS=,"});
  ASSERT_FALSE(listeners.ok());
  EXPECT_EQ(listeners.status().message(), "MQTTD_LISTENERS: needs at least one address");
}

TEST(ConfigTest, UnknownVariableIsIgnoredAndListedUnlessStrict) {
  std::vector<const char*> env = {"MQTTD_BIN=/x/mqttd", "MQTTD_LIMITS_MAX_INFLIHGT=5", "HOME=/root",
                                  "MQTTCTL_BIN=/x/mqttctl"};
  auto lenient = Parse({}, env);
  ASSERT_TRUE(lenient.ok()) << lenient.status();
  EXPECT_EQ(lenient->ignored_env,
            (std::vector<std::string>{"MQTTD_BIN", "MQTTD_LIMITS_MAX_INFLIHGT"}));
  auto strict = Parse({"--strict-env"}, {"HOME=/root", "MQTTD_LIMITS_MAX_INFLIHGT=5"});
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.status().message(),
            "environment variable MQTTD_LIMITS_MAX_INFLIHGT: not a configuration key "
            "(docs/configuration.md; unset it or drop --strict-env)");
  EXPECT_TRUE(Parse({"--strict-env"}, {"HOME=/root", "MQTTD_NODE_ID=n1"}).ok());
}

TEST(ConfigTest, HelpListsEveryOptionWithItsKey) {
  std::string help = HelpText();
  for (const char* text :
       {"--config FILE", "--listen", "--data-dir", "--node-id", "--log-level", "--log-format",
        "--workers", "--max-inflight", "--max-queued-messages", "--max-packet-size", "--join-dns",
        "--cluster-outbox-bytes", "--print-config", "--strict-env", "[limits.max_inflight]",
        "[cluster.join_dns]", "[listeners]", "MQTTD_", "json"}) {
    EXPECT_NE(help.find(text), std::string::npos) << text;
  }
  EXPECT_EQ(help.find("--print-config-reference"), std::string::npos);  // hidden
}

}  // namespace
}  // namespace mqtt
