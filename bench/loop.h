// SPDX-License-Identifier: Apache-2.0
// The event loop of mqtt-bench: one thread, one epoll set (edge-triggered), non-blocking
// TCP_NODELAY sockets, one shared read buffer (an idle connection holds no buffer), and
// writes batched per loop turn (one send per dirty connection per turn). With EnableTls, every
// connection runs a non-blocking TLS handshake after its TCP connect and then reads and writes
// through OpenSSL; plain connections take the same code as without TLS (one branch on c.ssl).
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "codec.h"

struct ssl_st;      // SSL
struct ssl_ctx_st;  // SSL_CTX

namespace bench {

struct Conn {
  enum State : uint8_t {
    kIdle,
    kTcpConnecting,
    kTlsHandshaking,  // TCP up, TLS handshake in progress; the CONNECT waits in `out`
    kMqttConnecting,
    kReady,
    kClosing,
    kClosed
  };

  int fd = -1;
  ssl_st* ssl = nullptr;  // TLS connections only; owned, freed by Loop::Close
  State state = kIdle;
  bool dirty = false;          // queued for the end-of-turn flush
  bool write_blocked = false;  // socket buffer full: waiting for EPOLLOUT
  bool read_paused = false;    // reads suspended (a slow consumer); Loop::ResumeRead restarts
  // TLS: an SSL_read needs the socket writable, or an SSL_write needs it readable (a record
  // OpenSSL must answer or read first); the other event's handler retries.
  bool tls_read_wants_write = false;
  bool tls_write_wants_read = false;
  uint8_t role = 0;         // owner-defined
  uint32_t role_index = 0;  // owner-defined
  int64_t connect_start_ns = 0;
  int64_t last_tx_ns = 0;        // last time send() took bytes (keep-alive pings skip busy ones)
  int64_t blocked_since_ns = 0;  // write_blocked since
  int64_t max_blocked_ns = 0;    // longest write_blocked period (the peer stopped reading us)
  Bytes out;                     // bytes to send, from out_off
  size_t out_off = 0;            //
  Bytes partial;                 // an incomplete packet carried over to the next read

  size_t pending() const { return out.size() - out_off; }
};

class Loop {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual void OnConnected(Conn& c, int64_t now) = 0;  // CONNACK with return code 0
    virtual void OnPacket(Conn& c, const Packet& p, int64_t now) = 0;
    virtual void OnClosed(Conn& c, Conn::State was, const char* why) = 0;
  };

  explicit Loop(Handler* handler);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // Starts a non-blocking connect and queues the MQTT CONNECT. Returns false (errno set) if
  // the socket could not be created or the connect failed at once. A source address (port 0,
  // bound with IP_BIND_ADDRESS_NO_PORT) lifts the ~28,000 ephemeral ports per destination.
  bool Connect(Conn& c, const sockaddr_in& addr, std::string_view client_id, uint16_t keepalive,
               const sockaddr_in* source = nullptr);
  // TLS for every later Connect: the loop takes ownership of ctx (tls.h). Verifies the broker's
  // certificate against server_name (a DNS name, also sent as SNI) or, if empty, against the IP
  // address connected to (as the context's verify mode says).
  void EnableTls(ssl_ctx_st* ctx, std::string server_name);
  // The negotiated protocol and cipher of the first TLS handshake ("" before one, or plain).
  const std::string& tls_description() const { return tls_description_; }
  // Clean session flag of every CONNECT (default 1); 0 makes persistent sessions.
  void set_clean_session(bool clean) { clean_session_ = clean; }
  // Reads everything the socket holds after a pause (edge-triggered: no new edge may come).
  void ResumeRead(Conn& c) {
    c.read_paused = false;
    if (c.fd >= 0) OnReadable(c);
  }
  // The output buffer of c, marked for the end-of-turn flush.
  Bytes& Out(Conn& c) {
    if (!c.dirty) {
      c.dirty = true;
      dirty_.push_back(&c);
    }
    return c.out;
  }
  void Flush();  // one send per dirty connection
  // One epoll wait (nanosecond timeout where the kernel has epoll_pwait2) and dispatch.
  void Poll(int64_t timeout_ns);
  void Close(Conn& c, const char* why);

  uint64_t syscalls() const { return syscalls_; }

 private:
  bool clean_session_ = true;
  void OnReadable(Conn& c);
  void FlushOne(Conn& c);
  // TLS: Handshake on each readiness event from the TCP connect on, until kMqttConnecting.
  void Handshake(Conn& c);
  void ReadTls(Conn& c);
  size_t PrepareRead(Conn& c);
  bool TakePackets(Conn& c, size_t have, size_t n);
  void FlushTls(Conn& c);
  void TrimOut(Conn& c);
  bool NewSsl(Conn& c, int fd, const sockaddr_in& addr);
  std::string TlsFailure(Conn& c, int err, const char* what);
  void Dispatch(Conn& c, const Packet& p, int64_t now);

  Handler* handler_;
  ssl_ctx_st* tls_ = nullptr;
  std::string tls_server_name_;
  std::string tls_description_;
  int epfd_ = -1;
  bool have_pwait2_ = true;
  std::vector<Conn*> dirty_;
  Bytes rbuf_;
  uint64_t syscalls_ = 0;
};

}  // namespace bench
