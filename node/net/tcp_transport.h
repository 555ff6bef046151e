// SPDX-License-Identifier: Apache-2.0
// TcpTransport: Transport over a non-blocking TCP socket. Reads go into the worker's scratch
// buffer (an idle connection holds no read buffer), many packets per read; output is written
// once per loop turn; reading pauses while more than 1 MiB of output is unwritten.
//
// Threading: as Transport (transport.h): every method on the worker's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "boost/asio/ip/tcp.hpp"
#include "node/net/connection_gate.h"
#include "node/net/io_worker.h"
#include "node/net/transport.h"

namespace mqtt::net {

// A TCP socket bound to one worker's io_context. Its executor type is the io_context's own, not
// the type-erased any_io_executor of tcp::socket: 48 bytes instead of 80 per connection.
using TcpSocket =
    boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

class TcpTransport final : public Transport, public std::enable_shared_from_this<TcpTransport> {
 public:
  // `socket` must be bound to worker's io_context. Sets TCP_NODELAY: we coalesce writes
  // ourselves, and Nagle would delay small acknowledgements. `gate`: the listener's, which
  // counts this connection while it exists (null: none); it outlives every connection.
  // `internal`: a connection of the node to itself (Transport::internal); kept across Detach.
  TcpTransport(IoWorker* worker, TcpSocket socket, ConnectionGate* gate = nullptr,
               bool internal = false);
  ~TcpTransport() override;
  TcpTransport(const TcpTransport&) = delete;
  TcpTransport& operator=(const TcpTransport&) = delete;

  void Start(TransportCallbacks* callbacks, std::string initial_input) override;
  std::string* output_buffer() override { return &out_; }
  void RequestFlush() override;
  size_t unsent_bytes() const override { return out_.size() - out_sent_; }
  void PauseReading() override;
  void ResumeReading() override;
  void Close() override;
  void Abort() override;
  bool closing() const override { return state_ != State::kOpen; }
  std::chrono::steady_clock::time_point close_started() const override { return close_started_; }
  std::unique_ptr<DetachedTransport> Detach() override;
  IoWorker* worker() const override { return worker_; }
  std::string peer() const override;
  bool internal() const override { return internal_; }
  void FlushOutput() override;

 private:
  enum class State : uint8_t { kOpen, kClosing, kClosed, kDetached };

  void WaitReadable();
  void OnReadable();
  void ProcessInput(std::string_view fresh);
  void WaitWritable();
  void Shutdown();

  IoWorker* const worker_;
  ConnectionGate* const gate_;
  TcpSocket socket_;
  TransportCallbacks* callbacks_ = nullptr;
  // The state, flags and write offset share one 8-byte slot: the size decides the allocator
  // class of every connection.
  State state_ = State::kOpen;
  bool reading_ : 1 = false;
  bool read_paused_ : 1 = false;      // not reading until the output drains
  bool paused_by_owner_ : 1 = false;  // PauseReading() without ResumeReading()
  bool writing_ : 1 = false;          // waiting for the socket to become writable
  bool flush_requested_ : 1 = false;  // queued in the worker's flush list
  bool internal_ : 1 = false;         // Transport::internal
  uint32_t out_sent_ = 0;             // bytes of out_ written (output is bounded far below 4 GiB)
  std::unique_ptr<std::string> in_;   // bytes of an incomplete packet; null when idle
  std::string out_;
  std::chrono::steady_clock::time_point close_started_{};
};

}  // namespace mqtt::net
