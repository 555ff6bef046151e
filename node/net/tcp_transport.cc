// SPDX-License-Identifier: Apache-2.0
#include "node/net/tcp_transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "node/base/log.h"

namespace mqtt::net {

namespace {
using boost::asio::ip::tcp;
// Output buffers grown beyond this are released once written, so a connection that once
// received a burst does not keep its peak buffer while idle.
constexpr size_t kKeepOutputCapacity = 64 * 1024;
// Written output is cut from the buffer's front beyond this, so that the 32-bit write offset
// cannot overflow however much a slow reader is owed.
constexpr uint32_t kCompactOutputAbove = 1u << 30;
// Reads per readiness event before yielding to other connections.
constexpr int kMaxReadsPerWakeup = 4;
// A peer that sends faster than it reads our replies (e.g. QoS 1 PUBLISH without reading the
// PUBACKs) is not read from while this much output is unwritten: backpressure instead of
// unbounded buffering.
constexpr size_t kPauseReadingAbove = 1024 * 1024;

bool WouldBlock(int error) { return error == EAGAIN || error == EWOULDBLOCK; }

uint32_t SteadyMs32(std::chrono::steady_clock::time_point t) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  return static_cast<uint32_t>(duration_cast<milliseconds>(t.time_since_epoch()).count());
}

}  // namespace

absl::StatusOr<TcpSocket> AdoptSocket(IoWorker* worker, int fd) {
  sockaddr_storage local{};
  socklen_t length = sizeof(local);
  const bool is_v6 = getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) == 0 &&
                     local.ss_family == AF_INET6;
  TcpSocket socket(worker->io());
  boost::system::error_code ec;
  socket.assign(is_v6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("adopting a connection: ", ec.message()));
  }
  return socket;
}

TcpTransport::TcpTransport(IoWorker* worker, int fd, ConnectionGate* gate, bool internal)
    : worker_(worker), gate_(gate), fd_(fd), internal_(internal) {}

// Formatted on demand rather than stored: an idle connection should cost as little as possible.
std::string TcpTransport::peer() const {
  if (fd_ < 0) return "-";
  sockaddr_storage remote{};
  socklen_t length = sizeof(remote);
  if (getpeername(fd_, reinterpret_cast<sockaddr*>(&remote), &length) != 0) return "-";
  char address[INET6_ADDRSTRLEN] = {};
  if (remote.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&remote);
    inet_ntop(AF_INET, &v4->sin_addr, address, sizeof(address));
    return absl::StrCat(address, ":", ntohs(v4->sin_port));
  }
  if (remote.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&remote);
    inet_ntop(AF_INET6, &v6->sin6_addr, address, sizeof(address));
    return absl::StrCat(address, ":", ntohs(v6->sin6_port));
  }
  return "-";  // a socketpair (a bridge's local side)
}

// Still watched only if neither Shutdown nor Detach ran, i.e. when its owners go at the end of
// the process, never inside the poller's dispatch (a client goes at the end of a turn): closing
// the descriptor takes it out of the epoll set, and the poller may be gone already.
TcpTransport::~TcpTransport() {
  if (fd_ >= 0) ::close(fd_);
  if (gate_ != nullptr && state_ != State::kDetached) gate_->Closed();
}

void TcpTransport::Start(TransportCallbacks* callbacks, std::string initial_input) {
  callbacks_ = callbacks;
  if (!initial_input.empty()) ProcessInput(initial_input);
  if (state_ != State::kOpen) return;
  if (absl::Status added = worker_->poller().Add(fd_, this); !added.ok()) {
    MQTT_LOG_WARN("connection %s: %s", peer(), added.message());
    Abort();
    return;
  }
  watched_ = true;  // input already waiting is reported at once
}

void TcpTransport::PauseReading() { paused_by_owner_ = true; }

void TcpTransport::ResumeReading() {
  paused_by_owner_ = false;
  ReadIfReadable(/*later=*/true);
}

bool TcpTransport::MayRead() const {
  return state_ == State::kOpen && watched_ && !paused_by_owner_ && !read_paused_;
}

void TcpTransport::OnPollEvents(uint32_t events) {
  auto self = shared_from_this();  // a callback may drop the last other reference
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    readable_ = true;  // end of stream and errors are found by the read
    if (MayRead()) OnReadable();
  }
  if ((events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) && writing_) {
    writing_ = false;
    // The rest is written at the end of a turn like any output: after the turn's storage
    // batch, so no acknowledgement leaves before what it acknowledges is durable.
    RequestFlush();
  }
}

void TcpTransport::ReadIfReadable(bool later) {
  if (!readable_ || !MayRead()) return;
  if (!later) {
    OnReadable();
    return;
  }
  if (read_posted_) return;
  read_posted_ = true;
  boost::asio::post(worker_->io(), [self = shared_from_this()] {
    self->read_posted_ = false;
    self->ReadIfReadable(/*later=*/false);
  });
}

void TcpTransport::OnReadable() {
  for (int i = 0; i < kMaxReadsPerWakeup && MayRead(); ++i) {
    if (unsent_bytes() > kPauseReadingAbove) {
      read_paused_ = true;  // resumed by FlushOutput once the output is written
      return;
    }
    const ssize_t n = ::recv(fd_, worker_->read_scratch(), worker_->read_scratch_size(), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && WouldBlock(errno)) {
      readable_ = false;  // the next edge says when there is more
      return;
    }
    if (n <= 0) {
      if (n < 0) MQTT_LOG_DEBUG("connection %s: read error: %s", peer(), std::strerror(errno));
      Abort();
      return;
    }
    ProcessInput(std::string_view(worker_->read_scratch(), static_cast<size_t>(n)));
    if (static_cast<size_t>(n) < worker_->read_scratch_size()) {
      readable_ = false;  // drained: data arriving from now on raises a new edge
      return;
    }
  }
  ReadIfReadable(/*later=*/true);  // more may be waiting: after the other connections' turn
}

// Parses straight from the scratch buffer when nothing is pending, so the common case copies
// only the tail of an incomplete packet.
void TcpTransport::ProcessInput(std::string_view fresh) {
  if (in_ == nullptr) {
    size_t consumed = callbacks_->OnInput(fresh);
    if (state_ == State::kOpen && consumed < fresh.size()) {
      in_ = std::make_unique<std::string>(fresh.substr(consumed));
    }
    return;
  }
  in_->append(fresh);
  size_t consumed = callbacks_->OnInput(*in_);
  if (state_ != State::kOpen) return;
  in_->erase(0, consumed);
  if (in_->empty()) in_.reset();
}

void TcpTransport::RequestFlush() {
  if (flush_requested_ || writing_ || state_ == State::kClosed || state_ == State::kDetached) {
    return;
  }
  flush_requested_ = true;
  worker_->ScheduleFlush(shared_from_this());
}

void TcpTransport::FlushOutput() {
  flush_requested_ = false;
  if (state_ == State::kClosed || state_ == State::kDetached || writing_) return;
  while (out_sent_ < out_.size()) {
    const ssize_t n = ::send(fd_, out_.data() + out_sent_, out_.size() - out_sent_, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && WouldBlock(errno)) {
      writing_ = true;  // until the poller reports the socket writable
      return;
    }
    if (n < 0) {
      MQTT_LOG_DEBUG("connection %s: write error: %s", peer(), std::strerror(errno));
      Abort();
      return;
    }
    out_sent_ += static_cast<uint32_t>(n);  // a write never exceeds 2 GiB (Linux caps it)
    if (out_sent_ > kCompactOutputAbove) {  // keeps out_sent_ far from 4 GiB
      out_.erase(0, out_sent_);
      out_sent_ = 0;
    }
  }
  out_sent_ = 0;
  wrote_ = true;
  if (out_.capacity() > kKeepOutputCapacity) {
    std::string().swap(out_);
  } else {
    out_.clear();
  }
  if (state_ == State::kClosing) {
    Shutdown();
    return;
  }
  if (read_paused_) {
    read_paused_ = false;
    ReadIfReadable(/*later=*/false);  // at the end of the turn: no callback is running
  }
  if (notify_written_) {
    notify_written_ = false;
    worker_->Post([self = shared_from_this()] {
      if (self->state_ == State::kOpen && self->callbacks_ != nullptr) {
        self->callbacks_->OnOutputWritten();
      }
    });
  }
}

void TcpTransport::ReleaseIdleBuffers() {
  if (!wrote_ && out_.empty()) std::string().swap(out_);
  wrote_ = false;
}

void TcpTransport::Close() {
  if (state_ != State::kOpen) return;
  // Reading stops with the state; a pending write finishes the flush and then shuts down. A
  // peer that never reads is aborted by its owner's close deadline.
  state_ = State::kClosing;
  close_started_ms_ = SteadyMs32(std::chrono::steady_clock::now());
  RequestFlush();  // at the end of the turn, like any output; then the socket closes
}

std::chrono::steady_clock::time_point TcpTransport::close_started() const {
  if (state_ == State::kOpen) return {};
  const auto now = std::chrono::steady_clock::now();
  return now - std::chrono::milliseconds(SteadyMs32(now) - close_started_ms_);
}

void TcpTransport::Abort() {
  if (state_ == State::kClosed || state_ == State::kDetached) return;
  if (state_ == State::kOpen) close_started_ms_ = SteadyMs32(std::chrono::steady_clock::now());
  out_.clear();
  out_sent_ = 0;
  Shutdown();
}

void TcpTransport::Unwatch() {
  if (!watched_) return;
  watched_ = false;
  worker_->poller().Remove(fd_, this);
}

void TcpTransport::Shutdown() {
  state_ = State::kClosed;
  if (watched_) worker_->poller().RemoveBeforeClose(this);
  watched_ = false;
  if (fd_ >= 0) {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    fd_ = -1;
  }
  in_.reset();
  std::string().swap(out_);
  TransportCallbacks* callbacks = std::exchange(callbacks_, nullptr);
  if (callbacks != nullptr) callbacks->OnClosed();
}

namespace {

// A TCP socket between two workers: its descriptor and its place in the listener's gate.
class DetachedTcp final : public DetachedTransport {
 public:
  DetachedTcp(int fd, ConnectionGate* gate, bool internal)
      : fd_(fd), gate_(gate), internal_(internal) {}
  ~DetachedTcp() override {
    if (fd_ < 0) return;
    ::close(fd_);
    if (gate_ != nullptr) gate_->Closed();
  }

  std::shared_ptr<Transport> Attach(IoWorker* worker) override {
    return std::make_shared<TcpTransport>(worker, std::exchange(fd_, -1), gate_, internal_);
  }

 private:
  int fd_;
  ConnectionGate* const gate_;
  const bool internal_;
};

}  // namespace

std::unique_ptr<DetachedTransport> TcpTransport::Detach() {
  if (state_ != State::kOpen || unsent_bytes() != 0) return nullptr;
  state_ = State::kDetached;
  callbacks_ = nullptr;
  in_.reset();
  Unwatch();
  return std::make_unique<DetachedTcp>(std::exchange(fd_, -1), gate_, bool{internal_});
}

}  // namespace mqtt::net
