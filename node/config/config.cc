// SPDX-License-Identifier: Apache-2.0
#include "node/config/config.h"

#include <unistd.h>

#include <fstream>
#include <functional>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace mqtt {
namespace {

using Setter = std::function<absl::Status(absl::string_view value, Config* config)>;

struct Option {
  const char* name;
  const char* value_name;  // nullptr for options without a value
  const char* help;
  Setter set;
};

absl::Status ParseUint(absl::string_view value, uint32_t min, uint32_t max, uint32_t* out) {
  uint32_t parsed;
  if (!absl::SimpleAtoi(value, &parsed) || parsed < min || parsed > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", value, "' is not an integer in [", min, ", ", max, "]"));
  }
  *out = parsed;
  return absl::OkStatus();
}

Setter UintSetter(uint32_t Config::*field, uint32_t min, uint32_t max) {
  return [=](absl::string_view value, Config* config) {
    return ParseUint(value, min, max, &(config->*field));
  };
}

absl::Status ParseBool(absl::string_view value, bool* out) {
  if (value == "on" || value == "true" || value == "1") {
    *out = true;
  } else if (value == "off" || value == "false" || value == "0") {
    *out = false;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("'", value, "' is not on or off"));
  }
  return absl::OkStatus();
}

absl::Status ParseListen(absl::string_view value, Config* config) {
  size_t colon = value.rfind(':');
  if (colon == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("'", value, "' is not HOST:PORT"));
  }
  uint32_t port;
  if (!ParseUint(value.substr(colon + 1), 0, 65535, &port).ok()) {
    return absl::InvalidArgumentError(absl::StrCat("'", value, "' has no valid port"));
  }
  std::string host(value.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  config->listeners.push_back({host, static_cast<uint16_t>(port)});
  return absl::OkStatus();
}

// HOST:PORT with a non-empty host and a port in [min_port, 65535].
absl::Status ParseHostPort(absl::string_view value, uint32_t min_port, std::string* out) {
  size_t colon = value.rfind(':');
  uint32_t port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !ParseUint(value.substr(colon + 1), min_port, 65535, &port).ok()) {
    return absl::InvalidArgumentError(absl::StrCat("'", value, "' is not HOST:PORT"));
  }
  *out = std::string(value);
  return absl::OkStatus();
}

const std::vector<Option>& Options() {
  static const std::vector<Option> options = {
      {"config", "FILE", "read options from FILE (lines 'name value'; '#' comments)", nullptr},
      {"listen", "HOST:PORT",
       "MQTT over TCP on HOST:PORT; repeatable; port 0 picks a free port (default 0.0.0.0:1883)",
       ParseListen},
      {"data-dir", "DIR", "directory for persistent state (default ./data)",
       [](absl::string_view v, Config* c) {
         if (v.empty()) return absl::InvalidArgumentError("must not be empty");
         c->data_dir = std::string(v);
         return absl::OkStatus();
       }},
      {"node-id", "ID", "name of this node in logs and in a cluster (default: host name)",
       [](absl::string_view v, Config* c) {
         if (v.empty()) return absl::InvalidArgumentError("must not be empty");
         c->node_id = std::string(v);
         return absl::OkStatus();
       }},
      {"log-level", "LEVEL", "debug, info, warn or error (default info)",
       [](absl::string_view v, Config* c) {
         if (!ParseLogLevel(std::string_view(v.data(), v.size()), &c->log_level)) {
           return absl::InvalidArgumentError(
               absl::StrCat("'", v, "' is not one of debug, info, warn, error"));
         }
         return absl::OkStatus();
       }},
      {"workers", "N", "worker threads, each with its own event loop (default: one per core)",
       UintSetter(&Config::workers, 1, 256)},
      {"max-inflight", "N",
       "outbound QoS 1/2 messages sent to a client and not yet acknowledged (default 20)",
       UintSetter(&Config::max_inflight, 1, 65535)},
      {"max-queued-messages", "N",
       "messages queued per client behind the inflight window; newer ones are dropped when full "
       "(default 1000)",
       UintSetter(&Config::max_queued_messages, 1, 10'000'000)},
      {"max-queued-bytes", "BYTES",
       "topic + payload bytes queued per client (memory and disk); newer messages are dropped "
       "when full; 0 = no limit (default 67108864)",
       UintSetter(&Config::max_queued_bytes, 0, 4'000'000'000u)},
      {"queue-qos0-offline", "on|off",
       "queue QoS 0 messages for offline persistent sessions (on disk) instead of dropping them "
       "(default off)",
       [](absl::string_view v, Config* c) { return ParseBool(v, &c->queue_qos0_offline); }},
      {"max-packet-size", "BYTES",
       "largest packet accepted from a client; a bigger one closes the connection (default "
       "1048576)",
       UintSetter(&Config::max_packet_size, 64, 268'435'460)},
      {"max-outbound-buffer", "BYTES",
       "unwritten bytes per connection beyond which QoS 0 messages to it are dropped (default "
       "4194304)",
       UintSetter(&Config::max_outbound_buffer, 4096, 1u << 30)},
      {"connect-timeout", "SECONDS", "time a new connection has to send CONNECT (default 10)",
       UintSetter(&Config::connect_timeout_seconds, 1, 3600)},
      {"receive-maximum", "N",
       "5.0 Receive Maximum advertised: unacknowledged inbound QoS 2 messages per client "
       "(default 1024)",
       UintSetter(&Config::receive_maximum, 1, 65535)},
      {"topic-alias-maximum", "N", "5.0 topic aliases a client may set (default 64; 0 = none)",
       UintSetter(&Config::topic_alias_maximum, 0, 65535)},
      {"max-keep-alive", "SECONDS",
       "5.0: a larger or zero client keep alive is replaced by this (Server Keep Alive); 65535 = "
       "no cap (default)",
       UintSetter(&Config::max_keep_alive, 1, 65535)},
      {"shared-subscription-strategy", "NAME",
       "member choice in a shared group: round_robin (default), random, sticky, hash_clientid, "
       "hash_topic",
       [](absl::string_view v, Config* c) {
         static const char* kNames[] = {"round_robin", "random", "sticky", "hash_clientid",
                                        "hash_topic"};
         for (const char* name : kNames) {
           if (v == name) {
             c->shared_subscription_strategy = name;
             return absl::OkStatus();
           }
         }
         return absl::InvalidArgumentError(absl::StrCat("'", v, "' is not a known strategy"));
       }},
      {"shared-subscription-prefer-local", "true|false",
       "in a cluster, a shared group picks an online member on the publisher's node when it has "
       "one, and a member on another node only otherwise (default false: the strategy spreads "
       "over every member cluster-wide)",
       [](absl::string_view v, Config* c) {
         return ParseBool(v, &c->shared_subscription_prefer_local);
       }},
      {"auth-hmac-secret", "SECRET",
       "enable 5.0 enhanced authentication method HMAC-SHA256-CHALLENGE with this shared secret "
       "(prefer the config file to the command line for secrets)",
       [](absl::string_view v, Config* c) {
         if (v.empty()) return absl::InvalidArgumentError("must not be empty");
         c->auth_hmac_secret = std::string(v);
         return absl::OkStatus();
       }},
      {"fsync", "on|off",
       "fsync every storage write: survives power loss, not only a process kill (default off)",
       [](absl::string_view v, Config* c) { return ParseBool(v, &c->fsync); }},
      {"persistence", "on|off",
       "keep persistent sessions, their queues and retained messages in RocksDB under data-dir "
       "(default on)",
       [](absl::string_view v, Config* c) { return ParseBool(v, &c->persistence); }},
      {"storage-wal-budget", "BYTES",
       "write-ahead log (and memtable) budget of the store: disk use stays within live data plus "
       "a few times this (about once, measured), and a restart replays at most this much log "
       "(default 67108864)",
       UintSetter(&Config::storage_wal_budget, 4u << 20, 4'000'000'000u)},
      {"cluster-listen", "HOST:PORT",
       "gRPC address for peer nodes and mqttctl; without it the node runs alone (port 0 picks "
       "a free port)",
       [](absl::string_view v, Config* c) { return ParseHostPort(v, 0, &c->cluster_listen); }},
      {"cluster-advertise", "HOST:PORT",
       "address peers use to reach this node (NAT, Kubernetes); default: the cluster-listen "
       "address",
       [](absl::string_view v, Config* c) { return ParseHostPort(v, 1, &c->cluster_advertise); }},
      {"join", "HOST:PORT,...", "seed nodes to join, retried with backoff until one answers",
       [](absl::string_view v, Config* c) {
         c->join.clear();
         for (absl::string_view seed : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
           std::string parsed;
           if (absl::Status s = ParseHostPort(absl::StripAsciiWhitespace(seed), 1, &parsed);
               !s.ok()) {
             return s;
           }
           c->join.push_back(parsed);
         }
         if (c->join.empty()) return absl::InvalidArgumentError("no seed given");
         return absl::OkStatus();
       }},
      {"join-dns", "NAME:PORT",
       "every address NAME resolves to is a seed (a Kubernetes headless Service)",
       [](absl::string_view v, Config* c) { return ParseHostPort(v, 1, &c->join_dns); }},
      {"cluster-remove-after", "SECONDS",
       "a dead member is forgotten after this long (default 3600)",
       UintSetter(&Config::cluster_remove_after, 1, 30 * 24 * 3600)},
      {"cluster-probe-interval", "MS",
       "membership: one member is probed per interval (default 1000)",
       UintSetter(&Config::cluster_probe_interval_ms, 10, 60000)},
      {"cluster-suspect-timeout", "MS",
       "membership: a suspected member not heard from within this is declared dead (default "
       "5000)",
       UintSetter(&Config::cluster_suspect_timeout_ms, 50, 600000)},
      {"cluster-sync-timeout", "SECONDS",
       "at start-up, wait at most this long to join and hold the peers' routes before taking "
       "clients (default 10)",
       UintSetter(&Config::cluster_sync_timeout, 0, 3600)},
      {"cluster-outbox-messages", "N",
       "messages forwarded to one peer and not yet acknowledged, at most; more are dropped and "
       "logged (default 1000000)",
       UintSetter(&Config::cluster_outbox_messages, 1, 100'000'000)},
      {"cluster-outbox-bytes", "BYTES",
       "bytes of messages forwarded to one peer and not yet acknowledged, at most (default "
       "268435456)",
       UintSetter(&Config::cluster_outbox_bytes, 4096, 4'000'000'000u)},
      {"cluster-raft-listen", "HOST:PORT",
       "address of the client-id registry's Raft port, also what peers dial (default: the "
       "cluster-listen address with port + 1; port 0 picks a free port)",
       [](absl::string_view v, Config* c) { return ParseHostPort(v, 0, &c->cluster_raft_listen); }},
      {"cluster-bootstrap-expect", "N",
       "a node that has never been in a registry waits until it sees N members, none of them in "
       "a registry yet, and then the N with the smallest node ids form it; set it to the size of "
       "the first deployment (at most 5) (default 1)",
       UintSetter(&Config::cluster_bootstrap_expect, 1, 5)},
      {"cluster-allow-register-during-netsplit", "true|false",
       "take CONNECTs on a side of a partition without a registry majority (two sessions with one "
       "client id may then live until the partition heals) instead of refusing them (default "
       "false)",
       [](absl::string_view v, Config* c) {
         return ParseBool(v, &c->cluster_allow_register_during_netsplit);
       }},
      {"help", nullptr, "print this help and exit",
       [](absl::string_view, Config* c) {
         c->help = true;
         return absl::OkStatus();
       }},
  };
  return options;
}

const Option* FindOption(absl::string_view name) {
  for (const Option& option : Options()) {
    if (name == option.name) return &option;
  }
  return nullptr;
}

absl::Status ApplyOption(const Option& option, absl::string_view value, Config* config,
                         absl::string_view where) {
  absl::Status status = option.set(value, config);
  if (status.ok()) return status;
  return absl::InvalidArgumentError(
      absl::StrCat(where, "invalid value for '", option.name, "': ", status.message()));
}

// A listener given on the command line replaces the file's listeners rather than adding to them.
void ApplyDefaults(Config* config) {
  if (config->listeners.empty()) config->listeners.push_back({"0.0.0.0", 1883});
  if (config->node_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    config->node_id = host[0] ? host : "mqttd";
  }
}

}  // namespace

absl::Status ParseConfigText(absl::string_view text, absl::string_view file_name, Config* config) {
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    std::string where = absl::StrCat(file_name, ":", line_number, ": ");
    size_t split = line.find_first_of(" \t=");
    absl::string_view name = line.substr(0, split);
    absl::string_view value =
        split == absl::string_view::npos ? "" : absl::StripAsciiWhitespace(line.substr(split));
    if (absl::ConsumePrefix(&value, "=")) value = absl::StripAsciiWhitespace(value);
    const Option* option = FindOption(name);
    if (option == nullptr || option->set == nullptr || name == "help") {
      return absl::InvalidArgumentError(absl::StrCat(where, "unknown key '", name, "'"));
    }
    if (option->value_name != nullptr && value.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(where, "key '", name, "' needs a value"));
    }
    if (absl::Status s = ApplyOption(*option, value, config, where); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<Config> ParseCommandLine(int argc, const char* const* argv) {
  struct Flag {
    const Option* option;
    std::string value;
  };
  std::vector<Flag> flags;
  std::string config_file;
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (!absl::ConsumePrefix(&arg, "--")) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", argv[i], "'"));
    }
    std::string value;
    size_t eq = arg.find('=');
    bool inline_value = eq != absl::string_view::npos;
    if (inline_value) {
      value = std::string(arg.substr(eq + 1));
      arg = arg.substr(0, eq);
    }
    const Option* option = FindOption(arg);
    if (option == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown option '--", arg, "'"));
    }
    if (option->value_name != nullptr && !inline_value) {
      if (i + 1 >= argc) {
        return absl::InvalidArgumentError(absl::StrCat("option '--", arg, "' needs a value"));
      }
      value = argv[++i];
    }
    if (arg == "config") {
      config_file = value;
    } else {
      flags.push_back({option, value});
    }
  }
  Config config;
  if (!config_file.empty()) {
    std::ifstream in(config_file);
    if (!in) {
      return absl::InvalidArgumentError(
          absl::StrCat("option '--config': cannot read '", config_file, "'"));
    }
    std::stringstream text;
    text << in.rdbuf();
    if (absl::Status s = ParseConfigText(text.str(), config_file, &config); !s.ok()) return s;
  }
  bool listen_on_command_line = false;
  for (const Flag& flag : flags) {
    if (absl::string_view(flag.option->name) == "listen" && !listen_on_command_line) {
      config.listeners.clear();
      listen_on_command_line = true;
    }
    std::string where = "command line: ";
    if (absl::Status s = ApplyOption(*flag.option, flag.value, &config, where); !s.ok()) return s;
  }
  ApplyDefaults(&config);
  return config;
}

std::string HelpText() {
  std::string text =
      "Usage: mqttd [OPTIONS]\n"
      "An MQTT 3.1/3.1.1/5.0 broker node. Options (also valid as 'name value' lines in --config "
      "FILE):\n";
  for (const Option& option : Options()) {
    std::string flag = absl::StrCat("--", option.name);
    if (option.value_name != nullptr) absl::StrAppend(&flag, " ", option.value_name);
    absl::StrAppend(&text, "  ", flag, std::string(flag.size() < 28 ? 28 - flag.size() : 1, ' '),
                    option.help, "\n");
  }
  return text;
}

}  // namespace mqtt
