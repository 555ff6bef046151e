// SPDX-License-Identifier: Apache-2.0
#include "node/net/tls_context.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace mqtt::net {
namespace {

// The OpenSSL error queue as one line, emptied.
std::string OpenSslErrors() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    absl::StrAppend(&text, text.empty() ? "" : "; ", buf);
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

absl::Status Fail(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("TLS: ", what, ": ", OpenSslErrors()));
}

absl::Status LoadFiles(SSL_CTX* ctx, const TlsOptions& o) {
  if (o.cert_file.empty() || o.key_file.empty()) {
    return absl::InvalidArgumentError("TLS: a certificate file and a key file are required");
  }
  if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1) {
    return Fail(absl::StrCat("certificate file '", o.cert_file, "'"));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Fail(absl::StrCat("key file '", o.key_file, "'"));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Fail(absl::StrCat("key file '", o.key_file, "' does not match '", o.cert_file, "'"));
  }
  if (!o.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr) != 1) {
      return Fail(absl::StrCat("CA file '", o.ca_file, "'"));
    }
    // The CA names sent in the CertificateRequest, so that clients pick a matching certificate.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.ca_file.c_str())) {
      SSL_CTX_set_client_CA_list(ctx, names);
    }
  } else if (o.require_client_cert) {
    return absl::InvalidArgumentError(
        "TLS: requiring client certificates needs a CA file to verify them against");
  }
  return absl::OkStatus();
}

absl::Status ApplySettings(SSL_CTX* ctx, const TlsOptions& o) {
  int min = o.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (o.min_version != "1.2" && o.min_version != "1.3") {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS: minimum version must be 1.2 or 1.3, not '", o.min_version, "'"));
  }
  SSL_CTX_set_min_proto_version(ctx, min);
  if (!o.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, o.ciphers.c_str()) != 1) {
    return Fail(absl::StrCat("TLS 1.2 ciphers '", o.ciphers, "'"));
  }
  if (!o.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, o.ciphersuites.c_str()) != 1) {
    return Fail(absl::StrCat("TLS 1.3 ciphersuites '", o.ciphersuites, "'"));
  }
  if (!o.groups.empty() && SSL_CTX_set1_groups_list(ctx, o.groups.c_str()) != 1) {
    return Fail(absl::StrCat("groups '", o.groups, "'"));
  }
  // Renegotiation is a DoS lever and would let reads need writes; the transport never needs it.
  // RELEASE_BUFFERS: an idle connection gives its 16 KiB+ record buffers back.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  static const unsigned char kSessionContext[] = "mqttd";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  int verify = SSL_VERIFY_NONE;
  if (!o.ca_file.empty()) verify = SSL_VERIFY_PEER;
  if (o.require_client_cert) verify |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  SSL_CTX_set_verify(ctx, verify, nullptr);
  return absl::OkStatus();
}

absl::StatusOr<SSL_CTX*> Build(const TlsOptions& o) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return Fail("SSL_CTX_new");
  absl::Status s = ApplySettings(ctx, o);
  if (s.ok()) s = LoadFiles(ctx, o);
  if (!s.ok()) {
    SSL_CTX_free(ctx);
    return s;
  }
  return ctx;
}

std::string Utf8(const ASN1_STRING* value) {
  unsigned char* out = nullptr;
  int n = ASN1_STRING_to_UTF8(&out, value);
  if (n < 0) return "";
  std::string text(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  OPENSSL_free(out);
  return text;
}

std::string CommonName(X509* cert) {
  X509_NAME* subject = X509_get_subject_name(cert);
  int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (i < 0) return "";
  return Utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
}

std::string FirstAltName(X509* cert) {
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return "";
  std::string text;
  for (int i = 0; i < sk_GENERAL_NAME_num(names) && text.empty(); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS || name->type == GEN_EMAIL || name->type == GEN_URI) {
      text = Utf8(name->d.ia5);
    }
  }
  GENERAL_NAMES_free(names);
  return text;
}

}  // namespace

TlsContext::TlsContext(TlsOptions options, SSL_CTX* ctx)
    : options_(std::move(options)), ctx_(ctx), loaded_times_(FileTimes()) {}

// The files' modification times as one comparable string (a missing file counts as -1).
std::string TlsContext::FileTimes() const {
  std::string times;
  for (const std::string* file : {&options_.cert_file, &options_.key_file, &options_.ca_file}) {
    std::error_code ec;
    auto t = std::filesystem::last_write_time(*file, ec);
    absl::StrAppend(&times, ec ? -1 : t.time_since_epoch().count(), ",");
  }
  return times;
}

absl::Status TlsContext::ReloadIfChanged(bool* reloaded) {
  *reloaded = false;
  std::string times = FileTimes();
  {
    absl::MutexLock lock(&mu_);
    if (times == loaded_times_) return absl::OkStatus();
    loaded_times_ = times;  // a bad new file is reported once, not at every check
  }
  *reloaded = true;
  return Reload();
}

absl::StatusOr<std::unique_ptr<TlsContext>> TlsContext::Create(TlsOptions options) {
  absl::StatusOr<SSL_CTX*> ctx = Build(options);
  if (!ctx.ok()) return ctx.status();
  return std::unique_ptr<TlsContext>(new TlsContext(std::move(options), *ctx));
}

TlsContext::~TlsContext() {
  absl::MutexLock lock(&mu_);
  SSL_CTX_free(ctx_);
}

absl::Status TlsContext::Reload() {
  std::string times = FileTimes();
  absl::StatusOr<SSL_CTX*> ctx = Build(options_);
  if (!ctx.ok()) return ctx.status();
  SSL_CTX* old;
  {
    absl::MutexLock lock(&mu_);
    old = ctx_;
    ctx_ = *ctx;
    loaded_times_ = times;
  }
  SSL_CTX_free(old);  // connections accepted on it hold their own references
  return absl::OkStatus();
}

SSL* TlsContext::NewSsl() {
  absl::MutexLock lock(&mu_);
  return SSL_new(ctx_);
}

std::string PeerCertificateIdentity(SSL* ssl, CertIdentity source) {
  if (source == CertIdentity::kNone || SSL_get_verify_result(ssl) != X509_V_OK) return "";
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (cert == nullptr) return "";
  return source == CertIdentity::kCn ? CommonName(cert) : FirstAltName(cert);
}

}  // namespace mqtt::net
