// SPDX-License-Identifier: Apache-2.0
// LayeredTransport: Transport over TCP with TLS (mqtts), WebSocket (ws) or both (wss).
// Plain MQTT over TCP stays on TcpTransport, which this class does not touch: TLS costs the
// TCP path nothing.
//
// TLS is OpenSSL driven directly on the non-blocking socket (SSL_set_fd; readiness from Asio's
// async_wait, as TcpTransport does), not boost::asio::ssl::stream: the stream is bound to one
// io_context and cannot follow a connection to its session's home worker after CONNECT. The
// SSL object holds no reference to a thread or an event loop, so Detach() hands the socket's
// file descriptor, the SSL object (keys, sequence numbers, buffered records) and the WebSocket
// decoder state to the target worker, exactly as the TCP transport hands its descriptor.
//
// A connection goes through: TLS handshake (mqtts, wss), HTTP Upgrade (ws, wss), then MQTT.
// Both handshakes must finish within the listener's handshake timeout, else the socket is
// closed. Input and output are as TcpTransport's: reads into the worker's scratch buffer,
// output written once per loop turn, reading paused while 1 MiB is unwritten.
//
// Threading: as Transport (transport.h): every method on the worker's thread.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "boost/asio/basic_waitable_timer.hpp"
#include "boost/asio/post.hpp"
#include "node/net/connection_gate.h"
#include "node/net/tcp_transport.h"
#include "node/net/tls_context.h"
#include "node/net/websocket.h"

namespace mqtt::net {

// What a listener's connections share; read-only once the listener runs.
struct LayeredOptions {
  std::string protocol;             // "mqtts", "ws" or "wss": for logs
  std::shared_ptr<TlsContext> tls;  // null: no TLS
  bool websocket = false;
  std::string ws_path = "/mqtt";
  std::chrono::milliseconds handshake_timeout{10000};
  // The listener's connection limits; counts its connections. Null: none. Outlives them.
  ConnectionGate* gate = nullptr;
};

struct SslFree {
  void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

class LayeredTransport final : public Transport,
                               public std::enable_shared_from_this<LayeredTransport> {
 public:
  enum class Phase : uint8_t { kTls, kUpgrade, kOpen };
  // The state that moves with a connection between workers.
  struct Layers {
    SslPtr ssl;                     // null without TLS
    std::unique_ptr<WsDecoder> ws;  // null without WebSocket
    std::string identity;
    Phase phase = Phase::kTls;
  };

  // A new connection (call on any thread; Start on the worker's). `ssl` is null without TLS.
  LayeredTransport(IoWorker* worker, TcpSocket socket, std::shared_ptr<LayeredOptions> options,
                   SslPtr ssl);
  // A connection handed over from another worker.
  LayeredTransport(IoWorker* worker, TcpSocket socket, std::shared_ptr<LayeredOptions> options,
                   Layers layers);
  ~LayeredTransport() override;
  LayeredTransport(const LayeredTransport&) = delete;
  LayeredTransport& operator=(const LayeredTransport&) = delete;

  void Start(TransportCallbacks* callbacks, std::string initial_input) override;
  std::string* output_buffer() override { return &out_; }
  void RequestFlush() override;
  size_t unsent_bytes() const override { return out_.size() + wire_.size() - wire_sent_; }
  void NotifyWhenWritten() override { notify_written_ = true; }
  void PauseReading() override { paused_by_owner_ = true; }
  void ResumeReading() override;
  void Close() override;
  void Abort() override;
  bool closing() const override { return state_ != State::kOpen; }
  std::chrono::steady_clock::time_point close_started() const override { return close_started_; }
  std::unique_ptr<DetachedTransport> Detach() override;
  IoWorker* worker() const override { return worker_; }
  std::string peer() const override;
  std::string certificate_username() const override { return layers_.identity; }
  ListenerKind listener_kind() const override {
    if (options_->websocket) return options_->tls ? ListenerKind::kWss : ListenerKind::kWs;
    return ListenerKind::kTls;
  }
  void FlushOutput() override;

 private:
  enum class State : uint8_t { kOpen, kClosing, kClosed, kDetached };
  enum class Io : uint8_t { kDone, kWouldBlock, kEof, kError };
  using Timer =
      boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                        boost::asio::wait_traits<std::chrono::steady_clock>,
                                        boost::asio::io_context::executor_type>;

  void WaitReadable();
  void OnReadable();
  void PostRead();
  bool ContinueTlsHandshake();
  void OnTlsEstablished();
  Io ReadSome(char* data, size_t size, size_t* n);
  Io WriteSome(const char* data, size_t size, size_t* n);
  void OnBytes(char* data, size_t n);
  size_t HandleUpgrade(const char* data, size_t n);
  void ProcessInput(std::string_view fresh);
  void EncodeOutput();
  void WaitWritable();
  void StartHandshakeTimer();
  void StopHandshakeTimer();
  void Shutdown();

  IoWorker* const worker_;
  TcpSocket socket_;
  std::shared_ptr<LayeredOptions> options_;
  Layers layers_;
  TransportCallbacks* callbacks_ = nullptr;
  State state_ = State::kOpen;
  bool reading_ : 1 = false;
  bool read_paused_ : 1 = false;
  bool paused_by_owner_ : 1 = false;
  bool writing_ : 1 = false;
  bool flush_requested_ : 1 = false;
  bool read_wants_write_ : 1 = false;  // TLS: the read side waits for writability
  bool tls_failed_ : 1 = false;        // no close_notify after a fatal TLS error
  bool ws_close_sent_ : 1 = false;     // a close frame (or an HTTP refusal) is queued
  bool notify_written_ : 1 = false;    // NotifyWhenWritten() asked, OnOutputWritten() not yet
  size_t wire_sent_ = 0;               // bytes of wire_ written
  std::unique_ptr<std::string> in_;    // MQTT bytes of an incomplete packet; null when idle
  std::unique_ptr<std::string> http_;  // the HTTP request head read so far (ws, wss)
  std::unique_ptr<Timer> handshake_timer_;
  std::string out_;   // MQTT output of this turn
  std::string wire_;  // bytes for the socket: HTTP, WebSocket frames; TLS encrypts on write
  std::chrono::steady_clock::time_point close_started_{};
};

}  // namespace mqtt::net
