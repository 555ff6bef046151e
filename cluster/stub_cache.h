// StubCache: one gRPC stub per peer address, each on a channel of its own (no shared subchannel
// pool) that reconnects quickly, so that a peer restarted on the same address is reachable
// again within a second or so. Used by every cluster service client (membership, routes).
//
// Threading: Get and Drop may be called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace mqtt::cluster {

template <typename Service>
class StubCache {
 public:
  using Stub = typename Service::Stub;

  // `reconnect_backoff_ms`: first and minimal reconnect delay (the maximum is at least 1 s).
  explicit StubCache(int reconnect_backoff_ms) : backoff_ms_(reconnect_backoff_ms) {}

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
      // TODO(security issue): TLS credentials.
      stub = Service::NewStub(
          grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
    }
    return stub;
  }

  // Forgets the stub: the next Get dials on a fresh channel rather than one in reconnect
  // backoff.
  void Drop(const std::string& address) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    stubs_.erase(address);
  }

 private:
  const int backoff_ms_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Stub>> stubs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mqtt::cluster
