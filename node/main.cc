// SPDX-License-Identifier: Apache-2.0
// mqttd: one broker node. Parses the configuration, starts the workers and listeners, prints one
// "ready" line on stdout, on SIGHUP re-reads the password and ACL files, and on SIGTERM/SIGINT
// (or `mqttctl drain`) drains: closes every connection, hands its persistent sessions to other
// nodes when clustered, leaves the cluster and exits 0.
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cluster/node.h"
#include "node/base/host_port.h"
#include "node/base/log.h"
#include "node/bridge/bridge.h"
#include "node/bridge/placement.h"
#include "node/bridge/topic_line.h"
#include "node/config/config.h"
#include "node/http/api.h"
#include "node/http/node_http.h"
#include "node/net/connection_gate.h"
#include "node/net/descriptor_table.h"
#include "node/net/io_worker.h"
#include "node/net/layered_transport.h"
#include "node/net/listener.h"
#include "node/net/tcp_transport.h"
#include "node/router/shared_subscriptions.h"
#include "node/session/broker.h"
#include "node/sys/sys_topics.h"
#include "storage/store.h"

#ifndef MQTTD_VERSION
#define MQTTD_VERSION "unknown"
#endif

namespace {

// The password and ACL files, or null when neither is configured and anonymous clients are
// allowed (nothing to check).
absl::StatusOr<std::shared_ptr<mqtt::auth::AccessControl>> AccessControlFrom(
    const mqtt::Config& config) {
  if (config.password_file.empty() && config.acl_file.empty() &&
      config.allow_anonymous != "false") {
    return nullptr;
  }
  return mqtt::auth::AccessControl::Create(
      {config.password_file, config.acl_file, config.allow_anonymous});
}

// The file watch: re-reads the password and ACL files when one changed (a bad new file keeps
// the old policy, logged once per change).
void ReloadChangedAccessFiles(mqtt::auth::AccessControl* access_control) {
  if (access_control == nullptr) return;
  bool reloaded = false;
  if (absl::Status s = access_control->ReloadIfChanged(&reloaded); !s.ok()) {
    MQTT_LOG_ERROR("password or ACL file changed; reload failed, keeping the previous ones: %s",
                   s.message());
  } else if (reloaded) {
    MQTT_LOG_INFO("password or ACL file changed: reloaded");
  }
}

// Re-reads the password and ACL files (a bad new file keeps the old policy).
void ReloadAccessFiles(mqtt::auth::AccessControl* access_control) {
  if (access_control == nullptr) return;
  if (absl::Status s = access_control->Reload(); !s.ok()) {
    MQTT_LOG_ERROR("SIGHUP: reload failed, keeping the previous password and ACL files: %s",
                   s.message());
  } else {
    MQTT_LOG_INFO("SIGHUP: password and ACL files reloaded");
  }
}

// Checks the disk watermark and logs a change (or a failed check).
void CheckDiskWatermark(mqtt::storage::DiskWatermark* watermark, const std::string& data_dir) {
  if (watermark == nullptr) return;
  absl::StatusOr<bool> changed = watermark->Check();
  if (!changed.ok()) {
    MQTT_LOG_ERROR("disk watermark: %s", changed.status().message());
  } else if (*changed && watermark->exceeded()) {
    MQTT_LOG_WARN(
        "disk watermark exceeded: %d bytes free for data-dir '%s', below storage.min_free_disk: "
        "new persistent sessions and QoS 1/2 messages that would be stored are refused",
        watermark->available_bytes(), data_dir);
  } else if (*changed) {
    MQTT_LOG_INFO("disk watermark cleared: %d bytes free for data-dir '%s'",
                  watermark->available_bytes(), data_dir);
  }
}

// The watermark of --min-free-disk for the store's file system; null without a store or
// with --min-free-disk 0.
std::shared_ptr<mqtt::storage::DiskWatermark> DiskWatermarkFrom(const mqtt::Config& config,
                                                                bool has_store) {
  if (!has_store || (config.min_free_disk_bytes == 0 && config.min_free_disk_percent == 0)) {
    return nullptr;
  }
  return std::make_shared<mqtt::storage::DiskWatermark>(
      mqtt::storage::MinFreeDisk{config.min_free_disk_bytes, config.min_free_disk_percent},
      [dir = config.data_dir] { return mqtt::storage::StatDisk(dir); });
}

// $SYS topics (node/sys): the interval, the version and, clustered, the membership summary.
mqtt::sys::SysOptions SysOptionsFrom(const mqtt::Config& config,
                                     mqtt::cluster::ClusterNode* cluster) {
  mqtt::sys::SysOptions options;
  options.interval = std::chrono::seconds(config.sys_interval);
  options.version = MQTTD_VERSION;
  options.node_id = config.node_id;
  if (cluster != nullptr) {
    options.cluster_members = [cluster] {
      std::map<std::string, uint64_t> counts;
      for (const mqtt::cluster::MemberInfo& m : cluster->membership().Members()) {
        ++counts[mqtt::cluster::MemberStateName(m.state)];
      }
      return counts;
    };
  }
  return options;
}

mqtt::BrokerOptions BrokerOptionsFrom(const mqtt::Config& config) {
  mqtt::BrokerOptions options;
  options.session_limits.max_inflight = config.max_inflight;
  options.session_limits.max_queued_messages = config.max_queued_messages;
  options.session_limits.max_outbound_buffer = config.max_outbound_buffer;
  options.session_limits.max_queued_bytes = config.max_queued_bytes;
  options.session_limits.queue_qos0_offline = config.queue_qos0_offline;
  options.session_limits.drop_oldest = config.queue_full_policy == "drop_oldest";
  options.max_packet_size = config.max_packet_size;
  options.connect_timeout_seconds = config.connect_timeout_seconds;
  options.receive_maximum = static_cast<uint16_t>(config.receive_maximum);
  options.topic_alias_maximum = static_cast<uint16_t>(config.topic_alias_maximum);
  options.max_keep_alive = static_cast<uint16_t>(config.max_keep_alive);
  options.max_session_expiry = config.max_session_expiry;
  options.server_reference = config.server_reference;
  options.message_rate = config.message_rate;
  options.byte_rate = config.byte_rate;
  mqtt::ParseShareStrategy(config.shared_subscription_strategy, &options.share_strategy);
  if (!config.auth_hmac_secret.empty()) {
    options.auth_methods.push_back(mqtt::auth::MakeHmacChallengeMethod(config.auth_hmac_secret));
  }
  return options;
}

mqtt::bridge::BridgeOptions BridgeOptionsFrom(const mqtt::BridgeConfig& b) {
  mqtt::bridge::BridgeOptions o;
  o.name = b.name;
  o.addresses = b.addresses;
  o.version = b.protocol_version == "mqttv50" ? mqtt::Version::kV5 : mqtt::Version::kV311;
  o.client_id = b.client_id.empty() ? b.name : b.client_id;
  o.username = b.username;
  o.password = b.password;
  o.tls = b.tls;
  o.ca_file = b.tls_options.ca_file;
  o.cert_file = b.tls_options.cert_file;
  o.key_file = b.tls_options.key_file;
  o.verify = b.tls_options.verify;
  o.server_name = b.tls_options.server_name;
  o.clean_session = b.clean_session;
  o.session_expiry = b.session_expiry;
  o.keepalive = static_cast<uint16_t>(b.keepalive);
  o.restart_min = b.restart_min;
  o.restart_max = b.restart_max;
  o.try_private = b.try_private;
  for (const std::string& line : b.topics) {
    o.topics.push_back(*mqtt::bridge::ParseTopicLine(line));  // checked by the config reader
  }
  return o;
}

// Clustered: starts the bridges this node owns among the alive members (rendezvous hashing,
// node/bridge/placement.h) and stops the others. A bridge whose owner died moves within the
// membership's failure detection (suspect timeout) plus a second. Main thread.
void PlaceBridges(const mqtt::cluster::Membership& membership, const std::string& self,
                  const std::vector<std::unique_ptr<mqtt::bridge::Bridge>>& bridges) {
  std::vector<std::string> alive;
  for (const mqtt::cluster::MemberInfo& m : membership.Members()) {
    if (m.state == mqtt::cluster::MemberState::kAlive) alive.push_back(m.node_id);
  }
  for (const auto& bridge : bridges) {
    const std::string owner = mqtt::bridge::RendezvousOwner(bridge->name(), alive);
    bridge->SetOwner(owner);
    const bool mine = owner == self;
    if (mine == bridge->running()) continue;
    MQTT_LOG_INFO("bridge %s: %s on this node", bridge->name(), mine ? "starting" : "stopping");
    mine ? bridge->Start() : bridge->Stop();
  }
}

// The registry's Raft address: --cluster-raft-listen, else the cluster port + 1, else (cluster
// port 0) a port free now. libraft needs the port before it binds: it is in the configuration.
absl::StatusOr<std::string> RaftListenAddress(const mqtt::Config& config) {
  std::string address = config.cluster_raft_listen;
  if (address.empty()) address = config.cluster_listen;
  absl::StatusOr<mqtt::HostPort> parsed = mqtt::ParseHostPort(address, {.allow_port_zero = true});
  if (!parsed.ok()) return parsed.status();  // the config checked it: not expected
  const auto& [host, port] = *parsed;
  if (config.cluster_raft_listen.empty() && port == 65535) {
    return absl::InvalidArgumentError(
        "cluster.raft_listen: the cluster.listen port is 65535, so there is no port + 1: set it");
  }
  if (config.cluster_raft_listen.empty() && port != 0) {
    return mqtt::JoinHostPort(host, static_cast<uint16_t>(port + 1));
  }
  if (port != 0) return address;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  socklen_t len = sizeof(addr);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError("cluster: no free port for the registry's Raft transport");
  }
  close(fd);
  return mqtt::JoinHostPort(host, ntohs(addr.sin_port));
}

// Binds `address` (HOST:PORT, as libuv will: SO_REUSEADDR) and closes it again. The Raft port is
// bound only once the registry starts, possibly after start-up, and libraft reports a port that
// another process holds as "I/O error": a configuration mistake is caught here instead, naming
// the key. (The port can still be taken between this check and the bind; the registry then
// reports it and retries.)
absl::Status CheckRaftPortFree(const mqtt::Config& config, const std::string& address) {
  absl::StatusOr<mqtt::HostPort> parsed = mqtt::ParseHostPort(address);
  if (!parsed.ok()) return absl::OkStatus();  // the registry reports a bad address itself
  const std::string port = absl::StrCat(parsed->port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(parsed->host.c_str(), port.c_str(), &hints, &found) != 0) {
    return absl::OkStatus();
  }
  int error = 0;
  const int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  const int on = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
      bind(fd, found->ai_addr, found->ai_addrlen) != 0) {
    error = errno;
  }
  if (fd >= 0) close(fd);
  freeaddrinfo(found);
  if (error == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "cluster.raft_listen ", address, ": cannot listen: ", std::strerror(error),
      config.cluster_raft_listen.empty() ? " (by default the cluster.listen port + 1)" : ""));
}

// `mqttctl drain` and SIGTERM end the node the same way: a drain request sends SIGTERM to this
// process (its main thread takes it, WaitForStopSignal), and every requester waits for the one
// report, which the main thread gives once everything is handed over.
class DrainHandle {
 public:
  std::shared_future<mqtt::admin::v1::DrainResponse> Request() {
    kill(getpid(), SIGTERM);
    return report_;
  }
  void Report(mqtt::admin::v1::DrainResponse report) { promise_.set_value(std::move(report)); }

 private:
  std::promise<mqtt::admin::v1::DrainResponse> promise_;
  std::shared_future<mqtt::admin::v1::DrainResponse> report_ = promise_.get_future().share();
};

// Joins the cluster when --cluster-listen is given (null otherwise). A restart comes back with a
// higher incarnation than any this node announced before, kept in the store's node record, so
// that the members' old news about it (suspect, dead) is refuted.
absl::StatusOr<std::unique_ptr<mqtt::cluster::ClusterNode>> StartCluster(
    const mqtt::Config& config, mqtt::storage::Store* store, mqtt::Broker* broker,
    DrainHandle* drain, std::function<std::vector<mqtt::bridge::BridgeStatus>()> bridges) {
  if (config.cluster_listen.empty()) {
    if (!config.cluster_tls_cert_file.empty() || !config.cluster_tls_key_file.empty() ||
        !config.cluster_tls_ca_file.empty()) {
      return absl::InvalidArgumentError("cluster.tls.* is set but cluster.listen is not");
    }
    return nullptr;
  }
  mqtt::cluster::ClusterOptions options;
  options.node_id = config.node_id;
  options.cluster_name = config.cluster_name;
  options.listen = config.cluster_listen;
  options.advertise = config.cluster_advertise;
  options.seeds = config.join;
  options.join_dns = config.join_dns;
  options.tls = {config.cluster_tls_cert_file, config.cluster_tls_key_file,
                 config.cluster_tls_ca_file, config.cluster_tls_server_name};
  options.remove_after = absl::Seconds(config.cluster_remove_after);
  options.probe_interval = absl::Milliseconds(config.cluster_probe_interval_ms);
  options.suspect_timeout = absl::Milliseconds(config.cluster_suspect_timeout_ms);
  options.forward.max_outbox_messages = config.cluster_outbox_messages;
  options.forward.max_outbox_bytes = config.cluster_outbox_bytes;
  absl::StatusOr<std::string> raft_listen = RaftListenAddress(config);
  if (!raft_listen.ok()) return raft_listen.status();
  options.raft_listen = *raft_listen;
  options.registry_dir = (std::filesystem::path(config.data_dir) / "registry").string();
  options.allow_register_during_netsplit = config.cluster_allow_register_during_netsplit;
  options.bootstrap_members = config.cluster_bootstrap_members;
  if (store != nullptr) {
    options.start_incarnation = store->node_meta().incarnation() + 1;
    if (absl::Status s = store->SetNodeIdentity(config.node_id, options.start_incarnation);
        !s.ok()) {
      return s;
    }
  } else {
    // Nothing remembered between runs: a clock-based incarnation still grows across restarts.
    options.start_incarnation = static_cast<uint64_t>(absl::ToUnixMillis(absl::Now()));
  }
  auto status = [broker, store] {
    mqtt::cluster::LocalStatus s;
    for (size_t i = 0; i < broker->worker_count(); ++i)
      s.clients += broker->shard(i).client_count();
    s.subscriptions = broker->router().subscription_count();
    s.retained = broker->router().retained_count();
    if (store != nullptr) {
      const mqtt::storage::StoreStats stats = store->stats();
      s.queued_messages = stats.queue_entries;
      s.stored_messages = stats.messages;
    }
    return s;
  };
  auto claimed_elsewhere = [broker](const std::string& client_id, uint64_t epoch) {
    broker->ClaimedElsewhere(client_id, epoch);
  };
  auto sessions = [broker](mqtt::SessionFilter f) { return broker->ListSessions(std::move(f)); };
  auto kick = [broker](std::string client_id) {
    return broker->Kick(std::move(client_id), mqtt::rc::kAdministrativeAction);
  };
  absl::StatusOr<std::unique_ptr<mqtt::cluster::ClusterNode>> node =
      mqtt::cluster::ClusterNode::Start(
          options, {&broker->router(), store, broker, status, claimed_elsewhere, sessions, kick,
                    broker, [drain] { return drain->Request(); },
                    [broker](size_t count) { return broker->Shed(count); }, std::move(bridges)});
  // After the cluster port is bound (a busy one is reported first), before the registry starts.
  if (node.ok()) {
    if (absl::Status s = CheckRaftPortFree(config, options.raft_listen); !s.ok()) return s;
  }
  return node;
}

// The TLS settings of one mqtts or wss listener: its own keys over the tls.* settings.
mqtt::net::TlsOptions TlsOptionsFor(const mqtt::Config& config,
                                    const mqtt::SecureListener& listener) {
  mqtt::net::TlsOptions o;
  o.cert_file = listener.cert_file.empty() ? config.tls_cert_file : listener.cert_file;
  o.key_file = listener.key_file.empty() ? config.tls_key_file : listener.key_file;
  o.ca_file = listener.ca_file.empty() ? config.tls_ca_file : listener.ca_file;
  o.require_client_cert = listener.require_client_cert.empty()
                              ? config.tls_require_client_cert
                              : listener.require_client_cert == "true";
  o.identity = config.tls_username_from_cert == "cn"    ? mqtt::net::CertIdentity::kCn
               : config.tls_username_from_cert == "san" ? mqtt::net::CertIdentity::kSan
                                                        : mqtt::net::CertIdentity::kNone;
  o.min_version = config.tls_min_version;
  o.ciphers = config.tls_ciphers;
  o.ciphersuites = config.tls_ciphersuites;
  o.groups = config.tls_groups;
  return o;
}

absl::StatusOr<std::shared_ptr<mqtt::net::LayeredOptions>> LayeredOptionsFor(
    const mqtt::Config& config, const mqtt::SecureListener& listener) {
  auto options = std::make_shared<mqtt::net::LayeredOptions>();
  options->protocol = listener.protocol;
  options->websocket = listener.protocol != "mqtts";
  options->ws_path = listener.path.empty() ? config.ws_path : listener.path;
  options->handshake_timeout = std::chrono::seconds(config.tls_handshake_timeout);
  if (options->websocket && (options->ws_path.empty() || options->ws_path[0] != '/')) {
    return absl::InvalidArgumentError(absl::StrCat(listener.protocol, " listener: path '",
                                                   options->ws_path, "' must start with '/'"));
  }
  if (listener.protocol == "mqtts" || listener.protocol == "wss") {
    auto tls = mqtt::net::TlsContext::Create(TlsOptionsFor(config, listener));
    if (!tls.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(listener.protocol, " listener ", listener.address.host, ":",
                       listener.address.port, ": ", tls.status().message()));
    }
    options->tls = std::move(*tls);
  }
  return options;
}

// The connection limits of each listener, in the order of config.listeners then
// config.secure_listeners: --max-connections (a secure listener's own max_connections first) and
// --connection-rate.
std::vector<std::shared_ptr<mqtt::net::ConnectionGate>> ConnectionGatesFor(
    const mqtt::Config& config) {
  std::vector<std::shared_ptr<mqtt::net::ConnectionGate>> gates;
  for (const mqtt::ListenAddress& address : config.listeners) {
    gates.push_back(std::make_shared<mqtt::net::ConnectionGate>(
        absl::StrCat("mqtt ", address.host, ":", address.port),
        address.max_connections != 0 ? address.max_connections : config.max_connections,
        config.connection_rate));
  }
  for (const mqtt::SecureListener& l : config.secure_listeners) {
    gates.push_back(std::make_shared<mqtt::net::ConnectionGate>(
        absl::StrCat(l.protocol, " ", l.address.host, ":", l.address.port),
        l.max_connections != 0 ? l.max_connections : config.max_connections,
        config.connection_rate));
  }
  return gates;
}

// Who may use the HTTP API: --http-api-key-file's keys, --http-basic-auth-file's users (read
// once at start-up, like the API keys). An unreadable or malformed file stops the start.
absl::StatusOr<mqtt::http::ApiAuth> ApiAuthFrom(const mqtt::Config& config) {
  mqtt::http::ApiAuth auth;
  if (!config.http_api_key_file.empty()) {
    absl::StatusOr<std::vector<std::string>> keys =
        mqtt::http::ReadApiKeys(config.http_api_key_file);
    if (!keys.ok()) return keys.status();
    auth.keys = std::move(*keys);
  }
  if (!config.http_basic_auth_file.empty()) {
    absl::StatusOr<mqtt::auth::PasswordFile> users =
        mqtt::auth::PasswordFile::Load(config.http_basic_auth_file);
    if (!users.ok()) {
      return absl::Status(users.status().code(),
                          absl::StrCat("http: basic auth file: ", users.status().message()));
    }
    if (users->size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "http: the basic auth file '", config.http_basic_auth_file, "' holds no user"));
    }
    auth.users = std::make_shared<const mqtt::auth::PasswordFile>(std::move(*users));
  }
  return auth;
}

// Accepted sockets of a TLS or WebSocket listener beyond its limits are closed at once.
mqtt::net::Listener::AcceptFn SecureAcceptor(mqtt::Broker* broker,
                                             std::shared_ptr<mqtt::net::LayeredOptions> options) {
  return [broker, options](mqtt::net::IoWorker* worker, int fd) {
    mqtt::net::ConnectionGate* gate = options->gate;
    if (gate != nullptr && !gate->Admit()) {
      ::close(fd);
      return;
    }
    mqtt::net::SslPtr ssl;
    if (options->tls != nullptr) ssl.reset(options->tls->NewSsl());
    if (options->tls != nullptr && ssl == nullptr) {
      ::close(fd);
      if (gate != nullptr) gate->Closed();
      return;
    }
    absl::StatusOr<mqtt::net::TcpSocket> socket = mqtt::net::AdoptSocket(worker, fd);
    if (!socket.ok()) {  // AdoptSocket closed the descriptor
      if (gate != nullptr) gate->Closed();
      return;
    }
    broker->Accept(std::make_shared<mqtt::net::LayeredTransport>(worker, std::move(*socket),
                                                                 options, std::move(ssl)));
  };
}

// Re-reads the certificates and keys of every TLS listener: new connections use the new ones,
// open ones keep theirs. A file that does not load keeps its listener on the old context.
// With `only_changed`, a context whose files' modification times are unchanged is skipped.
void ReloadTlsContexts(const std::vector<std::shared_ptr<mqtt::net::TlsContext>>& contexts,
                       bool only_changed) {
  for (const auto& tls : contexts) {
    bool reloaded = true;
    absl::Status s = only_changed ? tls->ReloadIfChanged(&reloaded) : tls->Reload();
    if (!s.ok()) {
      MQTT_LOG_ERROR("TLS reload of '%s' failed, the previous certificate stays: %s",
                     tls->options().cert_file, s.message());
    } else if (reloaded) {
      MQTT_LOG_INFO("TLS certificate '%s' reloaded", tls->options().cert_file);
    }
  }
}

// Runs each watch of files every `interval` seconds (0: never), from WaitForStopSignal's poll.
class FileWatches {
 public:
  void Add(uint32_t interval_seconds, std::function<void()> check) {
    if (interval_seconds == 0) return;
    watches_.push_back({absl::Seconds(interval_seconds), absl::Now(), std::move(check)});
  }
  // How often WaitForStopSignal must poll: the shortest interval (0: no watch).
  uint32_t poll_seconds() const {
    uint32_t shortest = 0;
    for (const Watch& w : watches_) {
      const auto s = static_cast<uint32_t>(absl::ToInt64Seconds(w.interval));
      if (shortest == 0 || s < shortest) shortest = s;
    }
    return shortest;
  }
  void Poll() {
    const absl::Time now = absl::Now();
    for (Watch& w : watches_) {
      // Polled every shortest interval: a wake-up a little early still counts as due.
      if (now - w.last + absl::Milliseconds(200) < w.interval) continue;
      w.last = now;
      w.check();
    }
  }

 private:
  struct Watch {
    absl::Duration interval;
    absl::Time last;
    std::function<void()> check;
  };
  std::vector<Watch> watches_;
};

// Waits for SIGTERM or SIGINT and returns it. Runs `on_sighup` at each SIGHUP, and `poll` every
// `poll_seconds` (0: never).
int WaitForStopSignal(const sigset_t& signals, uint32_t poll_seconds,
                      const std::function<void()>& on_sighup, const std::function<void()>& poll) {
  while (true) {
    timespec timeout{static_cast<time_t>(poll_seconds), 0};
    int signal_number = poll_seconds == 0 ? sigwaitinfo(&signals, nullptr)
                                          : sigtimedwait(&signals, nullptr, &timeout);
    if (signal_number == SIGTERM || signal_number == SIGINT) return signal_number;
    if (signal_number == SIGHUP) {
      on_sighup();
    } else if (signal_number < 0 && errno == EAGAIN) {
      poll();
    }
  }
}

// Before any thread starts (RocksDB's included): see descriptor_table.h. 65,536 descriptors, or
// the configured connection limit and some room, take ~0.5 MiB of kernel memory per 65,536.
void PrepareDescriptors(const mqtt::Config& config) {
  const uint64_t expected = std::max<uint64_t>(65536, uint64_t{config.max_connections} + 1024);
  absl::StatusOr<mqtt::net::DescriptorTable> table = mqtt::net::PrepareDescriptorTable(expected);
  if (!table.ok()) {
    MQTT_LOG_WARN("descriptor table not grown in advance: %s", table.status().message());
    return;
  }
  MQTT_LOG_INFO("descriptor limit %d%s, table of %d", table->limit,
                table->raised_from == 0
                    ? ""
                    : absl::StrCat(" (soft limit raised from ", table->raised_from, ")"),
                table->slots);
}

int Run(const mqtt::Config& config) {
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    MQTT_LOG_ERROR("data-dir '%s': %s", config.data_dir, ec.message());
    return 1;
  }
  // Signals are taken synchronously by this thread; block them before workers start so that
  // no worker thread receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  PrepareDescriptors(config);

  std::unique_ptr<mqtt::storage::Store> store;
  if (config.persistence) {
    mqtt::storage::StoreOptions store_options;
    store_options.path = config.data_dir;
    store_options.fsync = config.fsync;
    store_options.wal_budget_bytes = config.storage_wal_budget;
    auto opened = mqtt::storage::Store::Open(store_options);
    if (!opened.ok()) {
      MQTT_LOG_ERROR("cannot open the store in data-dir '%s': %s", config.data_dir,
                     opened.status().message());
      return 1;
    }
    store = std::move(*opened);
  }

  // Before the workers: a connection still open when they stop counts down through its gate.
  const std::vector<std::shared_ptr<mqtt::net::ConnectionGate>> gates = ConnectionGatesFor(config);
  uint32_t worker_count =
      config.workers ? config.workers : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<mqtt::net::IoWorker>> workers;
  std::vector<mqtt::net::IoWorker*> worker_ptrs;
  for (uint32_t i = 0; i < worker_count; ++i) {
    workers.push_back(std::make_unique<mqtt::net::IoWorker>(i));
    worker_ptrs.push_back(workers.back().get());
  }
  absl::StatusOr<std::shared_ptr<mqtt::auth::AccessControl>> access_control =
      AccessControlFrom(config);
  if (!access_control.ok()) {
    MQTT_LOG_ERROR("%s", access_control.status().message());
    return 1;
  }
  mqtt::BrokerOptions broker_options = BrokerOptionsFrom(config);
  broker_options.access_control = *access_control;
  std::shared_ptr<mqtt::storage::DiskWatermark> watermark =
      DiskWatermarkFrom(config, store != nullptr);
  CheckDiskWatermark(watermark.get(), config.data_dir);
  broker_options.disk_watermark = watermark;
  mqtt::Broker broker(std::move(broker_options), worker_ptrs, store.get());
  DrainHandle drain;
  broker.router().set_prefer_local_members(config.shared_subscription_prefer_local);
  // Bridges (node/bridge/bridge.h), each on the worker its name hashes to; started with the
  // listeners, alone; clustered, each runs on the one alive member its name picks
  // (node/bridge/placement.h), checked every second (PlaceBridges).
  // Made before the cluster, whose admin service reports them (`mqttctl bridges`).
  std::vector<std::unique_ptr<mqtt::bridge::Bridge>> bridges;
  for (const mqtt::BridgeConfig& b : config.bridges) {
    mqtt::net::IoWorker* worker =
        worker_ptrs[std::hash<std::string>{}(b.name) % worker_ptrs.size()];
    bridges.push_back(
        std::make_unique<mqtt::bridge::Bridge>(&broker, worker, BridgeOptionsFrom(b)));
  }
  auto bridge_status = [&bridges] {
    std::vector<mqtt::bridge::BridgeStatus> out;
    for (const auto& b : bridges) out.push_back(b->Status());
    return out;
  };
  // The cluster starts before recovery, so that the subscriptions of recovered sessions enter its
  // route table like any others; it joins the other members after recovery.
  absl::StatusOr<std::unique_ptr<mqtt::cluster::ClusterNode>> cluster =
      StartCluster(config, store.get(), &broker, &drain, bridge_status);
  if (!cluster.ok()) {
    MQTT_LOG_ERROR("%s", cluster.status().message());
    return 1;
  }
  if (*cluster != nullptr && (*cluster)->forwarder() != nullptr) {
    broker.set_remote_delivery((*cluster)->forwarder());
  }
  if (*cluster != nullptr) {
    broker.set_client_registry((*cluster)->client_registry());
    broker.set_session_mover((*cluster)->session_mover());
  }
  if (*cluster != nullptr && (*cluster)->retained() != nullptr) {
    broker.set_retained_replication((*cluster)->retained());
  }
  if (absl::Status recovered = broker.Recover(); !recovered.ok()) {
    MQTT_LOG_ERROR("recovery from data-dir '%s' failed: %s", config.data_dir, recovered.message());
    return 1;
  }
  if (*cluster != nullptr) {
    // Only now, with the recovered sessions' routes in its table (ClusterNode::Join).
    if (absl::Status s = (*cluster)->Join(); !s.ok()) {
      MQTT_LOG_ERROR("%s", s.message());
      return 1;
    }
    if (absl::Status s = (*cluster)->StartRetained(); !s.ok()) {
      MQTT_LOG_ERROR("cluster: retained messages: %s", s.message());
      return 1;
    }
  }

  // /healthz, /readyz (503 until the listeners are up, and from SIGTERM on), /metrics, on the
  // HTTP server's own thread; null with --http-listen ''.
  absl::StatusOr<mqtt::http::ApiAuth> api_auth = ApiAuthFrom(config);
  if (!api_auth.ok()) {
    MQTT_LOG_ERROR("%s", api_auth.status().message());
    return 1;
  }
  auto bridge_figures = [&bridges] {
    std::vector<mqtt::http::BridgeFigures> out;
    for (const auto& b : bridges) {
      const mqtt::bridge::BridgeStats& s = b->stats();
      out.push_back({b->name(), s.connected.load(std::memory_order_relaxed),
                     s.connects.load(std::memory_order_relaxed),
                     s.sent.load(std::memory_order_relaxed),
                     s.received.load(std::memory_order_relaxed)});
    }
    return out;
  };
  absl::StatusOr<std::unique_ptr<mqtt::http::NodeHttp>> http = mqtt::http::NodeHttp::Start(
      config.http_listen, &broker, store.get(), cluster->get(), std::move(*api_auth),
      {gates.begin(), gates.end()}, bridges.empty() ? nullptr : std::function(bridge_figures));
  if (!http.ok()) {
    MQTT_LOG_ERROR("%s", http.status().message());
    return 1;
  }
  // A node that takes publishes before it holds its peers' routes would not forward them.
  if (*cluster != nullptr &&
      !(*cluster)->WaitUntilSynced(absl::Seconds(config.cluster_sync_timeout))) {
    MQTT_LOG_WARN(
        "cluster: not joined or not holding every peer's routes after %d s; serving "
        "anyway",
        config.cluster_sync_timeout);
  }
  std::vector<std::unique_ptr<mqtt::net::Listener>> listeners;
  std::string ready = absl::StrCat("mqttd ", config.node_id, " ready");
  if (*cluster != nullptr) absl::StrAppend(&ready, " cluster=", (*cluster)->listen_address());
  size_t gate_index = 0;
  for (const mqtt::ListenAddress& address : config.listeners) {
    mqtt::net::ConnectionGate* gate = gates[gate_index++].get();
    auto listener = mqtt::net::Listener::Bind(
        worker_ptrs, address.host, address.port,
        [&broker, gate](mqtt::net::IoWorker* worker, int fd) {
          if (!gate->Admit()) {  // beyond the listener's limits
            ::close(fd);
            return;
          }
          broker.Accept(std::make_shared<mqtt::net::TcpTransport>(worker, fd, gate));
        });
    if (!listener.ok()) {
      MQTT_LOG_ERROR("%s", listener.status().message());
      return 1;
    }
    absl::StrAppend(&ready, " mqtt=", (*listener)->address());
    listeners.push_back(std::move(*listener));
  }
  std::vector<std::shared_ptr<mqtt::net::TlsContext>> tls_contexts;
  for (const mqtt::SecureListener& spec : config.secure_listeners) {
    auto options = LayeredOptionsFor(config, spec);
    if (!options.ok()) {
      MQTT_LOG_ERROR("%s", options.status().message());
      return 1;
    }
    if ((*options)->tls != nullptr) tls_contexts.push_back((*options)->tls);
    (*options)->gate = gates[gate_index++].get();
    auto listener = mqtt::net::Listener::Bind(worker_ptrs, spec.address.host, spec.address.port,
                                              SecureAcceptor(&broker, *options));
    if (!listener.ok()) {
      MQTT_LOG_ERROR("%s", listener.status().message());
      return 1;
    }
    absl::StrAppend(&ready, " ", spec.protocol, "=", (*listener)->address());
    listeners.push_back(std::move(*listener));
  }
  for (uint32_t i = 0; i < worker_count; ++i) {
    const mqtt::WorkerCounters& counters = broker.shard(i).counters();
    workers[i]->set_idle_poll(std::chrono::microseconds(config.idle_poll_us), [&counters] {
      const mqtt::TrafficTotals totals = counters.Read();
      return totals.received() + totals.sent();  // PUBLISH in and out
    });
  }
  for (auto& worker : workers) worker->Start();
  broker.Start();
  mqtt::sys::SysPublisher sys(&broker, SysOptionsFrom(config, cluster->get()));
  sys.Start();
  if (*cluster == nullptr) {
    for (auto& bridge : bridges) bridge->Start();
  } else {
    PlaceBridges((*cluster)->membership(), config.node_id, bridges);
  }
  for (auto& listener : listeners) listener->Start();
  if (*http != nullptr) {
    absl::StrAppend(&ready, " http=", (*http)->address());
    (*http)->SetListening();
  }
  std::cout << ready << " workers=" << worker_count << std::endl;
  MQTT_LOG_INFO("%s", ready);

  FileWatches watches;
  watches.Add(config.tls_reload_interval,
              [&] { ReloadTlsContexts(tls_contexts, /*only_changed=*/true); });
  watches.Add(config.auth_reload_interval,
              [&] { ReloadChangedAccessFiles(access_control->get()); });
  if (*cluster != nullptr && !bridges.empty()) {
    watches.Add(1, [&] { PlaceBridges((*cluster)->membership(), config.node_id, bridges); });
  }
  // statvfs every few seconds, never per write: a full disk takes minutes to reach.
  constexpr uint32_t kDiskCheckSeconds = 5;
  if (watermark != nullptr) {
    watches.Add(kDiskCheckSeconds, [&] { CheckDiskWatermark(watermark.get(), config.data_dir); });
  }
  const int signal_number = WaitForStopSignal(
      signals, watches.poll_seconds(),
      [&] {
        MQTT_LOG_INFO("SIGHUP: reloading TLS certificates, password and ACL files");
        ReloadTlsContexts(tls_contexts, /*only_changed=*/false);
        ReloadAccessFiles(access_control->get());
        CheckDiskWatermark(watermark.get(), config.data_dir);
      },
      [&] { watches.Poll(); });
  // The drain (docs/operations.md "Stopping a node"): not ready, no new connections, the clients
  // disconnected (their persistent sessions stay, offline), the sessions handed to other nodes,
  // the outboxes emptied, then the cluster left.
  const absl::Time deadline = absl::Now() + absl::Seconds(config.shutdown_timeout);
  if (*http != nullptr) (*http)->SetShuttingDown();
  MQTT_LOG_INFO("signal %d: draining (at most %d s)", signal_number, config.shutdown_timeout);
  std::promise<void> stopped;
  worker_ptrs[0]->Post([&] {
    for (auto& listener : listeners) listener->Stop();
    stopped.set_value();
  });
  stopped.get_future().wait();
  for (auto& bridge : bridges) bridge->Stop();
  sys.Stop();
  mqtt::admin::v1::DrainResponse report;
  report.set_node_id(config.node_id);
  for (size_t i = 0; i < broker.worker_count(); ++i) {
    report.set_clients_closed(report.clients_closed() + broker.shard(i).client_count());
  }
  broker.Shutdown(std::chrono::seconds(3));
  if (*cluster != nullptr) {
    const mqtt::cluster::DrainReport moved = (*cluster)->Drain(deadline);
    report.set_sessions(moved.sessions);
    report.set_moved(moved.moved);
    report.set_followed(moved.followed);
    report.set_ended(moved.ended);
    report.set_kept(moved.kept);
    report.set_kept_reason(moved.kept_reason);
    report.set_outbox_left(moved.outbox_left);
    report.set_took_ms(absl::ToInt64Milliseconds(moved.took));
  }
  drain.Report(report);
  if (*cluster != nullptr) (*cluster)->Shutdown(absl::Seconds(2));
  if (*http != nullptr) (*http)->Stop();
  for (auto& worker : workers) worker->Stop();
  MQTT_LOG_INFO("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::StatusOr<mqtt::Config> config = mqtt::ParseCommandLine(argc, argv);
  if (!config.ok()) {
    std::cerr << "mqttd: " << config.status().message() << "\n"
              << "Run 'mqttd --help' for the list of options.\n";
    return 2;
  }
  if (config->help) {
    std::cout << mqtt::HelpText();
    return 0;
  }
  if (config->print_config || config->print_config_reference) {
    std::cout << (config->print_config ? mqtt::ConfigToYaml(*config) : mqtt::ConfigReference());
    return 0;
  }
  mqtt::SetLogLevel(config->log_level);
  mqtt::LogFormat log_format = mqtt::LogFormat::kText;
  mqtt::ParseLogFormat(config->log_format, &log_format);  // the option allows text or json only
  mqtt::SetLogFormat(log_format);
#ifdef NDEBUG
  // Debian's Abseil is built with its mutex deadlock detector on: a lock-order graph update on
  // every absl::Mutex acquisition (~300 instructions per publish in callgrind). Debug and
  // sanitizer builds keep it; release builds rely on the thread-safety annotations instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  return Run(*config);
}
