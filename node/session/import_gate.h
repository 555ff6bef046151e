// SPDX-License-Identifier: Apache-2.0
// ImportGate: persistent sessions on their way into this node from another one, and what must
// wait for them (docs/cluster-sessions.md, "Claims in flight").
//
// A claim of a client id (a CONNECT's, or a drain's Adopt) is made before the session it wins is
// here: the claim commits, then the session is fetched from the node that held it. Between the
// two, this node is the holder in the registry but has nothing to show for it, and two requests
// would wrongly conclude there is no session:
// - another node's Take, for a newer claim made there: it would start its client on an empty
//   session (Session Present 0) while the old one lands here and stays;
// - a CONNECT here that needs no fetch (this node is the holder already): it would open an
//   empty session, then be replaced by the import.
// So each claim holds a ticket from before it is proposed until the session is written here or
// given up, and those requests wait (`WhenSettled`) while a ticket they depend on is open:
// - a Take from node N waits for tickets still claiming, and for tickets fetching from a node
//   other than N (one fetching from N is waiting for N's answer: waiting for it would deadlock);
// - a local CONNECT waits for other tickets that are fetching (not for ones still claiming:
//   two CONNECTs would wait for each other).
// Every wait is bounded by the fetch it waits for (SessionTransferOptions::take_timeout).
//
// Threading: every method may be called from any thread; waiters run on the thread whose call
// settled them, outside the lock (they are expected to post their work to a worker).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace mqtt {

class ImportGate {
 public:
  // Who is waiting: another node's Take (`from_node` set) or a local CONNECT holding `ticket`.
  struct Waiter {
    std::string from_node;
    uint64_t ticket = 0;
  };

  // Before the claim is proposed: a ticket (never 0) to pass to Fetching and Close.
  uint64_t Open(const std::string& client_id);
  // The claim committed; the session is being fetched from `from_node`.
  void Fetching(const std::string& client_id, uint64_t ticket, std::string from_node);
  // The session was written here, or will not be. Exactly once per ticket.
  void Close(const std::string& client_id, uint64_t ticket);
  // Runs `run` now if nothing `who` depends on is open for `client_id`, else once it settles.
  void WhenSettled(const std::string& client_id, Waiter who, std::function<void()> run);

  size_t open_for_test(const std::string& client_id);

 private:
  struct Ticket {
    uint64_t id = 0;
    bool fetching = false;
    std::string from_node;  // when fetching
  };
  struct Pending {
    Waiter who;
    std::function<void()> run;
  };
  struct Entry {
    std::vector<Ticket> tickets;
    std::vector<Pending> waiting;
  };

  static bool MustWait(const Entry& entry, const Waiter& who);
  // Removes the waiters that need not wait any more (and the entry if nothing is left) and
  // returns them, to be run outside the lock.
  std::vector<Pending> Settled(const std::string& client_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(std::vector<Pending> settled);

  absl::Mutex mu_;
  uint64_t next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mqtt
