// SPDX-License-Identifier: Apache-2.0
#include "cluster/member_table.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace mqtt::cluster {
namespace {

MemberState FromProto(v1::MemberState state) {
  switch (state) {
    case v1::MEMBER_STATE_SUSPECT:
      return MemberState::kSuspect;
    case v1::MEMBER_STATE_DEAD:
      return MemberState::kDead;
    case v1::MEMBER_STATE_LEFT:
      return MemberState::kLeft;
    default:
      return MemberState::kAlive;
  }
}

v1::MemberState ToProto(MemberState state) {
  switch (state) {
    case MemberState::kAlive:
      return v1::MEMBER_STATE_ALIVE;
    case MemberState::kSuspect:
      return v1::MEMBER_STATE_SUSPECT;
    case MemberState::kDead:
      return v1::MEMBER_STATE_DEAD;
    case MemberState::kLeft:
      return v1::MEMBER_STATE_LEFT;
  }
  return v1::MEMBER_STATE_UNSPECIFIED;
}

// The enum's order is the rank at an equal incarnation.
bool Overrides(uint64_t inc, MemberState state, const MemberInfo& current) {
  if (inc != current.incarnation) return inc > current.incarnation;
  return static_cast<int>(state) > static_cast<int>(current.state);
}

MemberChange ChangeFor(MemberState state) {
  switch (state) {
    case MemberState::kAlive:
      return MemberChange::kAlive;
    case MemberState::kSuspect:
      return MemberChange::kSuspect;
    case MemberState::kDead:
      return MemberChange::kDead;
    case MemberState::kLeft:
      return MemberChange::kLeft;
  }
  return MemberChange::kAlive;
}

bool Valid(const v1::Member& record) {
  return !record.node_id().empty() && !record.address().empty() &&
         record.state() >= v1::MEMBER_STATE_ALIVE && record.state() <= v1::MEMBER_STATE_LEFT;
}

}  // namespace

const char* MemberStateName(MemberState state) {
  static const char* const kNames[] = {"alive", "suspect", "dead", "left"};
  return kNames[static_cast<int>(state)];
}

const char* MemberChangeName(MemberChange change) {
  static const char* const kNames[] = {"joined", "alive", "suspect", "dead", "left", "removed"};
  return kNames[static_cast<int>(change)];
}

MemberTable::MemberTable(MemberInfo self, int retransmit_mult)
    : self_(std::move(self)), retransmit_mult_(std::max(1, retransmit_mult)) {
  self_.state = MemberState::kAlive;
  Enqueue(self_.node_id);
}

v1::Member MemberTable::ToRecord(const MemberInfo& info) {
  v1::Member record;
  record.set_node_id(info.node_id);
  record.set_address(info.address);
  record.set_state(ToProto(info.state));
  record.set_incarnation(info.incarnation);
  record.set_started_at_unix_ms(absl::ToUnixMillis(info.started_at));
  record.mutable_metadata()->insert(info.metadata.begin(), info.metadata.end());
  return record;
}

bool MemberTable::Apply(const v1::Member& record, absl::Time now,
                        std::vector<MemberEvent>* events) {
  if (!Valid(record)) return false;
  if (record.node_id() == self_.node_id) return ApplySelf(record);
  const MemberState state = FromProto(record.state());
  auto it = members_.find(record.node_id());
  const bool known = it != members_.end();
  if (!known && (state == MemberState::kDead || state == MemberState::kLeft)) return false;
  if (known && !Overrides(record.incarnation(), state, it->second)) return false;

  MemberInfo& m = known ? it->second : members_[record.node_id()];
  const bool state_changed = !known || m.state != state;
  m.node_id = record.node_id();
  m.address = record.address();
  m.state = state;
  m.incarnation = record.incarnation();
  m.started_at = absl::FromUnixMillis(record.started_at_unix_ms());
  m.metadata = {record.metadata().begin(), record.metadata().end()};
  if (state_changed) m.state_since = now;
  Enqueue(m.node_id);
  if (!known) events->push_back({m, MemberChange::kJoined});
  if (state_changed && (known || state != MemberState::kAlive)) {
    events->push_back({m, ChangeFor(state)});
  }
  return true;
}

bool MemberTable::ApplySelf(const v1::Member& record) {
  if (self_.state == MemberState::kLeft) return false;
  const bool stale_alive =
      record.state() == v1::MEMBER_STATE_ALIVE && record.incarnation() <= self_.incarnation;
  if (stale_alive || record.incarnation() < self_.incarnation) return false;
  // Someone believes we are suspect/dead/left at our incarnation, or knows a higher one (a
  // previous life of this node id): refute with a higher incarnation.
  self_.incarnation = record.incarnation() + 1;
  ++refutations_;
  Enqueue(self_.node_id);
  return true;
}

bool MemberTable::Suspect(const std::string& node_id, uint64_t incarnation, absl::Time now,
                          std::vector<MemberEvent>* events) {
  auto it = members_.find(node_id);
  if (it == members_.end() || it->second.incarnation != incarnation ||
      it->second.state != MemberState::kAlive) {
    return false;
  }
  v1::Member record = ToRecord(it->second);
  record.set_state(v1::MEMBER_STATE_SUSPECT);
  return Apply(record, now, events);
}

void MemberTable::Expire(absl::Time now, absl::Duration suspect_timeout,
                         absl::Duration remove_after, std::vector<MemberEvent>* events) {
  for (auto it = members_.begin(); it != members_.end();) {
    MemberInfo& m = it->second;
    if (m.state == MemberState::kSuspect && now - m.state_since >= suspect_timeout) {
      m.state = MemberState::kDead;
      m.state_since = now;
      Enqueue(m.node_id);
      events->push_back({m, MemberChange::kDead});
    } else if ((m.state == MemberState::kDead || m.state == MemberState::kLeft) &&
               now - m.state_since >= remove_after) {
      events->push_back({m, MemberChange::kRemoved});
      queue_.erase(m.node_id);
      it = members_.erase(it);
      continue;
    }
    ++it;
  }
}

void MemberTable::MarkSelfLeft() {
  self_.state = MemberState::kLeft;
  Enqueue(self_.node_id);
}

void MemberTable::Enqueue(const std::string& node_id) { queue_[node_id] = 0; }

int MemberTable::RetransmitLimit() const {
  const double n = static_cast<double>(members_.size() + 1);
  return retransmit_mult_ * std::max(1, static_cast<int>(std::ceil(std::log10(n + 1))));
}

std::vector<v1::Member> MemberTable::TakeUpdates(int max) {
  std::vector<std::pair<int, std::string>> order;
  order.reserve(queue_.size());
  for (const auto& [id, sent] : queue_) order.emplace_back(sent, id);
  std::sort(order.begin(), order.end());
  if (static_cast<int>(order.size()) > max) order.resize(std::max(0, max));
  const int limit = RetransmitLimit();
  std::vector<v1::Member> out;
  out.reserve(order.size());
  for (const auto& [sent, id] : order) {
    if (id == self_.node_id) {
      out.push_back(ToRecord(self_));
    } else if (const MemberInfo* m = Find(id)) {
      out.push_back(ToRecord(*m));
    }
    if (sent + 1 >= limit) {
      queue_.erase(id);
    } else {
      queue_[id] = sent + 1;
    }
  }
  return out;
}

std::vector<v1::Member> MemberTable::FullState() const {
  std::vector<v1::Member> out;
  out.reserve(members_.size() + 1);
  out.push_back(ToRecord(self_));
  for (const auto& [id, m] : members_) out.push_back(ToRecord(m));
  return out;
}

const MemberInfo* MemberTable::Find(const std::string& node_id) const {
  auto it = members_.find(node_id);
  return it == members_.end() ? nullptr : &it->second;
}

std::vector<MemberInfo> MemberTable::Snapshot() const {
  std::vector<MemberInfo> out;
  out.reserve(members_.size() + 1);
  out.push_back(self_);
  for (const auto& [id, m] : members_) out.push_back(m);
  return out;
}

std::vector<std::string> MemberTable::Reachable() const {
  std::vector<std::string> out;
  for (const auto& [id, m] : members_) {
    if (m.state == MemberState::kAlive || m.state == MemberState::kSuspect) out.push_back(id);
  }
  return out;
}

std::vector<std::string> MemberTable::Dead() const {
  std::vector<std::string> out;
  for (const auto& [id, m] : members_) {
    if (m.state == MemberState::kDead) out.push_back(id);
  }
  return out;
}

}  // namespace mqtt::cluster
