// SPDX-License-Identifier: Apache-2.0
#include "node/session/import_gate.h"

#include <utility>

namespace mqtt {

uint64_t ImportGate::Open(const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_ticket_++;
  entries_[client_id].tickets.push_back(Ticket{id, false, {}});
  return id;
}

void ImportGate::Fetching(const std::string& client_id, uint64_t ticket, std::string from_node) {
  std::vector<Pending> settled;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(client_id);
    if (it == entries_.end()) return;
    for (Ticket& t : it->second.tickets) {
      if (t.id != ticket) continue;
      t.fetching = true;
      t.from_node = std::move(from_node);
    }
    settled = Settled(client_id);  // a Take from that node need not wait any more
  }
  Run(std::move(settled));
}

void ImportGate::Close(const std::string& client_id, uint64_t ticket) {
  std::vector<Pending> settled;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(client_id);
    if (it == entries_.end()) return;
    std::erase_if(it->second.tickets, [ticket](const Ticket& t) { return t.id == ticket; });
    settled = Settled(client_id);
  }
  Run(std::move(settled));
}

void ImportGate::WhenSettled(const std::string& client_id, Waiter who, std::function<void()> run) {
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(client_id);
    if (it != entries_.end() && MustWait(it->second, who)) {
      it->second.waiting.push_back(Pending{std::move(who), std::move(run)});
      return;
    }
  }
  run();
}

bool ImportGate::MustWait(const Entry& entry, const Waiter& who) {
  for (const Ticket& t : entry.tickets) {
    if (t.id == who.ticket) continue;
    if (!who.from_node.empty()) {
      if (!t.fetching || t.from_node != who.from_node) return true;
    } else if (t.fetching) {
      return true;
    }
  }
  return false;
}

std::vector<ImportGate::Pending> ImportGate::Settled(const std::string& client_id) {
  auto it = entries_.find(client_id);
  Entry& entry = it->second;
  std::vector<Pending> settled;
  std::vector<Pending> still;
  for (Pending& p : entry.waiting) {
    (MustWait(entry, p.who) ? still : settled).push_back(std::move(p));
  }
  entry.waiting = std::move(still);
  if (entry.tickets.empty() && entry.waiting.empty()) entries_.erase(it);
  return settled;
}

void ImportGate::Run(std::vector<Pending> settled) {
  for (Pending& p : settled) p.run();
}

size_t ImportGate::open_for_test(const std::string& client_id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(client_id);
  return it == entries_.end() ? 0 : it->second.tickets.size();
}

}  // namespace mqtt
