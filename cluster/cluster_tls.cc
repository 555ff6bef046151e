// SPDX-License-Identifier: Apache-2.0
#include "cluster/cluster_tls.h"

#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "node/base/files.h"

namespace mqtt::cluster {
namespace {

namespace gx = grpc::experimental;

// The process's cluster identity: set by UseClusterTls, read when a channel or the server is
// made. `provider` is null without cluster TLS.
struct Identity {
  std::shared_ptr<gx::FileWatcherCertificateProvider> provider;
  std::string server_name;
};

absl::Mutex identity_mu(absl::kConstInit);
Identity& identity() ABSL_EXCLUSIVE_LOCKS_REQUIRED(identity_mu) {
  static Identity* const instance = new Identity();  // never destroyed: read until exit
  return *instance;
}

Identity CurrentIdentity() {
  absl::MutexLock lock(&identity_mu);
  return identity();
}

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok())
    return absl::InvalidArgumentError(
        absl::StrCat("cluster TLS ", what, ": ", text.status().message()));
  if (!absl::StrContains(*text, "-----BEGIN ")) {
    return absl::InvalidArgumentError(
        absl::StrCat("cluster TLS ", what, ": ", path, " holds no PEM data"));
  }
  return text;
}

absl::Status Missing(const char* key, const char* flag) {
  return absl::InvalidArgumentError(absl::StrCat(
      "cluster TLS needs all three of cert, key and CA files: ", key, " (", flag, ") is not set"));
}

}  // namespace

absl::Status ValidateClusterTls(const ClusterTlsFiles& files) {
  if (!files.enabled()) return absl::OkStatus();
  if (files.cert_file.empty()) return Missing("cluster.tls.cert_file", "--cluster-tls-cert");
  if (files.key_file.empty()) return Missing("cluster.tls.key_file", "--cluster-tls-key");
  if (files.ca_file.empty()) return Missing("cluster.tls.ca_file", "--cluster-tls-ca");
  if (files.server_name.empty()) {
    return absl::InvalidArgumentError("cluster TLS: the server name is empty");
  }
  for (auto [path, what] : {std::pair{&files.cert_file, "certificate"},
                            std::pair{&files.key_file, "key"}, std::pair{&files.ca_file, "CA"}}) {
    if (absl::StatusOr<std::string> pem = ReadPem(*path, what); !pem.ok()) return pem.status();
  }
  return absl::OkStatus();
}

absl::Status UseClusterTls(const ClusterTlsFiles& files) {
  if (absl::Status s = ValidateClusterTls(files); !s.ok()) return s;
  Identity next;
  if (files.enabled()) {
    next.provider = std::make_shared<gx::FileWatcherCertificateProvider>(
        files.key_file, files.cert_file, files.ca_file, kReloadIntervalSeconds);
    next.server_name = files.server_name;
  }
  absl::MutexLock lock(&identity_mu);
  identity() = std::move(next);
  return absl::OkStatus();
}

bool ClusterTlsEnabled() { return CurrentIdentity().provider != nullptr; }

std::shared_ptr<grpc::ServerCredentials> ClusterServerCredentials() {
  Identity id = CurrentIdentity();
  if (id.provider == nullptr) return grpc::InsecureServerCredentials();
  gx::TlsServerCredentialsOptions options(id.provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return gx::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> PeerChannelCredentials(grpc::ChannelArguments* args) {
  Identity id = CurrentIdentity();
  if (id.provider == nullptr) return grpc::InsecureChannelCredentials();
  gx::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(id.provider);
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  options.set_certificate_verifier(std::make_shared<gx::HostNameCertificateVerifier>());
  args->SetSslTargetNameOverride(id.server_name);
  return gx::TlsCredentials(options);
}

std::shared_ptr<grpc::Channel> PeerChannel(const std::string& address) {
  grpc::ChannelArguments args;
  std::shared_ptr<grpc::ChannelCredentials> credentials = PeerChannelCredentials(&args);
  return grpc::CreateCustomChannel(address, credentials, args);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> StaticChannelCredentials(
    const ClusterTlsFiles& files, grpc::ChannelArguments* args) {
  if (absl::Status s = ValidateClusterTls(files); !s.ok()) return s;
  if (!files.enabled()) return absl::InvalidArgumentError("cluster TLS: no files given");
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = *ReadPem(files.ca_file, "CA");
  options.pem_private_key = *ReadPem(files.key_file, "key");
  options.pem_cert_chain = *ReadPem(files.cert_file, "certificate");
  args->SetSslTargetNameOverride(files.server_name);
  return grpc::SslCredentials(options);
}

}  // namespace mqtt::cluster
