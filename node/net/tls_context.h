// SPDX-License-Identifier: Apache-2.0
// TlsContext: the OpenSSL server context of one TLS listener (certificate chain, key, CA,
// protocol versions, ciphers, client certificate policy), reloadable without a restart.
//
// Contract: Create() reads and checks every file and setting, and fails with a message naming
// the file or setting; Reload() does the same and swaps the context only on success (a bad
// new certificate keeps the old one serving). NewSsl() gives a connection its own SSL object,
// which holds a reference to the context current at that moment: open connections keep the
// certificate they were accepted with, new ones get the reloaded one.
// Threading: every method may be called from any thread (one mutex around the current
// SSL_CTX pointer; taken once per accepted connection, never on the data path).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace mqtt::net {

// Where the MQTT username of a connection with a verified client certificate comes from.
enum class CertIdentity : uint8_t {
  kNone,  // not taken from the certificate
  kCn,    // the subject's Common Name
  kSan,   // the first DNS, e-mail or URI Subject Alternative Name
};

struct TlsOptions {
  std::string cert_file;             // PEM: the server certificate, then its chain
  std::string key_file;              // PEM private key
  std::string ca_file;               // PEM CAs that client certificates must chain to; empty: none
  bool require_client_cert = false;  // mutual TLS: a verified client certificate or no handshake
  CertIdentity identity = CertIdentity::kNone;
  std::string min_version = "1.2";  // "1.2" or "1.3"
  std::string ciphers;              // TLS 1.2 cipher list (OpenSSL syntax); empty: default
  std::string ciphersuites;         // TLS 1.3 ciphersuites; empty: default
  std::string groups;               // key exchange groups ("X25519:P-256"); empty: default
};

class TlsContext {
 public:
  static absl::StatusOr<std::unique_ptr<TlsContext>> Create(TlsOptions options);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Re-reads the files; on error keeps the current context and returns why.
  absl::Status Reload();
  // Reload() when a file's modification time changed since the last (re)load; sets *reloaded.
  // A Kubernetes Secret update swaps a symlink: the time of the file it points to is checked.
  absl::Status ReloadIfChanged(bool* reloaded);
  // A new server-side SSL object on the current context; null when OpenSSL is out of memory.
  SSL* NewSsl();
  const TlsOptions& options() const { return options_; }

 private:
  TlsContext(TlsOptions options, SSL_CTX* ctx);
  std::string FileTimes() const;

  const TlsOptions options_;
  absl::Mutex mu_;
  SSL_CTX* ctx_ ABSL_GUARDED_BY(mu_);              // owned: one reference
  std::string loaded_times_ ABSL_GUARDED_BY(mu_);  // FileTimes() when ctx_ was built
};

// The identity `source` names in the verified peer certificate of `ssl`; empty when there is
// no certificate, it does not verify, or it lacks that field.
std::string PeerCertificateIdentity(SSL* ssl, CertIdentity source);

}  // namespace mqtt::net
