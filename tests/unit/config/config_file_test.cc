// SPDX-License-Identifier: Apache-2.0
// The YAML config file: every key, every kind of error with its file, line and key path,
// --print-config (round trip, masking, layout) and docs/configuration.md being up to date.
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "node/config/config.h"
#include "tests/unit/config/config_test_util.h"

namespace mqtt {
namespace {

using testing_config::Parse;
using testing_config::WriteFile;

constexpr char kEveryKey[] = R"(# every key, none at its default
node_id: n1
data_dir: /var/lib/mqttd
log:
  level: debug
  format: json
listeners:
  - protocol: mqtt
    address: 127.0.0.1:1999
  - address: "[::1]:0"
  - protocol: mqtts
    address: 0.0.0.0:8883
    cert_file: /etc/mqttd/other.crt
    key_file: /etc/mqttd/other.key
    ca_file: /etc/mqttd/other-ca.crt
    require_client_cert: true
    max_connections: 100
  - {protocol: ws, address: 127.0.0.1:8080, path: /ws}
  - {protocol: wss, address: 0.0.0.0:8443}
limits:
  workers: 3
  max_inflight: 5
  max_queued_messages: 6
  max_queued_bytes: 0
  queue_qos0_offline: on
  max_packet_size: 2048
  max_outbound_buffer: 8192
  connect_timeout: 7
  receive_maximum: 8
  topic_alias_maximum: 0
  max_keep_alive: 60
shared_subscriptions:
  strategy: hash_topic
  prefer_local: true
auth:
  hmac_secret: s3cret
storage:
  persistence: false
  fsync: true
  wal_budget: 8388608
cluster:
  name: prod-eu.1
  listen: 0.0.0.0:7946
  advertise: n1.svc:7946
  join:
    - a:7946
    - b:7946
  join_dns: peers.svc:7946
  remove_after: 60
  probe_interval_ms: 200
  suspect_timeout_ms: 900
  sync_timeout: 0
  outbox_messages: 100
  outbox_bytes: 65536
  raft_listen: 0.0.0.0:7947
  bootstrap_members: [n1, n2, n3]
  allow_register_during_netsplit: true
http:
  listen: 127.0.0.1:9090
  api_key_file: /etc/mqttd/api-keys
tls:
  cert_file: /etc/mqttd/tls.crt
  key_file: /etc/mqttd/tls.key
  ca_file: /etc/mqttd/ca.crt
  require_client_cert: true
  username_from_cert: san
  min_version: 1.3
  ciphers: ECDHE-ECDSA-AES128-GCM-SHA256
  ciphersuites: TLS_AES_128_GCM_SHA256
  groups: X25519
  handshake_timeout: 5
  reload_interval: 30
websocket:
  path: /mqtt-ws
sys_interval: 2
shutdown_timeout: 90
server_reference: mqtt.example.com:1883
bridges:
  - name: cloud-1
    addresses: [remote.example.com:8883, backup.example.com:8883]
    protocol_version: mqttv50
    client_id: site-7
    username: bridge
    tls: {ca_file: /etc/mqttd/remote-ca.crt, cert_file: /etc/c.crt, key_file: /etc/c.key,
          verify: false, server_name: remote.example.com}
    clean_session: true
    session_expiry: 60
    keepalive: 30
    restart_timeout: {min: 2, max: 64}
    try_private: false
    topics:
      - sensors/# out 1 "" site-7/
      - 'cmd/+ in 2 local/ ""'
)";

// The documented layout, in order.
const std::vector<std::string> kLayout = {"node_id",
                                          "data_dir",
                                          "log.level",
                                          "log.format",
                                          "listeners",
                                          "limits.workers",
                                          "limits.idle_poll_us",
                                          "limits.max_inflight",
                                          "limits.max_queued_messages",
                                          "limits.max_queued_bytes",
                                          "limits.queue_full_policy",
                                          "limits.queue_qos0_offline",
                                          "limits.max_packet_size",
                                          "limits.max_outbound_buffer",
                                          "limits.max_connections",
                                          "limits.connection_rate",
                                          "limits.message_rate",
                                          "limits.byte_rate",
                                          "limits.connect_timeout",
                                          "limits.receive_maximum",
                                          "limits.topic_alias_maximum",
                                          "limits.max_keep_alive",
                                          "limits.max_session_expiry",
                                          "shared_subscriptions.strategy",
                                          "shared_subscriptions.prefer_local",
                                          "auth.hmac_secret",
                                          "auth.password_file",
                                          "auth.acl_file",
                                          "auth.reload_interval",
                                          "auth.allow_anonymous",
                                          "storage.persistence",
                                          "storage.fsync",
                                          "storage.wal_budget",
                                          "storage.min_free_disk",
                                          "cluster.name",
                                          "cluster.listen",
                                          "cluster.advertise",
                                          "cluster.join",
                                          "cluster.join_dns",
                                          "cluster.remove_after",
                                          "cluster.probe_interval_ms",
                                          "cluster.suspect_timeout_ms",
                                          "cluster.sync_timeout",
                                          "cluster.outbox_messages",
                                          "cluster.outbox_bytes",
                                          "cluster.raft_listen",
                                          "cluster.bootstrap_members",
                                          "cluster.allow_register_during_netsplit",
                                          "cluster.tls.cert_file",
                                          "cluster.tls.key_file",
                                          "cluster.tls.ca_file",
                                          "cluster.tls.server_name",
                                          "http.listen",
                                          "http.api_key_file",
                                          "http.basic_auth_file",
                                          "tls.cert_file",
                                          "tls.key_file",
                                          "tls.ca_file",
                                          "tls.require_client_cert",
                                          "tls.username_from_cert",
                                          "tls.min_version",
                                          "tls.ciphers",
                                          "tls.ciphersuites",
                                          "tls.groups",
                                          "tls.handshake_timeout",
                                          "tls.reload_interval",
                                          "websocket.path",

                                          "sys_interval",
                                          "shutdown_timeout",
                                          "server_reference",
                                          "bridges"};

std::string Error(const std::string& text) {
  Config config;
  return std::string(ParseConfigText(text, "m.yaml", &config).message());
}

void CollectPaths(const YAML::Node& map, const std::string& prefix,
                  std::vector<std::string>* paths) {
  for (const auto& entry : map) {
    const YAML::Node key = entry.first;
    const YAML::Node value = entry.second;
    std::string path = prefix.empty() ? key.Scalar() : prefix + "." + key.Scalar();
    if (value.IsMap()) {
      CollectPaths(value, path, paths);
    } else {
      paths->push_back(path);
    }
  }
}

TEST(ConfigFileTest, EveryKeyIsRead) {
  Config c;
  ASSERT_TRUE(ParseConfigText(kEveryKey, "m.yaml", &c).ok());
  EXPECT_EQ(c.node_id, "n1");
  EXPECT_EQ(c.data_dir, "/var/lib/mqttd");
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  EXPECT_EQ(c.log_format, "json");
  EXPECT_EQ(c.listeners, (std::vector<ListenAddress>{{"127.0.0.1", 1999}, {"::1", 0}}));
  ASSERT_EQ(c.secure_listeners.size(), 3u);
  SecureListener mqtts;
  mqtts.protocol = "mqtts";
  mqtts.address = {"0.0.0.0", 8883};
  mqtts.cert_file = "/etc/mqttd/other.crt";
  mqtts.key_file = "/etc/mqttd/other.key";
  mqtts.ca_file = "/etc/mqttd/other-ca.crt";
  mqtts.require_client_cert = "true";
  mqtts.max_connections = 100;
  EXPECT_EQ(c.secure_listeners[0], mqtts);
  EXPECT_EQ(c.secure_listeners[1].protocol, "ws");
  EXPECT_EQ(c.secure_listeners[1].path, "/ws");
  EXPECT_EQ(c.secure_listeners[2].protocol, "wss");
  EXPECT_EQ(c.secure_listeners[2].address, (ListenAddress{"0.0.0.0", 8443}));
  EXPECT_EQ(c.tls_cert_file, "/etc/mqttd/tls.crt");
  EXPECT_EQ(c.tls_key_file, "/etc/mqttd/tls.key");
  EXPECT_EQ(c.tls_ca_file, "/etc/mqttd/ca.crt");
  EXPECT_TRUE(c.tls_require_client_cert);
  EXPECT_EQ(c.tls_username_from_cert, "san");
  EXPECT_EQ(c.tls_min_version, "1.3");
  EXPECT_EQ(c.tls_ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256");
  EXPECT_EQ(c.tls_ciphersuites, "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(c.tls_groups, "X25519");
  EXPECT_EQ(c.tls_handshake_timeout, 5u);
  EXPECT_EQ(c.tls_reload_interval, 30u);
  EXPECT_EQ(c.ws_path, "/mqtt-ws");
  EXPECT_EQ(c.workers, 3u);
  EXPECT_EQ(c.max_inflight, 5u);
  EXPECT_EQ(c.max_queued_messages, 6u);
  EXPECT_EQ(c.max_queued_bytes, 0u);
  EXPECT_TRUE(c.queue_qos0_offline);
  EXPECT_EQ(c.max_packet_size, 2048u);
  EXPECT_EQ(c.max_outbound_buffer, 8192u);
  EXPECT_EQ(c.connect_timeout_seconds, 7u);
  EXPECT_EQ(c.receive_maximum, 8u);
  EXPECT_EQ(c.topic_alias_maximum, 0u);
  EXPECT_EQ(c.max_keep_alive, 60u);
  EXPECT_EQ(c.shared_subscription_strategy, "hash_topic");
  EXPECT_TRUE(c.shared_subscription_prefer_local);
  EXPECT_EQ(c.auth_hmac_secret, "s3cret");
  EXPECT_FALSE(c.persistence);
  EXPECT_TRUE(c.fsync);
  EXPECT_EQ(c.storage_wal_budget, 8388608u);
  EXPECT_EQ(c.cluster_name, "prod-eu.1");
  EXPECT_EQ(c.cluster_listen, "0.0.0.0:7946");
  EXPECT_EQ(c.cluster_advertise, "n1.svc:7946");
  EXPECT_EQ(c.join, (std::vector<std::string>{"a:7946", "b:7946"}));
  EXPECT_EQ(c.join_dns, "peers.svc:7946");
  EXPECT_EQ(c.cluster_remove_after, 60u);
  EXPECT_EQ(c.cluster_probe_interval_ms, 200u);
  EXPECT_EQ(c.cluster_suspect_timeout_ms, 900u);
  EXPECT_EQ(c.cluster_sync_timeout, 0u);
  EXPECT_EQ(c.cluster_outbox_messages, 100u);
  EXPECT_EQ(c.cluster_outbox_bytes, 65536u);
  EXPECT_EQ(c.cluster_raft_listen, "0.0.0.0:7947");
  EXPECT_EQ(c.cluster_bootstrap_members, (std::vector<std::string>{"n1", "n2", "n3"}));
  EXPECT_TRUE(c.cluster_allow_register_during_netsplit);
  EXPECT_EQ(c.http_listen, "127.0.0.1:9090");
  EXPECT_EQ(c.http_api_key_file, "/etc/mqttd/api-keys");
  EXPECT_EQ(c.sys_interval, 2u);
  EXPECT_EQ(c.shutdown_timeout, 90u);
  EXPECT_EQ(c.server_reference, "mqtt.example.com:1883");
  ASSERT_EQ(c.bridges.size(), 1u);
  const BridgeConfig& b = c.bridges[0];
  EXPECT_EQ(b.name, "cloud-1");
  EXPECT_EQ(b.addresses,
            (std::vector<std::string>{"remote.example.com:8883", "backup.example.com:8883"}));
  EXPECT_EQ(b.protocol_version, "mqttv50");
  EXPECT_EQ(b.client_id, "site-7");
  EXPECT_EQ(b.username, "bridge");
  EXPECT_TRUE(b.tls);
  EXPECT_EQ(b.tls_options, (BridgeTls{"/etc/mqttd/remote-ca.crt", "/etc/c.crt", "/etc/c.key", false,
                                      "remote.example.com"}));
  EXPECT_TRUE(b.clean_session);
  EXPECT_EQ(b.session_expiry, 60u);
  EXPECT_EQ(b.keepalive, 30u);
  EXPECT_EQ(b.restart_min, 2u);
  EXPECT_EQ(b.restart_max, 64u);
  EXPECT_FALSE(b.try_private);
  EXPECT_EQ(b.topics,
            (std::vector<std::string>{"sensors/# out 1 \"\" site-7/", "cmd/+ in 2 local/ \"\""}));
}

// Issue 16: a bridge's defaults, and every error naming its file, line and key.
TEST(ConfigFileTest, BridgeDefaults) {
  Config c;
  ASSERT_TRUE(
      ParseConfigText("bridges:\n  - {name: b, addresses: [h:1883], topics: ['#']}\n", "m.yaml", &c)
          .ok());
  ASSERT_EQ(c.bridges.size(), 1u);
  BridgeConfig expected;
  expected.name = "b";
  expected.addresses = {"h:1883"};
  expected.topics = {"#"};
  EXPECT_EQ(c.bridges[0], expected);
  EXPECT_EQ(expected.protocol_version, "mqttv311");
  EXPECT_FALSE(expected.clean_session);
  EXPECT_TRUE(expected.try_private);
}

TEST(ConfigFileTest, BridgeErrorsNameFileLineAndKey) {
  const std::string head = "bridges:\n  - name: b\n    addresses: [h:1883]\n";
  EXPECT_EQ(Error(head + "    topics:\n      - a/# out\n      - a/# sideways 1\n"),
            "m.yaml:6: bridges[0].topics[1]: direction 'sideways': must be out, in or both");
  EXPECT_EQ(Error(head + "    topics: ['a both 3']\n"),
            "m.yaml:4: bridges[0].topics[0]: QoS '3': must be 0, 1 or 2");
  EXPECT_EQ(Error(head + "    topics: ['\"\" out 0 local \"\"']\n"),
            "m.yaml:4: bridges[0].topics[0]: an empty pattern (\"\") needs a local and a remote "
            "prefix");
  EXPECT_EQ(Error(head), "m.yaml:2: bridges[0]: topics missing");
  EXPECT_EQ(Error(head + "    topics: []\n"),
            "m.yaml:4: bridges[0].topics: needs at least one item");
  EXPECT_EQ(Error("bridges:\n  - {name: b, addresses: [h], topics: [a]}\n"),
            "m.yaml:2: bridges[0].addresses[0]: 'h' is not HOST:PORT");
  EXPECT_EQ(Error("bridges:\n  - {name: 'a b', addresses: [h:1], topics: [a]}\n"),
            "m.yaml:2: bridges[0].name: must be letters, digits, '_' or '-'");
  EXPECT_EQ(Error(head + "    topics: [a]\n    colour: red\n"),
            "m.yaml:5: bridges[0].colour: unknown key for a bridge (it has name, addresses, "
            "protocol_version, client_id, username, password, tls, clean_session, "
            "session_expiry, keepalive, restart_timeout, try_private, topics)");
  EXPECT_EQ(Error(head + "    topics: [a]\n    protocol_version: mqttv31\n"),
            "m.yaml:5: bridges[0].protocol_version: must be mqttv311 or mqttv50, not 'mqttv31'");
  EXPECT_EQ(Error(head + "    topics: [a]\n    tls: {verfy: true}\n"),
            "m.yaml:5: bridges[0].tls.verfy: unknown key");
  EXPECT_EQ(Error(head + "    topics: [a]\n    restart_timeout: {min: 9, max: 3}\n"),
            "m.yaml:5: bridges[0].restart_timeout: min must not exceed max");
  EXPECT_EQ(Error(head + "    topics: [a]\n  - {name: b, addresses: [h:1], topics: [a]}\n"),
            "m.yaml:5: bridges[1].name: a second bridge named 'b'");
  auto flag = Parse({"--bridge", "x"});
  ASSERT_FALSE(flag.ok());
  EXPECT_NE(flag.status().message().find("config file only"), std::string::npos) << flag.status();
}

TEST(ConfigFileTest, PrintedConfigMasksTheBridgePassword) {
  Config c;
  ASSERT_TRUE(ParseConfigText("bridges:\n  - {name: b, addresses: [h:1883], password: pw1234, "
                              "topics: ['#']}\n",
                              "m.yaml", &c)
                  .ok());
  EXPECT_EQ(c.bridges[0].password, "pw1234");
  const std::string printed = ConfigToYaml(c);
  EXPECT_EQ(printed.find("pw1234"), std::string::npos) << printed;
  EXPECT_NE(printed.find("password: \"********\""), std::string::npos) << printed;
}

TEST(ConfigFileTest, EmptyFileIsAllDefaults) {
  for (const char* text : {"", "# nothing\n", "---\n", "limits:\n"}) {
    Config config;
    EXPECT_TRUE(ParseConfigText(text, "m.yaml", &config).ok()) << text;
    EXPECT_EQ(config, Config{}) << text;
  }
}

TEST(ConfigFileTest, BadValueNamesFileLineAndKey) {
  std::string text = "node_id: n1\n";
  for (int i = 0; i < 9; ++i) text += "# padding\n";
  text += "limits:\n  max_inflight: 0\n";  // line 12
  EXPECT_EQ(Error(text), "m.yaml:12: limits.max_inflight: must be between 1 and 65535");
  EXPECT_EQ(Error("storage:\n  fsync: maybe\n"),
            "m.yaml:2: storage.fsync: must be true or false, not 'maybe'");
  EXPECT_EQ(Error("log:\n  format: xml\n"),
            "m.yaml:2: log.format: must be one of text, json, not 'xml'");
  EXPECT_EQ(Error("data_dir: \"\"\n"), "m.yaml:1: data_dir: must not be empty");
  EXPECT_EQ(Error("node_id: n1\ncluster:\n  name: prod/eu\n"),
            "m.yaml:3: cluster.name: must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' and "
            "'-', not 'prod/eu'");
}

TEST(ConfigFileTest, UnknownKeysAreNamed) {
  EXPECT_EQ(Error("node_id: a\nnodeid: b\n"), "m.yaml:2: nodeid: unknown key");
  EXPECT_EQ(Error("limits:\n  workers: 2\n  max_inflite: 5\n"),
            "m.yaml:3: limits.max_inflite: unknown key");
  EXPECT_EQ(Error("max-inflight: 5\n"),
            "m.yaml:1: max-inflight: unknown key (the flag --max-inflight is "
            "'limits.max_inflight' in the file)");
  EXPECT_EQ(Error("listeners:\n  - address: 0.0.0.0:1\n    port: 2\n"),
            "m.yaml:3: listeners[0].port: unknown key for a mqtt listener (it has protocol, "
            "address, max_connections)");
  EXPECT_EQ(Error("listeners:\n  - {protocol: ws, address: 0.0.0.0:1, cert_file: /x}\n"),
            "m.yaml:2: listeners[0].cert_file: unknown key for a ws listener (it has protocol, "
            "address, path, max_connections)");
  EXPECT_EQ(Error("node_id: a\nnode_id: b\n"), "m.yaml:2: node_id: duplicate key");
}

TEST(ConfigFileTest, WrongShapesAreNamed) {
  EXPECT_EQ(Error("limits: 5\n"), "m.yaml:1: limits: must be a map of keys, not '5'");
  EXPECT_EQ(Error("cluster:\n  - listen\n"),
            "m.yaml:2: cluster: must be a map of keys, not a list");
  EXPECT_EQ(Error("node_id:\n  name: n1\n"),
            "m.yaml:2: node_id: must be a single value, not a map");
  EXPECT_EQ(Error("data_dir: [a, b]\n"), "m.yaml:1: data_dir: must be a single value, not a list");
  EXPECT_EQ(Error("node_id:\n"), "m.yaml:1: node_id: needs a value");
  EXPECT_EQ(Error("cluster:\n  join: a:1\n"),
            "m.yaml:2: cluster.join: must be a list (use [] for none), not 'a:1'");
  EXPECT_EQ(Error("listeners: 0.0.0.0:1883\n"),
            "m.yaml:1: listeners: must be a list (use [] for none), not '0.0.0.0:1883'");
  EXPECT_EQ(Error("- node_id\n"), "m.yaml:1: the file must be a map of keys, not a list");
  EXPECT_EQ(Error("just text\n"), "m.yaml:1: the file must be a map of keys, not 'just text'");
}

TEST(ConfigFileTest, ListItemsAreNamedByIndex) {
  EXPECT_EQ(Error("cluster:\n  join:\n    - a:1\n    - nope\n"),
            "m.yaml:4: cluster.join[1]: 'nope' is not HOST:PORT with a port in 1..65535");
  EXPECT_EQ(Error("listeners:\n  - protocol: mqtt\n    address: 0.0.0.0:99999\n"),
            "m.yaml:3: listeners[0].address: '0.0.0.0:99999' is not HOST:PORT");
  EXPECT_EQ(Error("listeners:\n  - protocol: mqtt\n"), "m.yaml:2: listeners[0]: address missing");
  EXPECT_EQ(Error("listeners:\n  - 0.0.0.0:1883\n"),
            "m.yaml:2: listeners[0]: must be a map {protocol: mqtt, address: HOST:PORT}, not "
            "'0.0.0.0:1883'");
  EXPECT_EQ(Error("listeners: []\n"), "m.yaml:1: listeners: needs at least one address");
  Config config;
  EXPECT_TRUE(ParseConfigText("cluster:\n  join: []\n", "m.yaml", &config).ok());
}

TEST(ConfigFileTest, UnknownProtocolIsNamedBeforeItsKeys) {
  EXPECT_EQ(Error("listeners:\n  - address: 0.0.0.0:8883\n    cert_file: /x\n    protocol: tls\n"),
            "m.yaml:4: listeners[0].protocol: protocol 'tls': must be mqtt, mqtts, ws or wss");
  EXPECT_EQ(Error("listeners:\n  - {protocol: mqtts, address: 0.0.0.0:1, "
                  "require_client_cert: maybe}\n"),
            "m.yaml:2: listeners[0].require_client_cert: must be true or false, not 'maybe'");
}

TEST(ConfigFileTest, SecureListenersRoundTripThroughPrintConfig) {
  Config c;
  ASSERT_TRUE(ParseConfigText(kEveryKey, "m.yaml", &c).ok());
  Config back;
  ASSERT_TRUE(ParseConfigText(ConfigToYaml(c), "printed", &back).ok()) << ConfigToYaml(c);
  EXPECT_EQ(back.listeners, c.listeners);
  EXPECT_EQ(back.secure_listeners, c.secure_listeners);
}

TEST(ConfigFileTest, SyntaxErrorsNameTheLine) {
  EXPECT_EQ(Error("limits:\n  max_inflight: [1\n"), "m.yaml:3: end of sequence flow not found");
  EXPECT_EQ(Error("node_id: a\n---\nnode_id: b\n"), "m.yaml:3: one YAML document only, found more");
}

// Found by fuzz_config (corpus/config/crash-comma-*): yaml-cpp 0.7's LoadAll looped forever,
// allocating, on a token that cannot start a node; mqttd hung at start-up until killed for
// memory. Each of these used to hang; now each is a syntax error naming the line.
TEST(ConfigFileTest, StrayTokenThatStopsTheYamlParserIsASyntaxError) {
  EXPECT_EQ(Error(","), "m.yaml:1: unexpected ','");
  EXPECT_EQ(Error(",n:"), "m.yaml:1: unexpected ','");
  EXPECT_EQ(Error("# comment\n  ,: x\n"), "m.yaml:2: unexpected ','");
  EXPECT_EQ(Error("node_id: a\n...\n,\n"), "m.yaml:3: one YAML document only, found more");
  EXPECT_EQ(Error("node_id: a\n,\n"), "m.yaml:2: end of map not found");
}

// Found by fuzz_config (corpus/config/crash-not-utf8-round-trip): a value with bytes that are
// not UTF-8 was accepted, and ConfigToYaml, quoting it, turned them into U+FFFD, so the printed
// config no longer parsed back to the same one.
TEST(ConfigFileTest, ValueThatIsNotUtf8IsRefused) {
  EXPECT_EQ(Error("data_dir: ./d\xff:x\n"), "m.yaml:1: data_dir: is not valid UTF-8");
  EXPECT_EQ(Error("listeners:\n  - {protocol: ws, address: ':80', path: \"/\xc0\xaf\"}\n"),
            "m.yaml:2: listeners[0].path: is not valid UTF-8");
  EXPECT_EQ(Error("cluster:\n  join: [\"a\xed\xa0\x80:1\"]\n"),
            "m.yaml:2: cluster.join[0]: is not valid UTF-8");
  // Valid UTF-8 that must be quoted (a control character, a ':') still round-trips.
  auto config =
      Parse({"--config",
             WriteFile("utf8.yaml", "data_dir: \"./d\xc3\xa9\\x16:\xf0\x9f\x98\x80\"\n").c_str()});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->data_dir, "./d\xc3\xa9\x16:\xf0\x9f\x98\x80");
  const std::string printed = ConfigToYaml(*config);
  auto again = Parse({"--config", WriteFile("printed.yaml", printed).c_str()});
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << printed;
  EXPECT_EQ(*again, *config) << printed;
}

TEST(ConfigFileTest, PrintedConfigParsesBackToTheSameConfig) {
  std::string secretless = kEveryKey;
  secretless.replace(secretless.find("hmac_secret: s3cret"), 19, "hmac_secret: \"\"");
  std::string path = WriteFile("every.yaml", secretless);
  auto config = Parse({"--config", path.c_str(), "--join", "c:1"}, {"MQTTD_NODE_ID=n9"});
  ASSERT_TRUE(config.ok()) << config.status();
  for (const Config& original : {*config, *Parse({})}) {
    std::string printed = ConfigToYaml(original);
    auto again = Parse({"--config", WriteFile("printed.yaml", printed).c_str()});
    ASSERT_TRUE(again.ok()) << again.status() << "\n" << printed;
    EXPECT_EQ(*again, original) << printed;
  }
}

TEST(ConfigFileTest, PrintedConfigMasksTheSecret) {
  Config config;
  config.auth_hmac_secret = "s3cret";
  std::string printed = ConfigToYaml(config);
  EXPECT_EQ(printed.find("s3cret"), std::string::npos) << printed;
  EXPECT_NE(printed.find("hmac_secret: \"********\""), std::string::npos) << printed;
  EXPECT_NE(ConfigToYaml(Config{}).find("hmac_secret: \"\""), std::string::npos);
}

TEST(ConfigFileTest, PrintedConfigHasTheDocumentedLayout) {
  YAML::Node printed = YAML::Load(ConfigToYaml(*Parse({})));
  std::vector<std::string> paths;
  CollectPaths(printed, "", &paths);
  EXPECT_EQ(paths, kLayout);
  EXPECT_EQ(printed["listeners"][0]["protocol"].Scalar(), "mqtt");
  EXPECT_EQ(printed["listeners"][0]["address"].Scalar(), "0.0.0.0:1883");
}

// Issue 14: a plain mqtt listener's max_connections, the disk watermark's two forms, the queue
// policy; each survives --print-config.
TEST(ConfigFileTest, LimitsKeysAndTheirRoundTrip) {
  Config config;
  config.node_id = "n1";  // ConfigToYaml writes every key: the host-filled ones must be set
  config.workers = 2;
  ASSERT_TRUE(ParseConfigText("listeners:\n  - {address: 127.0.0.1:1, max_connections: 7}\n"
                              "limits: {queue_full_policy: drop_oldest, message_rate: 50}\n"
                              "storage: {min_free_disk: 2GiB}\n",
                              "m.yaml", &config)
                  .ok());
  ASSERT_EQ(config.listeners.size(), 1u);
  EXPECT_EQ(config.listeners[0].max_connections, 7u);
  EXPECT_EQ(config.queue_full_policy, "drop_oldest");
  EXPECT_EQ(config.message_rate, 50u);
  EXPECT_EQ(config.min_free_disk_bytes, 2ull << 30);
  EXPECT_EQ(config.min_free_disk_percent, 0u);
  Config back;
  const absl::Status printed = ParseConfigText(ConfigToYaml(config), "printed.yaml", &back);
  ASSERT_TRUE(printed.ok()) << printed << "\n" << ConfigToYaml(config);
  EXPECT_EQ(back.listeners, config.listeners);
  EXPECT_EQ(back.min_free_disk_bytes, config.min_free_disk_bytes);
  ASSERT_TRUE(ParseConfigText("storage: {min_free_disk: 10%}\n", "m.yaml", &config).ok());
  EXPECT_EQ(config.min_free_disk_percent, 10u);
  EXPECT_EQ(config.min_free_disk_bytes, 0u);
  EXPECT_EQ(Error("storage: {min_free_disk: 101%}\n"),
            "m.yaml:1: storage.min_free_disk: a percentage must be between 0% and 100%");
  EXPECT_EQ(Error("limits: {queue_full_policy: newest}\n"),
            "m.yaml:1: limits.queue_full_policy: must be one of drop_newest, drop_oldest, not "
            "'newest'");
}

TEST(ConfigFileTest, PrintedConfigListsIgnoredVariables) {
  auto config = Parse({}, {"MQTTD_BIN=/x"});
  ASSERT_TRUE(config.ok());
  EXPECT_NE(ConfigToYaml(*config).find("# ignored environment variables (not configuration "
                                       "keys): MQTTD_BIN"),
            std::string::npos);
}

std::string ReadDoc() {
  std::ifstream in(std::string(MQTT_SOURCE_DIR) + "/docs/configuration.md");
  std::stringstream doc;
  doc << in.rdbuf();
  return doc.str();
}

// docs/configuration.md carries the output of `mqttd --print-config-reference` between two
// marker lines; regenerate it with that command when this fails.
TEST(ConfigFileTest, DocumentationListsEveryKeyAsTheTableSays) {
  std::string doc = ReadDoc();
  const std::string begin = "<!-- BEGIN mqttd --print-config-reference -->\n";
  const std::string end = "<!-- END mqttd --print-config-reference -->";
  size_t from = doc.find(begin);
  size_t to = doc.find(end);
  ASSERT_NE(from, std::string::npos) << "docs/configuration.md missing or without markers";
  ASSERT_NE(to, std::string::npos);
  from += begin.size();
  EXPECT_EQ(doc.substr(from, to - from), ConfigReference())
      << "docs/configuration.md is out of date: replace the text between the markers with the "
         "output of `mqttd --print-config-reference`";
}

TEST(ConfigFileTest, DocumentationExampleIsValid) {
  std::string doc = ReadDoc();
  size_t from = doc.find("```yaml\n");
  ASSERT_NE(from, std::string::npos);
  from += 8;
  std::string example = doc.substr(from, doc.find("```", from) - from);
  Config config;
  absl::Status status = ParseConfigText(example, "example", &config);
  EXPECT_TRUE(status.ok()) << status << "\n" << example;
  EXPECT_EQ(config.cluster_bootstrap_members.size(), 3u);
}

}  // namespace
}  // namespace mqtt
