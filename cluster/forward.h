// SPDX-License-Identifier: Apache-2.0
// Forwarder: carries publishes to the other nodes that hold matching routes, and delivers the
// ones they forward here (issue 11, "Forwarding"; wire format in proto/forward.proto).
//
// Sending. The broker calls Forward (RemoteDelivery) on the publishing worker once per remote
// node with a matching plain route, and once per shared group that picked a node as its member
// (that copy carries the group, ForwardEntry.shared, and is an entry of its own). Each peer has
// one FIFO of entries, numbered by a per-peer sequence that grows over this node's whole life and
// across restarts (it starts at 16 x the Unix time in microseconds, or above the last stored
// entry), sent in order on one gRPC stream per peer, in batches, with at most `window_messages`
// sent and not yet acknowledged. An entry is forgotten when the peer acknowledges it.
// - A QoS 1/2 message for a persistent session there ("durable") is also written, in the
//   publisher's batch, to the peer's durable outbox (a queue "\xffpeer-<node id>" in the store)
//   and sent only once that batch is committed; the publisher's PUBACK/PUBREC waits for that
//   commit only. The entry is removed from the store when the peer acknowledges having stored
//   the message itself. After a restart the outbox is read back and re-sent first.
// - Anything else lives in memory only and is sent at once (but never ahead of an earlier entry
//   of the same peer).
// - Each peer's FIFO is bounded (`max_outbox_messages`, `max_outbox_bytes`): beyond that a new
//   message for it is dropped, counted, and logged (at most once per second per peer).
// - A peer that is declared dead keeps its durable entries (its persistent sessions wait for
//   them) and loses the others; a removed peer loses everything, counted and logged.
//
// Receiving. A stream from origin O is applied on one worker (chosen by O), in order. Entries at
// or below the highest seq already applied from O are duplicates (a re-send after a broken
// stream or a restart) and are dropped; the highest applied seq of durable entries is stored in
// the same batch as the messages, so the check survives a restart of either side: each message
// is delivered once per hop. The receiver acknowledges, cumulatively, what is stored (durable
// entries) or handed to the local sessions (the others). A group's copy goes to one member of
// that group there (ForwardedDelivery); if none is left, the broker may pass it on once, as a
// new entry to another peer, and the incoming entry counts as handed over.
//
// Threading: Forward runs on workers and only takes the peer's mutex; each peer has a sender
// thread (and a reader thread while a stream is open); gRPC's callback threads run the receiving
// side, which posts the work to workers. Every public method may be called from any thread.
// Lifecycle: construct, register service() before the server starts, Start() (after the store
// is open; inbound messages are posted to workers, which run them once the broker has
// recovered), Stop() before the server is destroyed.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cluster/member_table.h"
#include "cluster/routes.h"
#include "cluster/stub_cache.h"
#include "node/base/latency_histogram.h"
#include "node/session/remote.h"
#include "proto/forward.grpc.pb.h"
#include "storage/store.h"

namespace mqtt::cluster {

struct ForwarderOptions {
  std::string node_id;
  uint64_t max_outbox_messages = 1'000'000;  // per peer
  uint64_t max_outbox_bytes = 256ull << 20;  // per peer, approximate (topic + payload + 64)
  int max_batch_messages = 1024;             // per stream message
  size_t max_batch_bytes = 1 << 20;
  int window_messages = 65536;  // sent to a peer and not yet acknowledged
  // Flow control: beyond this many entries waiting for a peer, publishers' acknowledgements are
  // held until the peer has their message (forward.cc, Peer::Add).
  uint64_t hold_acks_above = 4096;
  absl::Duration min_reconnect = absl::Milliseconds(100);
  absl::Duration max_reconnect = absl::Seconds(2);
};

// One peer as Stats() sees it.
struct ForwardPeerStats {
  std::string node_id;
  std::string address;
  bool connected = false;
  uint64_t queued = 0;  // entries not acknowledged yet (sent or not)
  uint64_t queued_bytes = 0;
  uint64_t durable_queued = 0;  // of which in the store
  uint64_t forwarded = 0;       // entries acknowledged by the peer
  uint64_t dropped = 0;         // outbox full, or the peer was removed
  uint64_t dropped_full = 0;    // of which: outbox full
  uint64_t held_acks = 0;       // publishers' acknowledgements waiting for the peer (congested)
};

class Forwarder final : public RemoteDelivery {
 public:
  // `store` may be null (nothing durable); `ids` maps node indexes (the router's) to node ids
  // and must outlive the Forwarder.
  Forwarder(ForwarderOptions options, storage::Store* store, RouteTable* ids);
  ~Forwarder();  // Stop()
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  grpc::Service* service();

  // Reads the durable outboxes back and starts delivering inbound streams to `local`, which
  // must outlive the Forwarder. A storage error is returned.
  absl::Status Start(ForwardedDelivery* local);
  // Closes every stream and joins the threads. Forward keeps working (durable entries still
  // reach the store, nothing is sent). Idempotent.
  void Stop();

  // Membership: a peer's address, and what its death or removal means for its entries.
  void OnMemberChange(const MemberInfo& member, MemberChange change);

  // RemoteDelivery (node/session/remote.h).
  void Forward(SessionStorage& from, uint32_t node, bool durable, const MessagePtr& message,
               const AckTokenPtr& ack, const SharedTarget* shared) override;

  std::vector<ForwardPeerStats> Stats() const;
  // From sending a batch to a peer to the peer's acknowledgement of its last entry, over every
  // peer (mqttd_forward_latency_seconds). A batch re-sent on a new stream counts from then.
  LatencySnapshot forward_latency() const { return forward_latency_.Snapshot(); }
  uint64_t duplicates_dropped() const { return duplicates_.load(std::memory_order_relaxed); }

 private:
  class Peer;     // forward.cc: one destination
  class Origin;   // forward.cc: one source's receiving state
  class Inbound;  // forward.cc: the server side of one stream
  class Service;  // forward.cc

  std::shared_ptr<Peer> PeerByIndex(uint32_t index) ABSL_LOCKS_EXCLUDED(mu_);
  std::shared_ptr<Peer> PeerById(const std::string& node_id) ABSL_LOCKS_EXCLUDED(mu_);
  std::shared_ptr<Origin> OriginById(const std::string& node_id) ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status RecoverOutboxes();
  uint64_t FirstSeq(uint64_t after_recovered) const;

  const ForwarderOptions options_;
  storage::Store* const store_;
  RouteTable* const ids_;
  std::unique_ptr<Service> service_;
  std::atomic<ForwardedDelivery*> local_{nullptr};
  std::atomic<uint64_t> duplicates_{0};
  LatencyHistogram forward_latency_;  // recorded by every peer's reader thread (concurrently)

  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::shared_ptr<Peer>> peers_ ABSL_GUARDED_BY(mu_);  // [index], null: none yet
  absl::flat_hash_map<std::string, std::shared_ptr<Origin>> origins_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::string> addresses_ ABSL_GUARDED_BY(mu_);  // by node id

  StubCache<v1::Forwarding> stubs_{/*reconnect_backoff_ms=*/100};
};

}  // namespace mqtt::cluster
