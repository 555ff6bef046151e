// SPDX-License-Identifier: Apache-2.0
// StubCache: one gRPC stub per peer address, each on a channel of its own (no shared subchannel
// pool) that reconnects quickly, so that a peer restarted on the same address is reachable
// again within a second or so. Used by every cluster service client (membership, routes).
//
// Threading: Get and Drop may be called from any thread.
#pragma once

#include <grpc/grpc.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "cluster/cluster_tls.h"

namespace mqtt::cluster {

// gRPC shuts its core down when its last object goes, possibly on a thread of its own, which
// can then run during process exit. One library reference held for the life of the process
// keeps that shutdown out of exit. (A precaution: the double free ASan caught in the cluster
// tests turned out to be a channel dying on its own callback thread, see Drop.) Every cluster
// client and service owns a StubCache, so it is taken before any of them talks gRPC.
inline void HoldGrpcForProcessLifetime() {
  static const bool held = [] {
    grpc_init();
    return true;
  }();
  (void)held;
}

template <typename Service>
class StubCache {
 public:
  using Stub = typename Service::Stub;

  // `reconnect_backoff_ms`: first and minimal reconnect delay (the maximum is at least 1 s).
  explicit StubCache(int reconnect_backoff_ms) : backoff_ms_(reconnect_backoff_ms) {
    HoldGrpcForProcessLifetime();
  }

  std::shared_ptr<Stub> Get(const std::string& address) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    std::shared_ptr<Stub>& stub = stubs_[address];
    if (stub == nullptr) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, backoff_ms_);
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, backoff_ms_);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, std::max(backoff_ms_, 1000));
      // A full route state of 100,000 routes exceeds gRPC's default 4 MB.
      args.SetMaxReceiveMessageSize(-1);
      // Mutual TLS with cluster TLS on (cluster_tls.h), else plaintext.
      std::shared_ptr<grpc::ChannelCredentials> credentials = PeerChannelCredentials(&args);
      stub = Service::NewStub(grpc::CreateCustomChannel(address, credentials, args));
    }
    return stub;
  }

  // Forgets the stub: the next Get dials on a fresh channel rather than one in reconnect
  // backoff. Drop is called from gRPC callbacks, and a channel must not die on its own callback
  // thread (gRPC 1.51 then unrefs the callback completion queue twice: a double free ASan caught
  // about once in 30 runs of a node restart test), so the stub is only retired here and freed
  // by ReleaseRetired, which the owner calls from its own thread.
  void Drop(const std::string& address) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto it = stubs_.find(address);
    if (it == stubs_.end()) return;
    retired_.push_back(std::move(it->second));
    stubs_.erase(it);
  }

  // Frees the stubs Drop retired. Call from the owner's thread, never from a gRPC callback.
  void ReleaseRetired() ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<std::shared_ptr<Stub>> retired;
    {
      absl::MutexLock lock(&mu_);
      retired.swap(retired_);
    }
  }

 private:
  const int backoff_ms_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Stub>> stubs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<Stub>> retired_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mqtt::cluster
