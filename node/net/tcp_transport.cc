// SPDX-License-Identifier: Apache-2.0
#include "node/net/tcp_transport.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
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
}  // namespace

TcpTransport::TcpTransport(IoWorker* worker, TcpSocket socket, ConnectionGate* gate, bool internal)
    : worker_(worker), gate_(gate), socket_(std::move(socket)), internal_(internal) {
  if (gate_ != nullptr) gate_->Opened();
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  socket_.set_option(tcp::no_delay(true), ec);
}

// Formatted on demand rather than stored: an idle connection should cost as little as possible.
std::string TcpTransport::peer() const {
  boost::system::error_code ec;
  tcp::endpoint remote = socket_.remote_endpoint(ec);
  if (ec) return "-";
  return absl::StrCat(remote.address().to_string(), ":", remote.port());
}

TcpTransport::~TcpTransport() {
  if (gate_ != nullptr) gate_->Closed();
}

void TcpTransport::Start(TransportCallbacks* callbacks, std::string initial_input) {
  callbacks_ = callbacks;
  if (!initial_input.empty()) ProcessInput(initial_input);
  WaitReadable();
}

void TcpTransport::PauseReading() { paused_by_owner_ = true; }

void TcpTransport::ResumeReading() {
  paused_by_owner_ = false;
  WaitReadable();
}

void TcpTransport::WaitReadable() {
  if (state_ != State::kOpen || reading_ || paused_by_owner_) return;
  if (unsent_bytes() > kPauseReadingAbove) {
    read_paused_ = true;  // resumed by FlushOutput once the output is written
    return;
  }
  read_paused_ = false;
  reading_ = true;
  socket_.async_wait(tcp::socket::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->reading_ = false;
                       if (ec || self->state_ != State::kOpen) return;
                       self->OnReadable();
                     });
}

void TcpTransport::OnReadable() {
  for (int i = 0; i < kMaxReadsPerWakeup && state_ == State::kOpen && !paused_by_owner_; ++i) {
    boost::system::error_code ec;
    size_t n = socket_.read_some(
        boost::asio::buffer(worker_->read_scratch(), worker_->read_scratch_size()), ec);
    if (ec == boost::asio::error::would_block) break;
    if (ec) {
      if (ec != boost::asio::error::eof) {
        MQTT_LOG_DEBUG("connection %s: read error: %s", peer(), ec.message());
      }
      Abort();
      return;
    }
    ProcessInput(std::string_view(worker_->read_scratch(), n));
    if (n < worker_->read_scratch_size()) break;
  }
  WaitReadable();
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
    boost::system::error_code ec;
    size_t n = socket_.write_some(
        boost::asio::buffer(out_.data() + out_sent_, out_.size() - out_sent_), ec);
    if (ec == boost::asio::error::would_block) {
      WaitWritable();
      return;
    }
    if (ec) {
      MQTT_LOG_DEBUG("connection %s: write error: %s", peer(), ec.message());
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
  if (out_.capacity() > kKeepOutputCapacity) {
    std::string().swap(out_);
  } else {
    out_.clear();
  }
  if (state_ == State::kClosing) {
    Shutdown();
  } else if (read_paused_) {
    WaitReadable();
  }
}

void TcpTransport::WaitWritable() {
  writing_ = true;
  // The rest is written at the end of a turn like any output: after the turn's storage batch,
  // so no acknowledgement leaves before what it acknowledges is durable.
  socket_.async_wait(tcp::socket::wait_write,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->writing_ = false;
                       if (ec) return;
                       self->RequestFlush();
                     });
}

void TcpTransport::Close() {
  if (state_ != State::kOpen) return;
  // A pending read wait sees the state and stops; a pending write wait finishes the flush and
  // then shuts down. A peer that never reads is aborted by its owner's close deadline.
  state_ = State::kClosing;
  close_started_ = std::chrono::steady_clock::now();
  RequestFlush();  // at the end of the turn, like any output; then the socket closes
}

void TcpTransport::Abort() {
  if (state_ == State::kClosed || state_ == State::kDetached) return;
  out_.clear();
  out_sent_ = 0;
  Shutdown();
}

void TcpTransport::Shutdown() {
  state_ = State::kClosed;
  boost::system::error_code ec;
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
  in_.reset();
  std::string().swap(out_);
  TransportCallbacks* callbacks = std::exchange(callbacks_, nullptr);
  if (callbacks != nullptr) callbacks->OnClosed();
}

namespace {

// A TCP socket between two workers: the file descriptor and its address family.
class DetachedTcp final : public DetachedTransport {
 public:
  DetachedTcp(int fd, bool is_v6, ConnectionGate* gate, bool internal)
      : fd_(fd), is_v6_(is_v6), gate_(gate), internal_(internal) {}
  ~DetachedTcp() override {
    if (fd_ >= 0) ::close(fd_);
  }

  std::shared_ptr<Transport> Attach(IoWorker* worker) override {
    TcpSocket socket(worker->io());
    boost::system::error_code ec;
    socket.assign(is_v6_ ? tcp::v6() : tcp::v4(), fd_, ec);
    if (ec) {
      MQTT_LOG_WARN("adopting a connection failed: %s", ec.message());
      return nullptr;  // the destructor closes fd_
    }
    fd_ = -1;
    return std::make_shared<TcpTransport>(worker, std::move(socket), gate_, internal_);
  }

 private:
  int fd_;
  const bool is_v6_;
  ConnectionGate* const gate_;
  const bool internal_;
};

}  // namespace

std::unique_ptr<DetachedTransport> TcpTransport::Detach() {
  if (state_ != State::kOpen || unsent_bytes() != 0) return nullptr;
  state_ = State::kDetached;
  callbacks_ = nullptr;
  in_.reset();
  boost::system::error_code ec;
  tcp::endpoint local = socket_.local_endpoint(ec);
  const bool is_v6 = !ec && local.address().is_v6();
  socket_.cancel(ec);
  const int fd = socket_.release(ec);
  if (ec || fd < 0) {
    Shutdown();  // the callbacks are already gone: nobody is told
    return nullptr;
  }
  return std::make_unique<DetachedTcp>(fd, is_v6, gate_, bool{internal_});
}

}  // namespace mqtt::net
