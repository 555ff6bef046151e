// SPDX-License-Identifier: Apache-2.0
// SessionTransfer: persistent sessions moving between nodes (issue 12, docs/cluster-sessions.md
// "Handover"; wire format in proto/session_transfer.proto). It is the broker's SessionMover
// (node/session/remote.h) and serves the other nodes' requests from the broker's SessionSource.
//
// - Fetch: a unary Take call to the previous holder, at the address the membership gives it; a
//   holder the membership sees dead (or gone) is not asked (its session stays where it is: the
//   connection starts a new one); a suspect one is.
// - Finish: a Finish call, retried in the background (a thread of its own) until the holder
//   answers or `finish_attempts` run out (then logged: the old holder keeps its copy).
// - Push: a draining node asks another to Adopt one of its sessions (which then Fetches and
//   Finishes as above).
// - AskToCollect: a node that kept a stale copy of a session asks the holder to Collect it
//   (which then Fetches and Finishes as above).
// - Relay: a durable forwarding entry for one client's session (ForwardEntry.shared.client_id)
//   on the Forwarder's stream to that node, so it keeps the order and the durability of
//   forwarding.
//
// Lifecycle: construct, register service() before the server starts, Stop() before the server
// and the Forwarder are destroyed. Threading: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cluster/forward.h"
#include "cluster/membership.h"
#include "cluster/routes.h"
#include "cluster/stub_cache.h"
#include "node/session/remote.h"
#include "proto/session_transfer.grpc.pb.h"

namespace mqtt::cluster {

struct SessionTransferOptions {
  std::string node_id;
  absl::Duration take_timeout = absl::Seconds(3);  // a CONNECT waits this long at most
  absl::Duration finish_retry = absl::Milliseconds(500);
  int finish_attempts = 20;
};

class SessionTransfer final : public SessionMover {
 public:
  // `source` serves Take and Finish (the broker); `forwarder` and `routes` carry Relay. All must
  // outlive this object.
  SessionTransfer(SessionTransferOptions options, Membership* membership, Forwarder* forwarder,
                  RouteTable* routes, SessionSource* source);
  ~SessionTransfer();  // Stop()
  SessionTransfer(const SessionTransfer&) = delete;
  SessionTransfer& operator=(const SessionTransfer&) = delete;

  grpc::Service* service();
  void Stop();  // idempotent

  // SessionMover (remote.h).
  void Fetch(const std::string& client_id, uint64_t epoch, const std::string& from_node,
             bool discard, Fetched done) override;
  void Finish(const std::string& client_id, uint64_t epoch, const std::string& from_node) override;
  void Relay(SessionStorage& from, const std::string& to_node, const std::string& client_id,
             const MessagePtr& message, const std::vector<uint32_t>& subscription_ids,
             const AckTokenPtr& ack) override;
  void AskToCollect(const std::string& client_id, const std::string& holder,
                    std::function<void(absl::Status)> done) override;

  // Draining: asks `to_node` to take this node's persistent session of `client_id` (its Adopt
  // RPC: SessionSource::AdoptSession there). `done` on a gRPC thread with its answer.
  void Push(const std::string& client_id, const std::string& to_node, absl::Duration timeout,
            std::function<void(absl::Status)> done);
  // How long AskToCollect waits for the holder: its Take from here, and its write.
  static constexpr absl::Duration kCollectTimeout = absl::Seconds(10);

 private:
  class Service;  // session_transfer.cc
  struct PendingFinish {
    v1::FinishRequest request;
    std::string node_id;
    int attempts = 0;
  };

  std::string ReachableAddress(const std::string& node_id) const;  // alive or suspect
  void RunFinishes();

  const SessionTransferOptions options_;
  Membership* const membership_;
  Forwarder* const forwarder_;
  RouteTable* const routes_;
  std::unique_ptr<Service> service_;
  StubCache<v1::SessionTransfer> stubs_{/*reconnect_backoff_ms=*/100};

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::deque<PendingFinish> finishes_;
  std::thread finisher_;
};

// Conversions between the broker's TransferredSession and the wire (exposed for tests).
v1::TakeReply ToReply(const TransferredSession& session);
TransferredSession FromReply(v1::TakeReply reply);

}  // namespace mqtt::cluster
