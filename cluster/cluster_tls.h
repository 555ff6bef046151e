// SPDX-License-Identifier: Apache-2.0
// Cluster TLS: mutual TLS on the cluster gRPC port (issue 14, docs/security.md "Cluster port").
// With it, the server asks every peer and mqttctl for a certificate signed by the cluster CA
// and refuses the handshake without one, and every channel a node opens to a peer presents the
// node's certificate and verifies the peer's against the same CA.
//
// Server name: peers dial advertised addresses (IPs in tests, pod IPs from --join-dns,
// addresses remembered in the store), which rarely match a certificate's SAN. So every channel
// verifies the peer's certificate against one fixed name, `server_name` (default
// "mqttd-cluster"; GRPC_SSL_TARGET_NAME_OVERRIDE_ARG), which every node's certificate must
// carry as a DNS SAN. The trust decision is the CA: it must issue certificates for this cluster
// only. One certificate shared by all nodes and one per node both work.
//
// Reload: the server and the peer channels read the files through gRPC's
// FileWatcherCertificateProvider, every kReloadIntervalSeconds: a renewed certificate (a
// Kubernetes Secret update) is used by new handshakes without a restart; open connections keep
// theirs. The key and certificate files must be replaced together (a Secret volume does).
//
// Process-wide: a node process has one cluster identity. UseClusterTls is called by
// ClusterNode::Start before any cluster service dials; the credential accessors may then be
// called from any thread. Without UseClusterTls (or with empty files) everything is plaintext.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mqtt::cluster {

inline constexpr char kDefaultClusterServerName[] = "mqttd-cluster";
inline constexpr unsigned kReloadIntervalSeconds = 60;

struct ClusterTlsFiles {
  std::string cert_file;  // PEM certificate (then its chain) of this node
  std::string key_file;   // PEM private key
  std::string ca_file;    // PEM cluster CA: peers' certificates must chain to it
  std::string server_name = kDefaultClusterServerName;

  bool enabled() const { return !cert_file.empty() || !key_file.empty() || !ca_file.empty(); }
};

// All three files or none (InvalidArgument naming the missing key, as the config spells it);
// each readable and PEM (InvalidArgument naming the file).
absl::Status ValidateClusterTls(const ClusterTlsFiles& files);

// Validates `files` and makes them this process's cluster identity (empty files: plaintext).
absl::Status UseClusterTls(const ClusterTlsFiles& files);
bool ClusterTlsEnabled();

// For the cluster gRPC server: mutual TLS (a client certificate required and verified), or
// insecure without cluster TLS.
std::shared_ptr<grpc::ServerCredentials> ClusterServerCredentials();
// For every channel to a peer: the node's certificate, the CA, and `args` given the server name
// override (left alone without cluster TLS).
std::shared_ptr<grpc::ChannelCredentials> PeerChannelCredentials(grpc::ChannelArguments* args);
// A channel to a peer with the above (one-off calls, as admin's forwarded Kick).
std::shared_ptr<grpc::Channel> PeerChannel(const std::string& address);

// Static credentials read once from `files` (mqttctl: a short-lived process), with `args` given
// the server name override. Errors as ValidateClusterTls.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> StaticChannelCredentials(
    const ClusterTlsFiles& files, grpc::ChannelArguments* args);

}  // namespace mqtt::cluster
