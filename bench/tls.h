// SPDX-License-Identifier: Apache-2.0
// mqtt-bench's TLS client context (OpenSSL). One SSL_CTX per run, shared by every connection of
// the one loop thread; Loop (loop.h) drives each connection's handshake and I/O through it.
#pragma once

#include <string>

struct ssl_ctx_st;  // SSL_CTX, without pulling OpenSSL's headers into every file

namespace bench {

struct TlsOptions {
  std::string cafile;               // trust anchors; empty: the system's default paths
  std::string cert, key;            // client certificate and key (both or neither)
  bool insecure = false;            // no verification of the broker's certificate
  std::string ciphersuites;         // TLS 1.3 ciphersuites; empty: OpenSSL's default
  std::string groups;               // key exchange groups; empty: OpenSSL's default
  std::string min_version = "1.2";  // 1.2 or 1.3
};

// A client context for the options, or nullptr with *error set. TLS 1.2 or later, read-ahead
// (one read() per socket's worth of records, not two per record), partial writes with a moving
// write buffer (Loop retries unsent output from its own growing buffer), buffers released while
// idle, a peer's EOF without close_notify reported as a clean close.
ssl_ctx_st* MakeTlsContext(const TlsOptions& o, std::string* error);
void FreeTlsContext(ssl_ctx_st* ctx);

// The last OpenSSL error of this thread as text (and the queue cleared); `fallback` if none.
std::string TlsErrorText(const char* fallback);

}  // namespace bench
