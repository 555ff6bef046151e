// SPDX-License-Identifier: Apache-2.0
// TcpTransport: Transport over a non-blocking TCP socket, watched by the worker's Poller (one
// epoll entry, no Asio socket: an idle connection holds no reactor state, no pending operation
// and no read buffer). Reads go into the worker's scratch buffer, many packets per read; output
// is written once per loop turn; reading pauses while more than 1 MiB of output is unwritten.
//
// Threading: as Transport (transport.h): every method on the worker's thread (the constructor
// may run on another thread; the socket is watched from Start()).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "boost/asio/ip/tcp.hpp"
#include "node/net/connection_gate.h"
#include "node/net/io_worker.h"
#include "node/net/poller.h"
#include "node/net/transport.h"

namespace mqtt::net {

// A TCP socket bound to one worker's io_context (LayeredTransport). Its executor type is the
// io_context's own, not the type-erased any_io_executor of tcp::socket: 48 bytes instead of 80.
using TcpSocket =
    boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

// Wraps an accepted descriptor for Asio on `worker` (for LayeredTransport); closes it and
// returns an error if it cannot.
absl::StatusOr<TcpSocket> AdoptSocket(IoWorker* worker, int fd);

class TcpTransport final : public Transport,
                           public PollTarget,
                           public std::enable_shared_from_this<TcpTransport> {
 public:
  // Takes `fd`, a connected non-blocking stream socket; a TCP one has TCP_NODELAY (the
  // listener sets it: we coalesce writes ourselves, and Nagle would delay small
  // acknowledgements). No system call here: a hand-over makes a new transport. `gate`: the
  // listener's, whose place for this connection (ConnectionGate::Admit) the transport holds
  // and gives back when destroyed, or hands on with Detach (null: none); it outlives every
  // connection. `internal`: a connection of the node to itself (Transport::internal); kept
  // across Detach.
  TcpTransport(IoWorker* worker, int fd, ConnectionGate* gate = nullptr, bool internal = false);
  ~TcpTransport() override;
  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;

  void Start(TransportCallbacks* callbacks, std::string initial_input) override;
  std::string* output_buffer() override { return &out_; }
  void RequestFlush() override;
  size_t unsent_bytes() const override { return out_.size() - out_sent_; }
  void NotifyWhenWritten() override { notify_written_ = true; }
  void PauseReading() override;
  void ResumeReading() override;
  void Close() override;
  void Abort() override;
  bool closing() const override { return state_ != State::kOpen; }
  std::chrono::steady_clock::time_point close_started() const override;
  std::unique_ptr<DetachedTransport> Detach() override;
  IoWorker* worker() const override { return worker_; }
  std::string peer() const override;
  bool internal() const override { return internal_; }
  void FlushOutput() override;
  void ReleaseIdleBuffers() override;

  // PollTarget.
  void OnPollEvents(uint32_t events) override;

 private:
  enum class State : uint8_t { kOpen, kClosing, kClosed, kDetached };

  bool MayRead() const;
  // Reads now if input is known to be waiting and reading is allowed; from a posted handler
  // (`later`), so that callers inside a callback are not re-entered.
  void ReadIfReadable(bool later);
  void OnReadable();
  void ProcessInput(std::string_view fresh);
  void Unwatch();
  void Shutdown();

  // Fields ordered to leave no padding: the size decides the allocator class of every
  // connection (112 bytes, with shared_ptr's control block in the 128-byte class).
  IoWorker* const worker_;
  ConnectionGate* const gate_;
  TransportCallbacks* callbacks_ = nullptr;
  int fd_;
  uint32_t out_sent_ = 0;  // bytes of out_ written (output is bounded far below 4 GiB)
  State state_ = State::kOpen;
  bool watched_ : 1 = false;          // in the worker's Poller
  bool readable_ : 1 = false;         // input may be waiting (edge seen, EAGAIN not yet)
  bool read_posted_ : 1 = false;      // a ReadIfReadable(later) is queued
  bool read_paused_ : 1 = false;      // not reading until the output drains
  bool paused_by_owner_ : 1 = false;  // PauseReading() without ResumeReading()
  bool writing_ : 1 = false;          // waiting for the socket to become writable
  bool flush_requested_ : 1 = false;  // queued in the worker's flush list
  bool internal_ : 1 = false;         // Transport::internal
  bool wrote_ : 1 = false;            // output written since ReleaseIdleBuffers()
  bool notify_written_ : 1 = false;   // NotifyWhenWritten() asked, OnOutputWritten() not yet
  // When Close() or Abort() was first called: steady_clock milliseconds modulo 2^32 (a close
  // lasts seconds, far less than the 49 days this can tell apart).
  uint32_t close_started_ms_ = 0;
  std::unique_ptr<std::string> in_;  // bytes of an incomplete packet; null when idle
  std::string out_;
};

}  // namespace mqtt::net
