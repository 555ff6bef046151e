// SPDX-License-Identifier: Apache-2.0
#include "tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace bench {

std::string TlsErrorText(const char* fallback) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return fallback;
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

ssl_ctx_st* MakeTlsContext(const TlsOptions& o, std::string* error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  auto fail = [&](const std::string& what) -> ssl_ctx_st* {
    *error = what + ": " + TlsErrorText("failed");
    SSL_CTX_free(ctx);
    return nullptr;
  };
  if (!ctx) return fail("SSL_CTX_new");
  const int min = o.min_version == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  if (SSL_CTX_set_min_proto_version(ctx, min) != 1) return fail("TLS minimum version");
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  SSL_CTX_set_read_ahead(ctx, 1);
  if (!o.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, o.ciphersuites.c_str()) != 1) {
    return fail("--tls-ciphersuites " + o.ciphersuites);
  }
  if (!o.groups.empty() && SSL_CTX_set1_groups_list(ctx, o.groups.c_str()) != 1) {
    return fail("--tls-groups " + o.groups);
  }
  if (o.insecure) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    const int ok = o.cafile.empty() ? SSL_CTX_set_default_verify_paths(ctx)
                                    : SSL_CTX_load_verify_locations(ctx, o.cafile.c_str(), nullptr);
    if (ok != 1) return fail("CA file " + o.cafile);
  }
  if (o.cert.empty() != o.key.empty()) {
    *error = "--cert and --key go together";
    SSL_CTX_free(ctx);
    return nullptr;
  }
  if (!o.cert.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, o.cert.c_str()) != 1) return fail(o.cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, o.key.c_str(), SSL_FILETYPE_PEM) != 1) return fail(o.key);
    if (SSL_CTX_check_private_key(ctx) != 1) return fail("--key does not match --cert");
  }
  return ctx;
}

void FreeTlsContext(ssl_ctx_st* ctx) { SSL_CTX_free(ctx); }

}  // namespace bench
