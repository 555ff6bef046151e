// SPDX-License-Identifier: Apache-2.0
#include "cluster/drain.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "node/base/log.h"
#include "node/protocol/message.h"

namespace mqtt::cluster {
namespace {

// FNV-1a, then a finalizer: the same weight in every process (absl::Hash is seeded per process).
uint64_t Weight(const std::string& member, const std::string& client_id) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&h](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;  // separator: ("ab","c") and ("a","bc") differ
  };
  mix(member);
  mix(client_id);
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

}  // namespace

std::vector<std::string> RendezvousOrder(const std::string& client_id,
                                         std::vector<std::string> members) {
  std::sort(members.begin(), members.end(), [&client_id](const auto& a, const auto& b) {
    const uint64_t wa = Weight(a, client_id), wb = Weight(b, client_id);
    return wa != wb ? wa > wb : a < b;
  });
  return members;
}

Drainer::Drainer(DrainOptions options, Membership* membership, SessionTransfer* transfer,
                 Forwarder* forwarder, SessionSource* source, ListSessions sessions,
                 const ClientRegistry* registry)
    : options_(std::move(options)),
      membership_(membership),
      transfer_(transfer),
      forwarder_(forwarder),
      source_(source),
      sessions_(std::move(sessions)),
      registry_(registry) {}

DrainReport Drainer::Run(absl::Time deadline) {
  const absl::Time start = absl::Now();
  DrainReport report;
  const std::vector<std::string> client_ids = PersistentSessions(deadline);
  report.sessions = client_ids.size();
  MQTT_LOG_INFO("drain: handing %d persistent sessions to other nodes", client_ids.size());
  MoveSessions(client_ids, deadline, &report);
  AwaitHandovers(deadline);
  report.outbox_left = AwaitOutboxes(deadline);
  report.took = absl::Now() - start;
  MQTT_LOG_INFO(
      "drain: %d sessions: %d moved, %d followed their client, %d ended, %d kept here%s%s; %d "
      "forwarding entries left; %d ms",
      report.sessions, report.moved, report.followed, report.ended, report.kept,
      report.kept == 0 ? "" : ": ", report.kept_reason, report.outbox_left,
      absl::ToInt64Milliseconds(report.took));
  return report;
}

std::vector<std::string> Drainer::PersistentSessions(absl::Time deadline) {
  std::future<std::vector<SessionInfo>> listed = sessions_(SessionFilter{});
  if (listed.wait_until(absl::ToChronoTime(deadline)) != std::future_status::ready) return {};
  std::vector<std::string> ids;
  for (const SessionInfo& info : listed.get()) {
    if (info.persistent) ids.push_back(info.client_id);
  }
  return ids;
}

void Drainer::MoveSessions(const std::vector<std::string>& client_ids, absl::Time deadline,
                           DrainReport* report) {
  std::vector<std::string> members;
  for (const MemberInfo& m : membership_->Members()) {
    if (m.node_id != options_.node_id && m.state == MemberState::kAlive) {
      members.push_back(m.node_id);
    }
  }
  if (members.empty() || transfer_ == nullptr) {
    report->kept = client_ids.size();
    if (!client_ids.empty()) report->kept_reason = "no other alive node to take them";
    return;
  }
  std::mutex mu;
  std::condition_variable changed;
  int in_flight = 0;
  // With mu held.
  auto record = [&](const std::string& client_id, const std::string& to, const absl::Status& s,
                    bool followed) {
    if (s.ok()) {
      ++(followed ? report->followed : report->moved);
    } else if (absl::IsNotFound(s)) {
      ++report->ended;
    } else {
      if (report->kept++ == 0) {
        report->kept_reason = absl::StrCat(client_id, " on ", to, ": ", s.message());
      }
      MQTT_LOG_WARN("drain: session %s stays here: node %s: %s", client_id, to, s.message());
    }
  };
  auto count = [&](const std::string& client_id, const std::string& to, const absl::Status& s,
                   bool followed) {
    std::lock_guard<std::mutex> lock(mu);
    record(client_id, to, s, followed);
    --in_flight;
    changed.notify_all();
  };
  // Sessions whose client id another node holds: what is left of them here goes to that node.
  std::vector<std::string> to_collect;
  // One attempt per member in rendezvous order, until one answers.
  std::function<void(std::string, std::vector<std::string>, size_t)> attempt =
      [&](std::string client_id, std::vector<std::string> order, size_t i) {
        const std::string to = order[i];
        transfer_->Push(client_id, to, options_.adopt_timeout,
                        [&, client_id, order = std::move(order), i, to](absl::Status s) mutable {
                          if (!s.ok() && absl::IsUnavailable(s) && i + 1 < order.size() &&
                              absl::Now() < deadline) {
                            MQTT_LOG_INFO("drain: node %s did not take %s (%s): trying %s", to,
                                          client_id, s.message(), order[i + 1]);
                            return attempt(std::move(client_id), std::move(order), i + 1);
                          }
                          if (absl::IsFailedPrecondition(s)) {
                            std::lock_guard<std::mutex> lock(mu);
                            to_collect.push_back(client_id);
                            --in_flight;
                            changed.notify_all();
                            return;
                          }
                          count(client_id, to, s, false);
                        });
      };
  std::unique_lock<std::mutex> lock(mu);
  for (const std::string& client_id : client_ids) {
    changed.wait(lock, [&] { return in_flight < options_.parallel; });
    if (absl::Now() >= deadline) {
      if (report->kept == 0) report->kept_reason = "the drain's time ran out";
      ++report->kept;
      continue;
    }
    ++in_flight;
    lock.unlock();
    attempt(client_id, RendezvousOrder(client_id, members), 0);
    lock.lock();
  }
  // The callbacks reference this frame: wait for every one (each has its own timeout).
  changed.wait(lock, [&] { return in_flight == 0; });
  // No callback adds to to_collect any more.
  lock.unlock();
  for (const std::string& client_id : to_collect) {
    // The taker's answer reflects the leader's state; this node's copy of the registry names
    // the new holder a moment later.
    std::optional<ClientRegistry::Holder> holder = HolderElsewhere(client_id, deadline);
    std::unique_lock<std::mutex> held(mu);
    if (!holder.has_value()) {
      record(client_id, "?", absl::UnavailableError("no other holder known"), true);
      continue;
    }
    ++in_flight;
    held.unlock();
    transfer_->AskToCollect(
        client_id, holder->node_id, [&, client_id, to = holder->node_id](absl::Status s) {
          // NotFound: the holder has no session (a clean start there): nothing to hand over.
          count(client_id, to, absl::IsNotFound(s) ? absl::OkStatus() : s, true);
        });
  }
  lock.lock();
  changed.wait(lock, [&] { return in_flight == 0; });
}

std::optional<ClientRegistry::Holder> Drainer::HolderElsewhere(const std::string& client_id,
                                                               absl::Time deadline) const {
  const absl::Time until = std::min(deadline, absl::Now() + absl::Seconds(3));
  for (;;) {
    std::optional<ClientRegistry::Holder> holder =
        registry_ == nullptr ? std::nullopt : registry_->HolderOf(client_id);
    if (holder.has_value() && !holder->here) return holder;
    if (registry_ == nullptr || absl::Now() >= until) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(50));
  }
}

// Every export finished, `settle` after the last one, then the relays end.
void Drainer::AwaitHandovers(absl::Time deadline) {
  for (;;) {
    std::future<SessionSource::Handovers> state = source_->HandoverState();
    if (state.wait_until(absl::ToChronoTime(deadline)) != std::future_status::ready) break;
    const SessionSource::Handovers h = state.get();
    if (h.relaying == 0 && h.exporting == 0) return;
    const bool quiet =
        MonotonicMs() - h.last_finish_ms >= absl::ToInt64Milliseconds(options_.settle);
    if ((h.exporting == 0 && quiet) || absl::Now() >= deadline) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  source_->EndRelays();
}

uint64_t Drainer::AwaitOutboxes(absl::Time deadline) {
  if (forwarder_ == nullptr) return 0;
  for (;;) {
    // A dead member's entries wait for its return (they are in the store); only the alive ones'
    // can drain now.
    absl::flat_hash_set<std::string> alive;
    for (const MemberInfo& m : membership_->Members()) {
      if (m.state == MemberState::kAlive) alive.insert(m.node_id);
    }
    uint64_t left = 0;
    for (const ForwardPeerStats& peer : forwarder_->Stats()) {
      if (alive.contains(peer.node_id)) left += peer.queued;
    }
    if (left == 0 || absl::Now() >= deadline) return left;
    absl::SleepFor(absl::Milliseconds(50));
  }
}

}  // namespace mqtt::cluster
