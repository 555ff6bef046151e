// A client's TCP connection: non-blocking reads into the worker's scratch buffer, many packets
// per read, and output coalesced into one write per loop turn. Protocol handling lives in a
// subclass (node/session/client.h) through OnInput/OnClosed.
//
// Lifetime: owned by shared_ptr; pending I/O holds a reference. Threading: every method runs on
// the owning worker's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "boost/asio/ip/tcp.hpp"
#include "node/net/io_worker.h"

namespace mqtt::net {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(IoWorker* worker, boost::asio::ip::tcp::socket socket);
  virtual ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Starts reading. `initial_input` is offered to OnInput first (bytes read on another worker
  // before a hand-over).
  void Start(std::string initial_input = {});

  // Appends bytes to the output; they are written at the end of this loop turn.
  void Send(std::string_view bytes);
  // Direct access to the output buffer for encoders; call RequestFlush() after appending.
  std::string* output_buffer() { return &out_; }
  void RequestFlush();
  size_t unsent_bytes() const { return out_.size() - out_sent_; }

  // Writes what is pending, then closes. OnClosed() runs once, after the socket is closed.
  void Close();
  // Closes at once, dropping pending output.
  void Abort();
  bool closing() const { return state_ != State::kOpen; }
  // When Close() or Abort() was first called.
  std::chrono::steady_clock::time_point close_started() const { return close_started_; }

  // Stops all I/O and hands the socket's file descriptor to the caller. OnClosed() is not
  // called; pending output must be empty. Returns -1 if the connection is already closing.
  int ReleaseSocket(bool* is_v6);

  IoWorker* worker() const { return worker_; }
  std::string peer() const;  // "address:port", or "-" once the socket is closed

  // Called by IoWorker at the end of a turn.
  void FlushOutput();

 protected:
  // All unconsumed input so far. Returns how many bytes were consumed; the rest is kept and
  // offered again, with more, on the next read. May call Close/Abort/ReleaseSocket.
  virtual size_t OnInput(std::string_view data) = 0;
  // The connection is closed (by the peer, an I/O error, Close or Abort).
  virtual void OnClosed() = 0;

 private:
  enum class State { kOpen, kClosing, kClosed, kReleased };

  void WaitReadable();
  void OnReadable();
  void ProcessInput(std::string_view fresh);
  void WaitWritable();
  void Shutdown();

  IoWorker* const worker_;
  boost::asio::ip::tcp::socket socket_;
  State state_ = State::kOpen;
  bool reading_ = false;
  bool read_paused_ = false;         // not reading until the output drains
  bool writing_ = false;             // waiting for the socket to become writable
  bool flush_requested_ = false;     // queued in the worker's flush list
  std::unique_ptr<std::string> in_;  // bytes of an incomplete packet; null when idle
  std::string out_;
  size_t out_sent_ = 0;
  std::chrono::steady_clock::time_point close_started_{};
};

}  // namespace mqtt::net
