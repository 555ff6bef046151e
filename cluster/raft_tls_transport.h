// SPDX-License-Identifier: Apache-2.0
// RaftTlsTransport: libraft's connection transport (struct raft_uv_transport, raft/uv.h) over
// mutual TLS, for the registry's Raft port when cluster TLS is on (issue 14, docs/security.md
// "Cluster port"). Without cluster TLS the registry keeps libraft's raft_uv_tcp.
//
// Trust: the same files and rule as the cluster gRPC port (cluster_tls.h): each side presents
// its certificate, and the peer's must chain to the cluster CA and carry `server_name` as a DNS
// SAN, in both directions (a connecting node is checked like an accepting one). A peer that
// fails the handshake, or does not finish it and the preamble within `handshake_timeout`, is
// disconnected; libraft never sees it (an accept callback is never called for it, a connect
// request fails with RAFT_NOCONNECTION and libraft retries after its delay).
//
// Wire: TLS (1.2 or later) over TCP; inside it, first the connecting side's preamble, the data
// raft_uv_tcp's own handshake carries (u64 protocol version 1, u64 raft id, u64 address length
// padded to 8, the address, NUL-padded; little endian), answered by the accepting side's u64
// version 1 (under TLS 1.3 a client finishes its handshake before the server has verified the
// client's certificate: the answer is what tells the dialler it was accepted), then libraft's
// messages unchanged. A connect request succeeds only once the answer has arrived.
//
// How: each connection gives libraft one end of a socketpair(AF_UNIX) opened as a uv_pipe_t
// (allocated with raft_malloc: libraft closes and frees it), and pumps bytes between the other
// end and an OpenSSL SSL on memory BIOs, whose ciphertext goes over a uv_tcp_t. When either side
// closes, the whole connection closes. Backpressure: none beyond libuv's write queues (Raft's
// traffic is small and libraft bounds what it sends in flight).
//
// Reload: certificate, key and CA are read at init and again, for new connections, once
// `reload_interval` has passed since the last read (as the gRPC side's file watcher); open
// connections keep theirs. A failed re-read is logged and the previous files are kept.
//
// Threading: everything runs on the uv loop given to RaftTlsTransportInit (the registry's raft
// thread); no thread of its own, no call from another thread.
#pragma once

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cluster/cluster_tls.h"

struct raft_uv_transport;
struct uv_loop_s;

namespace mqtt::cluster {

struct RaftTlsOptions {
  ClusterTlsFiles files;     // all three files set (ValidateClusterTls)
  std::string bind_address;  // IPv4 HOST:PORT to listen on; empty: the address given to init
  absl::Duration handshake_timeout = absl::Seconds(5);  // TCP connect + TLS + preamble
  absl::Duration reload_interval = absl::Seconds(kReloadIntervalSeconds);
};

// Fills `t` (its callbacks and impl) for use by raft_uv_init on `loop`. InvalidArgument if the
// files do not load (naming the file and OpenSSL's reason); then `t` needs no close.
absl::Status RaftTlsTransportInit(raft_uv_transport* t, uv_loop_s* loop, RaftTlsOptions options);

// Frees what RaftTlsTransportInit allocated: after the transport's close callback has run (libraft
// calls close from raft_close), or if it was never listened on nor connected with.
void RaftTlsTransportClose(raft_uv_transport* t);

}  // namespace mqtt::cluster
