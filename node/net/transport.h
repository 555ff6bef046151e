// SPDX-License-Identifier: Apache-2.0
// Transport: a byte stream to one peer (TCP today; TLS and WebSocket later), with the protocol
// handler above it behind TransportCallbacks, the way a connection and its read filter are
// separated in Envoy. node/session speaks MQTT over any Transport and never sees a socket.
//
// Output is coalesced: bytes appended during a loop turn are written once, at the end of the
// turn (after the turn's storage batch, so nothing leaves the node that a crash could take
// back). Input is offered to the callbacks as soon as it is read, several packets at a time.
//
// Lifetime: a Transport is owned by shared_ptr; its pending I/O holds a reference, so it may
// outlive its handler. The handler must stay alive until OnClosed() (or until it detached the
// transport); after OnClosed() the transport never calls it again.
// Threading: every method runs on the thread of worker(), except that a DetachedTransport may
// be moved to another thread and attached there.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace mqtt::net {

class IoWorker;
class DetachedTransport;

class TransportCallbacks {
 public:
  // All input not consumed so far. Returns how many bytes were consumed; the rest is kept and
  // offered again, with more, after the next read. May call Close, Abort or Detach.
  virtual size_t OnInput(std::string_view data) = 0;
  // The connection is closed: by the peer, an I/O error, Close or Abort. Called once.
  virtual void OnClosed() = 0;
  // After Transport::NotifyWhenWritten: all output appended until then is written. Called once
  // per request, from a handler of its own (it may append output), never after OnClosed.
  virtual void OnOutputWritten() {}

 protected:
  ~TransportCallbacks() = default;
};

// Which kind of listener accepted a connection (mqttd_connections{listener=...}).
enum class ListenerKind : uint8_t { kTcp = 0, kTls = 1, kWs = 2, kWss = 3 };
inline constexpr int kListenerKinds = 4;

class Transport {
 public:
  virtual ~Transport() = default;

  // Starts reading into `callbacks`; `initial_input` is offered first (bytes read on another
  // worker before a hand-over).
  virtual void Start(TransportCallbacks* callbacks, std::string initial_input = {}) = 0;

  // The output buffer for encoders: append, then RequestFlush(). Appends after Close() are
  // dropped with the buffer.
  virtual std::string* output_buffer() = 0;
  virtual void RequestFlush() = 0;
  void Send(std::string_view bytes) {
    if (closing()) return;
    output_buffer()->append(bytes);
    RequestFlush();
  }
  // Output appended and not yet accepted by the kernel (or the TLS/WebSocket layer).
  virtual size_t unsent_bytes() const = 0;
  // Asks for one OnOutputWritten once unsent_bytes() has been written: for a producer that
  // holds back output while the peer is slow (retained messages on SUBSCRIBE). Call it only
  // with output pending; a transport without output buffering never calls back.
  virtual void NotifyWhenWritten() {}

  // Stops offering input until ResumeReading (the transport also pauses itself while its
  // unwritten output is large: backpressure against a peer that does not read).
  virtual void PauseReading() = 0;
  virtual void ResumeReading() = 0;

  // Writes what is pending, then closes; OnClosed() follows.
  virtual void Close() = 0;
  // Closes at once, dropping pending output; OnClosed() follows.
  virtual void Abort() = 0;
  virtual bool closing() const = 0;
  // When Close() or Abort() was first called.
  virtual std::chrono::steady_clock::time_point close_started() const = 0;

  // Stops all I/O and detaches the open connection from this worker, for Attach() on another
  // one. The callbacks are not called again. Null if the transport is closing or has output
  // pending.
  virtual std::unique_ptr<DetachedTransport> Detach() = 0;

  virtual IoWorker* worker() const = 0;
  // "address:port" of the peer (formatted on demand: idle connections stay small), "-" once
  // closed.
  virtual std::string peer() const = 0;
  // The MQTT username this connection's verified client certificate gives (its CN or first
  // SAN, as the TLS listener's `username_from_cert` says); empty when the listener does not
  // take usernames from certificates, or without TLS. The session layer uses it in place of
  // CONNECT's User Name (wired by the auth layer).
  virtual std::string certificate_username() const { return {}; }
  virtual ListenerKind listener_kind() const { return ListenerKind::kTcp; }
  // A connection the node made to itself (a bridge's local side, node/bridge): the session
  // layer lets it in without the password file and ACL, as Mosquitto does for its bridges.
  virtual bool internal() const { return false; }

  // Writes pending output. Called by IoWorker at the end of the turn after RequestFlush().
  virtual void FlushOutput() = 0;
  // Frees the output buffer kept for reuse when nothing was written since the last call. The
  // owner calls it about once a second, so that a connection gone quiet holds no buffer.
  virtual void ReleaseIdleBuffers() {}
};

// An open connection between two workers: created by Transport::Detach on one thread, attached
// on the target worker's thread. Destroying it unattached closes the connection.
class DetachedTransport {
 public:
  virtual ~DetachedTransport() = default;
  // Binds the connection to `worker` (call on its thread); Start() the result next.
  virtual std::shared_ptr<Transport> Attach(IoWorker* worker) = 0;
};

}  // namespace mqtt::net
