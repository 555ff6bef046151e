// SPDX-License-Identifier: Apache-2.0
#include "cluster/registry.h"

#include <uv.h>

// libraft's headers declare C functions without extern "C".
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}

#include <algorithm>
#include <cstring>
#include <deque>
#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "cluster/raft_tls_transport.h"
#include "node/base/host_port.h"
#include "node/base/log.h"

namespace mqtt::cluster {
namespace {

// How long Stop() waits for the log writes in flight (see CloseWhenStored).
constexpr absl::Duration kCloseDrainTimeout = absl::Seconds(2);

// libraft names these structs like the functions that take them.
using ApplyRequest = struct raft_apply;
using BarrierRequest = struct raft_barrier;

// libraft's error codes as absl codes (anything else: Internal, e.g. RAFT_NOMEM, RAFT_IOERR).
absl::StatusCode CodeOf(int rv) {
  using C = absl::StatusCode;
  static constexpr struct {
    int rv;
    C code;
  } kCodes[] = {{RAFT_NOTLEADER, C::kFailedPrecondition},
                {RAFT_CANTBOOTSTRAP, C::kFailedPrecondition},
                {RAFT_CANTCHANGE, C::kFailedPrecondition},
                {RAFT_BUSY, C::kFailedPrecondition},
                {RAFT_LEADERSHIPLOST, C::kUnavailable},
                {RAFT_SHUTDOWN, C::kUnavailable},
                {RAFT_NOCONNECTION, C::kUnavailable},
                {RAFT_BADID, C::kInvalidArgument},
                {RAFT_BADROLE, C::kInvalidArgument},
                {RAFT_MALFORMED, C::kInvalidArgument},
                {RAFT_NAMETOOLONG, C::kInvalidArgument},
                {RAFT_INVALID, C::kInvalidArgument},
                {RAFT_DUPLICATEID, C::kAlreadyExists},
                {RAFT_DUPLICATEADDRESS, C::kAlreadyExists},
                {RAFT_NOTFOUND, C::kNotFound},
                {RAFT_TOOBIG, C::kResourceExhausted},
                {RAFT_NOSPACE, C::kResourceExhausted},
                {RAFT_TOOMANY, C::kResourceExhausted},
                {RAFT_CORRUPT, C::kDataLoss},
                {RAFT_CANCELED, C::kCancelled},
                {RAFT_UNAUTHORIZED, C::kPermissionDenied}};
  for (const auto& entry : kCodes) {
    if (entry.rv == rv) return entry.code;
  }
  return C::kInternal;
}

// libraft's error `rv` from `what`, with the instance's or the I/O's message when there is one.
absl::Status RaftError(int rv, absl::string_view what, const char* detail = nullptr) {
  std::string message = absl::StrCat("registry: ", what, ": ", raft_strerror(rv));
  if (detail != nullptr && detail[0] != '\0') absl::StrAppend(&message, " (", detail, ")");
  return absl::Status(CodeOf(rv), message);
}

absl::Status UvError(int rv, absl::string_view what) {
  return absl::InternalError(absl::StrCat("registry: ", what, ": ", uv_strerror(rv)));
}

unsigned Millis(absl::Duration d) {
  return static_cast<unsigned>(std::clamp<int64_t>(absl::ToInt64Milliseconds(d), 1, 1 << 30));
}

RegistryMember::Role RoleOf(int role) {
  if (role == RAFT_VOTER) return RegistryMember::Role::kVoter;
  if (role == RAFT_STANDBY) return RegistryMember::Role::kStandby;
  return RegistryMember::Role::kSpare;
}

bool IsHostPort(const std::string& address) {
  return ParseHostPort(address, {.allow_port_zero = true}).ok();
}

absl::Status Validate(const RegistryOptions& o) {
  if (o.node_id.empty()) return absl::InvalidArgumentError("registry: empty node_id");
  if (!IsHostPort(o.raft_address) || (!o.raft_listen.empty() && !IsHostPort(o.raft_listen))) {
    return absl::InvalidArgumentError("registry: raft addresses must be HOST:PORT");
  }
  if (o.data_dir.empty()) return absl::InvalidArgumentError("registry: empty data_dir");
  if (o.heartbeat_timeout <= absl::ZeroDuration() || o.election_timeout <= o.heartbeat_timeout ||
      o.proposal_timeout <= absl::ZeroDuration() ||
      o.member_change_timeout <= absl::ZeroDuration() || o.max_batch_commands <= 0) {
    return absl::InvalidArgumentError("registry: bad timeouts or batch size");
  }
  if (o.bootstrap.empty()) return absl::OkStatus();
  absl::flat_hash_set<uint64_t> ids;
  bool self = false;
  for (const RegistryPeer& peer : o.bootstrap) {
    if (!ids.insert(Registry::RaftId(peer.node_id)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("registry: bootstrap names ", peer.node_id, " twice (or a hash collision)"));
    }
    self |= peer.node_id == o.node_id && peer.raft_address == o.raft_address;
  }
  if (!self) {
    return absl::InvalidArgumentError(
        "registry: the bootstrap list must name this node at its "
        "raft_address");
  }
  return absl::OkStatus();
}

// An entry's bytes: the serialized RegistryBatch, padded to a multiple of 8 bytes. libraft's
// encoders require that (they assert it; Debian's build compiles the assert out and writes
// segments and messages that cannot be read back). The padding is a length-delimited field
// (number kPaddingField, unknown to RegistryBatch) that every parser skips, so an entry is
// still a RegistryBatch.
constexpr int kPaddingField = 15;

raft_buffer Serialize(const v1::RegistryBatch& batch) {
  const size_t size = batch.ByteSizeLong();
  const size_t padding = 2 + (8 - (size + 2) % 8) % 8;  // tag, length, 0-7 zeros
  raft_buffer buf;
  buf.len = size + padding;
  buf.base = raft_calloc(1, buf.len);
  if (buf.base == nullptr) return buf;
  auto* bytes = static_cast<uint8_t*>(buf.base);
  batch.SerializeWithCachedSizesToArray(bytes);
  bytes[size] = (kPaddingField << 3) | 2;  // wire type 2: length-delimited
  bytes[size + 1] = static_cast<uint8_t>(padding - 2);
  return buf;
}

// What the state machine made of one entry: the changes of each command, in order.
struct AppliedEntry {
  absl::Status status;
  std::vector<RegistryChange> changes;
  std::vector<size_t> ends;  // ends[i] = changes.size() once command i was applied
};

}  // namespace

struct Registry::Proposal {
  std::vector<v1::RegistryCommand> commands;  // moved into the entry when batched
  size_t count = 0;                           // commands.size() as proposed
  ProposeCallback done;                       // null once called
  absl::Time deadline;

  void Finish(absl::StatusOr<std::vector<RegistryChange>> result) {
    if (done == nullptr) return;
    ProposeCallback call = std::move(done);
    done = nullptr;
    call(std::move(result));
  }
};

struct Registry::MemberOp {
  enum class Kind { kAdd, kRemove };
  Kind kind = Kind::kAdd;
  std::string node_id;
  uint64_t raft_id = 0;
  std::string address;
  int role = RAFT_STANDBY;  // kAdd: the role wanted
  DoneCallback done;        // null once called
  absl::Time deadline;
  bool in_raft = false;  // raft holds `req` until OnChanged
  raft_change req{};

  void Finish(absl::Status status) {
    if (done == nullptr) return;
    DoneCallback call = std::move(done);
    done = nullptr;
    call(std::move(status));
  }
};

// Everything the raft thread owns. Invariant: after Open() succeeded, only the raft thread
// touches these (other threads only call uv_async_send(&wake), under Registry::mu_ while the
// phase is kRunning, which is before the loop closes `wake`).
struct Registry::Loop {
  // One raft_apply in flight: the proposals it carries, and what the state machine made of it.
  struct Batch {
    ApplyRequest req{};  // req.data: this Batch
    Loop* loop = nullptr;
    const void* entry = nullptr;  // the entry's memory (raft's now): identifies it when applied
    std::vector<std::unique_ptr<Proposal>> proposals;
    std::optional<AppliedEntry> applied;
  };

  explicit Loop(Registry* registry) : self(registry) {}

  absl::Status Open();  // on the caller's thread, before the raft thread starts
  void Abort();         // undoes a failed Open()
  void Run();           // the raft thread: until Shutdown() has closed everything

  // Opening.
  absl::Status OpenTransport();
  absl::Status InitRaft();
  absl::Status Bootstrap();

  // Work from other threads, timers and the loop's own turns.
  void OnWake();
  void OnTick();
  void Publish();  // after every loop iteration: leader and configuration for other threads
  void Shutdown();
  void CloseWhenStored();
  void OnRaftClosed();
  void Close();

  // Proposals.
  void MaybeApply();
  void OnApplied(Batch* batch, int status);
  void FailQueued(const absl::Status& status);
  absl::Status NotLeader();
  void StartBarrier();

  // Membership changes.
  static void Post(Registry& registry, std::unique_ptr<MemberOp> op);  // from any thread
  void MaybeChange();
  enum class Step { kWaiting, kRetry, kDone };
  Step StartChangeStep();
  void OnChanged(int status);
  const raft_server* FindServer(uint64_t id) const;

  // The state machine (libraft's raft_fsm).
  int ApplyEntry(const raft_buffer* buf);
  int TakeSnapshot(raft_buffer* bufs[], unsigned* n_bufs);
  int Restore(raft_buffer* buf);
  void ScaleSnapshotThreshold(size_t clients);  // the registry's size after an entry
  unsigned snapshot_threshold = 0;              // what raft has now

  Registry* const self;
  uv_loop_t uv{};
  uv_async_t wake{};
  uv_timer_t tick{};
  uv_check_t check{};
  raft_uv_transport transport{};
  raft_io io{};
  raft_fsm fsm{};
  struct raft raft {};
  bool loop_open = false, handles_open = false, transport_open = false, io_open = false,
       raft_open = false;
  bool tls_transport = false;  // transport is RaftTlsTransport's, else raft_uv_tcp's
  bool stopping = false;       // Stop() asked: no new work
  bool closing = false;        // raft_close() called
  absl::Time close_deadline;

  std::deque<std::unique_ptr<Proposal>> queued;  // leader: waiting for the next entry
  std::unique_ptr<Batch> in_flight;
  std::deque<std::unique_ptr<MemberOp>> ops;  // waiting for `op`
  std::unique_ptr<MemberOp> op;               // the change being made

  // What Publish() last saw.
  int state = RAFT_UNAVAILABLE;
  raft_id leader_id = 0;
  std::string leader_address;
  raft_index config_index = 0, config_uncommitted = 0;
  unsigned config_size = 0;
};

// ---- Opening and closing -------------------------------------------------------------------

absl::Status Registry::Loop::Open() {
  int rv = uv_loop_init(&uv);
  if (rv != 0) return UvError(rv, "uv_loop_init");
  loop_open = true;
  uv_async_init(&uv, &wake, [](uv_async_t* h) { static_cast<Loop*>(h->data)->OnWake(); });
  uv_timer_init(&uv, &tick);
  uv_check_init(&uv, &check);
  wake.data = tick.data = check.data = this;
  handles_open = true;
  if (absl::Status s = OpenTransport(); !s.ok()) return s;
  rv = raft_uv_init(&io, &uv, self->options_.data_dir.c_str(), &transport);
  if (rv != 0) return RaftError(rv, "raft_uv_init " + self->options_.data_dir, io.errmsg);
  io_open = true;
  raft_uv_set_connect_retry_delay(&io, Millis(self->options_.connect_retry_delay));
  if (absl::Status s = InitRaft(); !s.ok()) return s;
  if (absl::Status s = Bootstrap(); !s.ok()) return s;
  if ((rv = raft_start(&raft)) != 0) {
    // libraft says only "I/O error" for a Raft port another process holds.
    const RegistryOptions& o = self->options_;
    return RaftError(rv,
                     absl::StrCat("raft_start (listening on ",
                                  o.raft_listen.empty() ? o.raft_address : o.raft_listen,
                                  ": is the port free?)"),
                     raft_errmsg(&raft));
  }
  const unsigned tick_ms = Millis(std::clamp(
      std::min(self->options_.proposal_timeout, self->options_.member_change_timeout) / 10,
      absl::Milliseconds(5), absl::Milliseconds(100)));
  uv_timer_start(
      &tick, [](uv_timer_t* h) { static_cast<Loop*>(h->data)->OnTick(); }, tick_ms, tick_ms);
  uv_check_start(&check, [](uv_check_t* h) { static_cast<Loop*>(h->data)->Publish(); });
  Publish();
  return absl::OkStatus();
}

// raft_uv_tcp, or the TLS transport when cluster TLS files are given.
absl::Status Registry::Loop::OpenTransport() {
  const std::string& listen = self->options_.raft_listen;
  if (self->options_.tls.enabled()) {
    RaftTlsOptions tls;
    tls.files = self->options_.tls;
    tls.bind_address = listen;
    tls.handshake_timeout = std::max(self->options_.connect_retry_delay * 4, absl::Seconds(2));
    if (absl::Status s = RaftTlsTransportInit(&transport, &uv, std::move(tls)); !s.ok()) return s;
    transport_open = tls_transport = true;
    return absl::OkStatus();
  }
  int rv = raft_uv_tcp_init(&transport, &uv);
  if (rv != 0) return RaftError(rv, "raft_uv_tcp_init", transport.errmsg);
  transport_open = true;
  if (!listen.empty() && (rv = raft_uv_tcp_set_bind_address(&transport, listen.c_str())) != 0) {
    return RaftError(rv, "bind address " + listen, transport.errmsg);
  }
  return absl::OkStatus();
}

absl::Status Registry::Loop::InitRaft() {
  const RegistryOptions& o = self->options_;
  fsm.version = 2;  // 2: snapshot_finalize frees the snapshot's buffers (ours, not raft's)
  fsm.data = this;
  fsm.apply = [](raft_fsm* f, const raft_buffer* buf, void** result) {
    *result = nullptr;  // the proposer's result travels in its Batch (see ApplyEntry)
    return static_cast<Loop*>(f->data)->ApplyEntry(buf);
  };
  fsm.snapshot = [](raft_fsm* f, raft_buffer* bufs[], unsigned* n) {
    return static_cast<Loop*>(f->data)->TakeSnapshot(bufs, n);
  };
  fsm.restore = [](raft_fsm* f, raft_buffer* buf) {
    return static_cast<Loop*>(f->data)->Restore(buf);
  };
  fsm.snapshot_finalize = [](raft_fsm*, raft_buffer* bufs[], unsigned* n) {
    for (unsigned i = 0; i < *n; ++i) raft_free((*bufs)[i].base);
    raft_free(*bufs);
    *bufs = nullptr;
    *n = 0;
    return 0;
  };
  int rv = raft_init(&raft, &io, &fsm, RaftId(o.node_id), o.raft_address.c_str());
  if (rv != 0) return RaftError(rv, "raft_init", raft.errmsg);
  raft_open = true;
  raft.data = this;
  raft_set_election_timeout(&raft, Millis(o.election_timeout));
  raft_set_heartbeat_timeout(&raft, Millis(o.heartbeat_timeout));
  raft_set_snapshot_threshold(&raft, o.snapshot_threshold);
  snapshot_threshold = o.snapshot_threshold;
  raft_set_snapshot_trailing(&raft, o.snapshot_trailing);
  // A node cut off (or restarted) must not depose a healthy leader when it comes back.
  raft_set_pre_vote(&raft, true);
  return absl::OkStatus();
}

// Bootstraps the list as voters if the directory is pristine. RAFT_CANTBOOTSTRAP (the
// directory holds state) is the normal case of every start but the first.
absl::Status Registry::Loop::Bootstrap() {
  if (self->options_.bootstrap.empty()) return absl::OkStatus();
  raft_configuration conf;
  raft_configuration_init(&conf);
  int rv = 0;
  for (const RegistryPeer& peer : self->options_.bootstrap) {
    rv = raft_configuration_add(&conf, RaftId(peer.node_id), peer.raft_address.c_str(), RAFT_VOTER);
    if (rv != 0) break;
  }
  if (rv == 0) rv = raft_bootstrap(&raft, &conf);
  raft_configuration_close(&conf);
  if (rv == 0) {
    MQTT_LOG_INFO("registry %s: bootstrapped %zu voters", self->options_.node_id,
                  self->options_.bootstrap.size());
  }
  if (rv == 0 || rv == RAFT_CANTBOOTSTRAP) return absl::OkStatus();
  return RaftError(rv, "raft_bootstrap", raft_errmsg(&raft));
}

void Registry::Loop::Abort() {
  stopping = closing = true;  // nothing appended yet: nothing to wait for
  if (raft_open) {
    raft_close(&raft, [](struct raft* r) { static_cast<Loop*>(r->data)->OnRaftClosed(); });
  } else {
    OnRaftClosed();
  }
  uv_run(&uv, UV_RUN_DEFAULT);
  Close();
}

void Registry::Loop::Run() {
  uv_run(&uv, UV_RUN_DEFAULT);
  Close();
}

// On the raft thread, once Stop() was asked. Everything queued fails now; what raft holds (the
// entry and the membership change in flight) fails when raft_close() runs (LEADERSHIPLOST:
// Unavailable, see OnApplied), unless it commits first.
void Registry::Loop::Shutdown() {
  if (!stopping) close_deadline = absl::Now() + kCloseDrainTimeout;
  stopping = true;
  const absl::Status stopped = absl::UnavailableError("registry: stopped");
  FailQueued(stopped);
  for (auto& waiting : ops) waiting->Finish(stopped);
  ops.clear();
  if (op != nullptr && !op->in_raft) {
    op->Finish(stopped);
    op.reset();
  }
  CloseWhenStored();
}

// libraft 0.15 pitfall: raft_close() cancels the leader's disk writes in flight, and the callback
// of each cancelled write truncates the log from that write's first entry; with two in flight, the
// second truncates entries the first already removed and libraft crashes (SEGV in its entry
// reference table; the assert that would say so is compiled out). So raft is closed only once
// every appended entry is stored, or after kCloseDrainTimeout (a stuck disk). Runs at Shutdown(),
// then after every loop iteration and every tick until it closes.
void Registry::Loop::CloseWhenStored() {
  if (closing) return;
  const bool stored = raft.last_stored >= raft_last_index(&raft);
  if (!stored && absl::Now() < close_deadline) return;
  if (!stored) {
    MQTT_LOG_WARN("registry %s: closing with log writes in flight", self->options_.node_id);
  }
  closing = true;
  uv_timer_stop(&tick);
  uv_check_stop(&check);
  raft_close(&raft, [](struct raft* r) { static_cast<Loop*>(r->data)->OnRaftClosed(); });
}

void Registry::Loop::OnRaftClosed() {
  if (!handles_open) return;
  uv_close(reinterpret_cast<uv_handle_t*>(&wake), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
  handles_open = false;
}

// After uv_run has returned: nothing of raft runs any more.
void Registry::Loop::Close() {
  const absl::Status stopped = absl::UnavailableError("registry: stopped");
  if (in_flight != nullptr) {  // raft_close should have failed it; never leave a caller hanging
    for (auto& p : in_flight->proposals) p->Finish(stopped);
    in_flight.reset();
  }
  if (op != nullptr) op->Finish(stopped);
  op.reset();
  if (io_open) raft_uv_close(&io);
  if (transport_open && tls_transport) RaftTlsTransportClose(&transport);
  if (transport_open && !tls_transport) raft_uv_tcp_close(&transport);
  io_open = transport_open = false;
  if (!loop_open) return;
  for (int i = 0; uv_loop_close(&uv) == UV_EBUSY; ++i) {
    if (i == 1000) {
      MQTT_LOG_ERROR("registry %s: libuv handles still open at close", self->options_.node_id);
      return;
    }
    uv_run(&uv, UV_RUN_NOWAIT);
  }
  loop_open = false;
}

// ---- The loop's turns ------------------------------------------------------------------------

void Registry::Loop::OnWake() {
  std::vector<std::unique_ptr<Proposal>> proposals;
  std::vector<std::unique_ptr<MemberOp>> new_ops;
  bool stop;
  {
    absl::MutexLock lock(&self->mu_);
    proposals.swap(self->inbox_proposals_);
    new_ops.swap(self->inbox_ops_);
    stop = self->phase_ != Phase::kRunning;
  }
  for (auto& p : proposals) queued.push_back(std::move(p));
  for (auto& o : new_ops) ops.push_back(std::move(o));
  if (stop || stopping) return Shutdown();  // again: fails what was just taken
  MaybeApply();
  MaybeChange();
}

// Deadlines, and retries of membership changes libraft refused for now (RAFT_CANTCHANGE).
void Registry::Loop::OnTick() {
  if (stopping) return CloseWhenStored();
  const absl::Time now = absl::Now();
  const absl::Status late = absl::DeadlineExceededError(
      "registry: not committed within proposal_timeout; it may still be");
  std::erase_if(queued, [&](const std::unique_ptr<Proposal>& p) {
    if (p->deadline > now) return false;
    p->Finish(late);
    return true;
  });
  if (in_flight != nullptr) {
    for (auto& p : in_flight->proposals) {
      if (p->deadline <= now) p->Finish(late);
    }
  }
  const absl::Status slow =
      absl::DeadlineExceededError("registry: membership change not done within its timeout");
  std::erase_if(ops, [&](const std::unique_ptr<MemberOp>& o) {
    if (o->deadline > now) return false;
    o->Finish(slow);
    return true;
  });
  if (op != nullptr && op->deadline <= now) {
    op->Finish(slow);
    if (!op->in_raft) op.reset();
  }
  MaybeChange();
}

void Registry::Loop::Publish() {
  if (stopping) return CloseWhenStored();
  raft_id id = 0;
  const char* address = nullptr;
  raft_leader(&raft, &id, &address);
  const int now_state = raft_state(&raft);
  const std::string_view now_address = address != nullptr ? address : "";
  const bool config_changed = raft.configuration_index != config_index ||
                              raft.configuration_uncommitted_index != config_uncommitted ||
                              raft.configuration.n != config_size;
  if (now_state == state && id == leader_id && now_address == leader_address && !config_changed) {
    return;
  }
  const int was = state;
  state = now_state;
  leader_id = id;
  leader_address = std::string(now_address);
  config_index = raft.configuration_index;
  config_uncommitted = raft.configuration_uncommitted_index;
  config_size = raft.configuration.n;
  {
    absl::MutexLock lock(&self->mu_);
    self->leader_ = state == RAFT_LEADER;
    self->leader_raft_id_ = leader_id;
    self->leader_address_ = leader_address;
    self->members_.clear();
    for (unsigned i = 0; i < raft.configuration.n; ++i) {
      const raft_server& s = raft.configuration.servers[i];
      auto name = self->names_.find(s.id);
      self->members_.push_back({name != self->names_.end() ? name->second : std::string(), s.id,
                                s.address, RoleOf(s.role)});
    }
  }
  if (state == RAFT_LEADER && was != RAFT_LEADER) {
    MQTT_LOG_INFO("registry %s: leader", self->options_.node_id);
    StartBarrier();
  }
  if (state != RAFT_LEADER && was == RAFT_LEADER) FailQueued(NotLeader());
}

// ---- Proposals -------------------------------------------------------------------------------

// A new leader appends a barrier so that the entries of earlier terms commit (and are applied
// everywhere) without waiting for the next proposal.
void Registry::Loop::StartBarrier() {
  auto* req = new BarrierRequest();
  const int rv = raft_barrier(&raft, req, [](BarrierRequest* r, int) { delete r; });
  if (rv != 0) {
    delete req;
    MQTT_LOG_WARN("registry %s: barrier: %s", self->options_.node_id, raft_strerror(rv));
  }
}

absl::Status Registry::Loop::NotLeader() {
  raft_id id = 0;
  const char* address = nullptr;
  raft_leader(&raft, &id, &address);
  if (id == 0 || id == raft.id) {
    return absl::FailedPreconditionError("registry: not the leader (no leader known)");
  }
  std::string name = self->NodeName(id);
  if (name.empty()) name = absl::StrCat("raft id ", id);
  return absl::FailedPreconditionError(absl::StrCat("registry: not the leader (leader is ", name,
                                                    " at ", address ? address : "?", ")"));
}

void Registry::Loop::FailQueued(const absl::Status& status) {
  std::deque<std::unique_ptr<Proposal>> failing;
  failing.swap(queued);
  for (auto& p : failing) p->Finish(status);
}

// Everything queued goes into one entry (up to max_batch_commands), unless one is in flight:
// then it waits for that one to be applied (group commit).
void Registry::Loop::MaybeApply() {
  if (stopping || in_flight != nullptr || queued.empty()) return;
  if (raft_state(&raft) != RAFT_LEADER) return FailQueued(NotLeader());
  auto batch = std::make_unique<Batch>();
  v1::RegistryBatch entry;
  const size_t max = static_cast<size_t>(self->options_.max_batch_commands);
  while (!queued.empty()) {
    Proposal& next = *queued.front();
    const size_t n = static_cast<size_t>(entry.commands_size());
    if (next.done != nullptr && n > 0 && n + next.count > max) break;
    if (next.done != nullptr) {  // else timed out while queued: dropped
      for (v1::RegistryCommand& c : next.commands) *entry.add_commands() = std::move(c);
      batch->proposals.push_back(std::move(queued.front()));
    }
    queued.pop_front();
  }
  if (batch->proposals.empty()) return;
  raft_buffer buf = Serialize(entry);
  if (buf.base == nullptr) {
    for (auto& p : batch->proposals) p->Finish(absl::ResourceExhaustedError("registry: no memory"));
    return;
  }
  batch->entry = buf.base;
  batch->loop = this;
  batch->req.data = batch.get();
  const int rv = raft_apply(&raft, &batch->req, &buf, 1, [](ApplyRequest* req, int status, void*) {
    Batch* applied = static_cast<Batch*>(req->data);
    applied->loop->OnApplied(applied, status);
  });
  if (rv != 0) {
    raft_free(buf.base);  // ownership passes to raft only on success
    const absl::Status failed = RaftError(rv, "raft_apply", raft_errmsg(&raft));
    for (auto& p : batch->proposals) p->Finish(failed);
    return;
  }
  self->entries_proposed_.fetch_add(1, std::memory_order_relaxed);
  in_flight = std::move(batch);
}

void Registry::Loop::OnApplied(Batch* batch, int status) {
  std::unique_ptr<Batch> done = std::move(in_flight);  // the only entry in flight
  if (done.get() != batch) {
    MQTT_LOG_ERROR("registry %s: apply callback for an unknown entry", self->options_.node_id);
    in_flight = std::move(done);
    return;
  }
  absl::Status failed;
  if (status != 0) {
    failed = stopping ? absl::UnavailableError("registry: stopped; the entry may still commit")
                      : RaftError(status, "apply (the entry may still commit)");
  } else if (!done->applied.has_value()) {
    failed = absl::InternalError("registry: entry committed but not seen by the state machine");
  } else if (!done->applied->status.ok()) {
    failed = done->applied->status;
  }
  size_t command = 0;
  for (auto& p : done->proposals) {
    if (!failed.ok()) {
      p->Finish(failed);
      continue;
    }
    const std::vector<size_t>& ends = done->applied->ends;
    const size_t begin = command == 0 ? 0 : ends[command - 1];
    command += p->count;
    const auto& changes = done->applied->changes;
    p->Finish(
        std::vector<RegistryChange>(changes.begin() + begin, changes.begin() + ends[command - 1]));
  }
  if (!stopping) uv_async_send(&wake);  // the next batch, outside libraft's callback
}

// ---- Membership changes ----------------------------------------------------------------------

const raft_server* Registry::Loop::FindServer(uint64_t id) const {
  for (unsigned i = 0; i < raft.configuration.n; ++i) {
    if (raft.configuration.servers[i].id == id) return &raft.configuration.servers[i];
  }
  return nullptr;
}

void Registry::Loop::Post(Registry& registry, std::unique_ptr<MemberOp> op) {
  {
    absl::MutexLock lock(&registry.mu_);
    if (registry.phase_ == Phase::kRunning) {
      registry.inbox_ops_.push_back(std::move(op));
      uv_async_send(&registry.loop_->wake);
      return;
    }
  }
  op->Finish(absl::UnavailableError("registry: not running"));
}

// One change at a time (libraft allows one); an AddMember may take two steps (add, assign), each
// chosen from the configuration as it is then.
void Registry::Loop::MaybeChange() {
  while (!stopping) {
    if (op != nullptr && op->in_raft) return;
    if (op != nullptr && op->done == nullptr) op.reset();  // timed out between steps
    if (op == nullptr) {
      if (ops.empty()) return;
      op = std::move(ops.front());
      ops.pop_front();
    }
    if (raft_state(&raft) != RAFT_LEADER) {
      op->Finish(NotLeader());
      op.reset();
      continue;
    }
    const Step step = StartChangeStep();
    if (step == Step::kDone) op.reset();
    if (step != Step::kDone) return;
  }
}

Registry::Loop::Step Registry::Loop::StartChangeStep() {
  const raft_server* server = FindServer(op->raft_id);
  auto on_changed = [](raft_change* req, int status) {
    static_cast<Loop*>(req->data)->OnChanged(status);
  };
  op->req.data = this;
  int rv;
  const char* what = "";
  if (op->kind == MemberOp::Kind::kRemove) {
    if (server == nullptr) {
      op->Finish(absl::NotFoundError(absl::StrCat("registry: ", op->node_id, " is no member")));
      return Step::kDone;
    }
    what = "raft_remove";
    rv = raft_remove(&raft, &op->req, op->raft_id, on_changed);
  } else if (server == nullptr) {
    what = "raft_add";
    rv = raft_add(&raft, &op->req, op->raft_id, op->address.c_str(), on_changed);
  } else if (op->address != server->address) {
    op->Finish(absl::AlreadyExistsError(
        absl::StrCat("registry: ", op->node_id, " is a member at ", server->address)));
    return Step::kDone;
  } else if (server->role == op->role) {
    op->Finish(absl::OkStatus());
    return Step::kDone;
  } else {
    what = "raft_assign";
    rv = raft_assign(&raft, &op->req, op->raft_id, op->role, on_changed);
  }
  if (rv == 0) {
    op->in_raft = true;
    return Step::kWaiting;
  }
  if (rv == RAFT_CANTCHANGE) return Step::kRetry;  // another change is committing: next tick
  op->Finish(RaftError(rv, what, raft_errmsg(&raft)));
  return Step::kDone;
}

void Registry::Loop::OnChanged(int status) {
  op->in_raft = false;
  if (status != 0) {
    op->Finish(stopping ? absl::UnavailableError("registry: stopped")
                        : RaftError(status, "membership change"));
    op.reset();
  } else if (op->kind == MemberOp::Kind::kRemove) {
    op->Finish(absl::OkStatus());
    op.reset();
  } else if (stopping) {
    op->Finish(absl::UnavailableError("registry: stopped before the role was reached"));
    op.reset();
  }  // else an add: MaybeChange() takes the next step or sees the role reached
  if (!stopping) uv_async_send(&wake);
}

// ---- The state machine -----------------------------------------------------------------------

// Applies one committed entry. Never fails (libraft would stop applying): an entry that does not
// parse is skipped on every node alike and its proposer told. The leader recognizes its own entry
// by its memory (raft keeps the buffer it was given), so the result reaches the Batch whether
// libraft calls the apply callback at once or later.
int Registry::Loop::ApplyEntry(const raft_buffer* buf) {
  AppliedEntry applied;
  v1::RegistryBatch batch;
  if (!batch.ParseFromArray(buf->base, static_cast<int>(buf->len))) {
    applied.status =
        absl::InvalidArgumentError("registry: a log entry that is not a RegistryBatch");
    MQTT_LOG_WARN("registry %s: skipped an entry that does not parse", self->options_.node_id);
  } else {
    size_t clients = 0;
    {
      absl::MutexLock lock(&self->state_mu_);
      for (const v1::RegistryCommand& command : batch.commands()) {
        self->state_.Apply(command, &applied.changes);
        applied.ends.push_back(applied.changes.size());
      }
      clients = self->state_.size();
    }
    ScaleSnapshotThreshold(clients);
  }
  self->entries_applied_.fetch_add(1, std::memory_order_relaxed);
  if (self->listener_ != nullptr) {
    for (const RegistryChange& change : applied.changes) self->listener_(change);
  }
  if (in_flight != nullptr && in_flight->entry == buf->base)
    in_flight->applied = std::move(applied);
  return 0;
}

// A snapshot costs time in proportion to the registry (~0.6 us a client: 0.6 s at 1,000,000,
// with the raft thread held), so a fixed count of entries between two would make its cost per
// entry grow with the registry. At a quarter of the registry's size, each applied entry pays
// for serializing ~4 clients whatever the size; the price is a log of up to that many entries
// kept in memory and on disk. Runs on the raft thread (libraft reads the threshold there).
void Registry::Loop::ScaleSnapshotThreshold(size_t clients) {
  const unsigned threshold = SnapshotThresholdFor(self->options_.snapshot_threshold, clients);
  if (threshold != snapshot_threshold) {
    snapshot_threshold = threshold;
    raft_set_snapshot_threshold(&raft, threshold);
  }
}

int Registry::Loop::TakeSnapshot(raft_buffer* bufs[], unsigned* n_bufs) {
  std::string data;
  {
    // Readers may go on: only this thread changes the state.
    absl::ReaderMutexLock lock(&self->state_mu_);
    data = self->state_.Snapshot();
  }
  auto* out = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
  if (out == nullptr) return RAFT_NOMEM;
  out->len = data.size();
  out->base = raft_malloc(std::max<size_t>(data.size(), 1));
  if (out->base == nullptr) {
    raft_free(out);
    return RAFT_NOMEM;
  }
  std::memcpy(out->base, data.data(), data.size());
  *bufs = out;
  *n_bufs = 1;
  self->snapshots_taken_.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

// The state machine owns buf->base once it returns 0.
int Registry::Loop::Restore(raft_buffer* buf) {
  absl::Status status;
  {
    absl::MutexLock lock(&self->state_mu_);
    status = self->state_.Restore(std::string_view(static_cast<char*>(buf->base), buf->len));
  }
  if (!status.ok()) {
    MQTT_LOG_ERROR("registry %s: %s", self->options_.node_id, status.message());
    return RAFT_MALFORMED;
  }
  raft_free(buf->base);
  self->snapshots_restored_.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

// ---- Registry --------------------------------------------------------------------------------

Registry::Registry(RegistryOptions options, Listener listener)
    : options_(std::move(options)), listener_(std::move(listener)) {}

Registry::~Registry() { Stop(); }

uint64_t Registry::RaftId(std::string_view node_id) {
  const uint64_t id = raft_digest(std::string(node_id).c_str(), 0);
  return id != 0 ? id : 1;  // raft ids must be > 0; every node maps alike
}

bool Registry::IsPristine(const std::string& data_dir) {
  std::error_code error;
  return std::filesystem::is_empty(data_dir, error) || error;  // missing: pristine too
}

absl::Status Registry::Start(std::vector<RegistryPeer> bootstrap) {
  {
    absl::MutexLock join(&join_mu_);
    absl::MutexLock lock(&mu_);
    if (phase_ != Phase::kNew) return absl::FailedPreconditionError("registry: already started");
    options_.bootstrap = std::move(bootstrap);  // the raft thread does not exist yet
  }
  return Start();
}

absl::Status Registry::Start() {
  absl::MutexLock join(&join_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (phase_ != Phase::kNew) return absl::FailedPreconditionError("registry: already started");
  }
  if (absl::Status s = Validate(options_); !s.ok()) return s;
  std::error_code error;
  std::filesystem::create_directories(options_.data_dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("registry: cannot create ", options_.data_dir, ": ", error.message()));
  }
  NoteMember(options_.node_id);
  for (const RegistryPeer& peer : options_.bootstrap) NoteMember(peer.node_id);
  loop_ = std::make_unique<Loop>(this);
  if (absl::Status s = loop_->Open(); !s.ok()) {
    // Still kNew: such a failure may pass (a port freed, a disk mended), and the caller may
    // call Start again. The aborted loop released everything it opened.
    loop_->Abort();
    loop_.reset();
    return s;
  }
  {
    absl::MutexLock lock(&mu_);
    phase_ = Phase::kRunning;
  }
  thread_ = std::thread([this] { loop_->Run(); });
  return absl::OkStatus();
}

void Registry::Stop() {
  absl::MutexLock join(&join_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (phase_ == Phase::kNew) phase_ = Phase::kStopped;
    if (phase_ != Phase::kRunning) return;
    phase_ = Phase::kStopping;
    uv_async_send(&loop_->wake);
  }
  thread_.join();
  absl::MutexLock lock(&mu_);
  phase_ = Phase::kStopped;
}

void Registry::Propose(std::vector<v1::RegistryCommand> commands, ProposeCallback done) {
  if (commands.empty()) return done(std::vector<RegistryChange>());
  auto proposal = std::make_unique<Proposal>();
  proposal->count = commands.size();
  proposal->commands = std::move(commands);
  proposal->done = std::move(done);
  proposal->deadline = absl::Now() + options_.proposal_timeout;
  {
    absl::MutexLock lock(&mu_);
    if (phase_ == Phase::kRunning) {
      inbox_proposals_.push_back(std::move(proposal));
      uv_async_send(&loop_->wake);
      return;
    }
  }
  proposal->Finish(absl::UnavailableError("registry: not running"));
}

void Registry::AddMember(std::string node_id, std::string raft_address, bool voter,
                         DoneCallback done) {
  auto op = std::make_unique<MemberOp>();
  op->kind = MemberOp::Kind::kAdd;
  op->raft_id = RaftId(node_id);
  op->node_id = std::move(node_id);
  op->address = std::move(raft_address);
  op->role = voter ? RAFT_VOTER : RAFT_STANDBY;
  op->done = std::move(done);
  op->deadline = absl::Now() + options_.member_change_timeout;
  NoteMember(op->node_id);
  Loop::Post(*this, std::move(op));
}

void Registry::RemoveMember(std::string node_id, DoneCallback done) {
  auto op = std::make_unique<MemberOp>();
  op->kind = MemberOp::Kind::kRemove;
  op->raft_id = RaftId(node_id);
  op->node_id = std::move(node_id);
  op->done = std::move(done);
  op->deadline = absl::Now() + options_.member_change_timeout;
  Loop::Post(*this, std::move(op));
}

void Registry::NoteMember(std::string_view node_id) {
  absl::MutexLock lock(&mu_);
  names_[RaftId(node_id)] = std::string(node_id);
}

std::string Registry::NodeName(uint64_t raft_id) const {
  absl::MutexLock lock(&mu_);
  auto it = names_.find(raft_id);
  return it != names_.end() ? it->second : std::string();
}

bool Registry::IsLeader() const {
  absl::MutexLock lock(&mu_);
  return leader_;
}

std::string Registry::LeaderId() const {
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    id = leader_raft_id_;
  }
  return id != 0 ? NodeName(id) : std::string();
}

std::string Registry::LeaderAddress() const {
  absl::MutexLock lock(&mu_);
  return leader_address_;
}

std::vector<RegistryMember> Registry::Members() const {
  absl::MutexLock lock(&mu_);
  std::vector<RegistryMember> members = members_;
  for (RegistryMember& m : members) {  // names noted after the configuration was published
    auto it = names_.find(m.raft_id);
    if (m.node_id.empty() && it != names_.end()) m.node_id = it->second;
  }
  return members;
}

std::optional<RegistryHolder> Registry::Holder(std::string_view client_id) const {
  absl::ReaderMutexLock lock(&state_mu_);
  return state_.Holder(client_id);
}

size_t Registry::size() const {
  absl::ReaderMutexLock lock(&state_mu_);
  return state_.size();
}

RegistryStats Registry::stats() const {
  RegistryStats s;
  s.entries_applied = entries_applied_.load(std::memory_order_relaxed);
  s.entries_proposed = entries_proposed_.load(std::memory_order_relaxed);
  s.snapshots_taken = snapshots_taken_.load(std::memory_order_relaxed);
  s.snapshots_restored = snapshots_restored_.load(std::memory_order_relaxed);
  return s;
}

unsigned SnapshotThresholdFor(unsigned configured, size_t clients) {
  return static_cast<unsigned>(
      std::min<size_t>(std::max<size_t>(configured, clients / 4), UINT32_MAX));
}

}  // namespace mqtt::cluster
