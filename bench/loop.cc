// SPDX-License-Identifier: Apache-2.0
#include "loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "stats.h"
#include "tls.h"

namespace bench {
namespace {

constexpr size_t kReadBuffer = 256 * 1024;
constexpr int kMaxEvents = 512;

}  // namespace

Loop::Loop(Handler* handler) : handler_(handler), rbuf_(kReadBuffer) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    std::perror("epoll_create1");
    std::exit(2);
  }
}

Loop::~Loop() {
  close(epfd_);
  if (tls_) FreeTlsContext(tls_);
}

void Loop::EnableTls(ssl_ctx_st* ctx, std::string server_name) {
  // OpenSSL writes with write(), not send(MSG_NOSIGNAL): a broker that closes while we write
  // must give EPIPE, not kill the process.
  signal(SIGPIPE, SIG_IGN);
  if (tls_) FreeTlsContext(tls_);
  tls_ = ctx;
  tls_server_name_ = std::move(server_name);
}

bool Loop::Connect(Conn& c, const sockaddr_in& addr, std::string_view client_id, uint16_t keepalive,
                   const sockaddr_in* source) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (source) {
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, reinterpret_cast<const sockaddr*>(source), sizeof *source) != 0) {
      const int err = errno;
      close(fd);
      errno = err;
      return false;
    }
  }
  c.connect_start_ns = MonoNs();
  int rc = connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
  if (rc != 0 && errno != EINPROGRESS) {
    const int err = errno;
    close(fd);
    errno = err;
    return false;
  }
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.ptr = &c;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    const int err = errno;
    close(fd);
    errno = err;
    return false;
  }
  if (tls_ && !NewSsl(c, fd, addr)) {
    close(fd);
    errno = ENOMEM;
    return false;
  }
  c.fd = fd;
  // With TLS and an immediate connect, the EPOLLOUT edge of the new registration starts the
  // handshake (no handler runs inside Connect).
  c.state = rc != 0 ? Conn::kTcpConnecting : c.ssl ? Conn::kTlsHandshaking : Conn::kMqttConnecting;
  c.write_blocked = false;
  c.read_paused = false;
  c.tls_read_wants_write = false;
  c.tls_write_wants_read = false;
  c.last_tx_ns = c.connect_start_ns;
  c.out.clear();
  c.out_off = 0;
  c.partial.clear();
  EncodeConnect(Out(c), client_id, keepalive, clean_session_);
  return true;
}

bool Loop::NewSsl(Conn& c, int fd, const sockaddr_in& addr) {
  SSL* ssl = SSL_new(tls_);
  if (!ssl) return false;
  SSL_set_fd(ssl, fd);
  SSL_set_connect_state(ssl);
  bool ok;
  if (!tls_server_name_.empty()) {
    ok = SSL_set_tlsext_host_name(ssl, tls_server_name_.c_str()) == 1 &&
         SSL_set1_host(ssl, tls_server_name_.c_str()) == 1;
  } else {
    char ip[INET_ADDRSTRLEN] = "";
    inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof ip);
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), ip) == 1;
  }
  if (!ok) {
    SSL_free(ssl);
    ERR_clear_error();
    return false;
  }
  c.ssl = ssl;
  return true;
}

void Loop::Close(Conn& c, const char* why) {
  if (c.fd < 0) return;
  if (c.ssl) {
    SSL_free(c.ssl);  // no close_notify: the MQTT DISCONNECT (or an error) already ended it
    c.ssl = nullptr;
  }
  close(c.fd);  // also leaves the epoll set
  c.fd = -1;
  const Conn::State was = c.state;
  c.state = Conn::kClosed;
  Bytes().swap(c.out);
  Bytes().swap(c.partial);
  c.out_off = 0;
  handler_->OnClosed(c, was, why);
}

void Loop::Flush() {
  // FlushOne may close a connection, whose handler may queue output on others: index, no
  // iterator.
  for (size_t i = 0; i < dirty_.size(); ++i) {
    Conn* c = dirty_[i];
    c->dirty = false;
    if (c->fd >= 0 && !c->write_blocked && c->state != Conn::kTcpConnecting &&
        c->state != Conn::kTlsHandshaking) {
      FlushOne(*c);
    }
  }
  dirty_.clear();
}

void Loop::FlushOne(Conn& c) {
  if (c.ssl) {
    FlushTls(c);
    return;
  }
  while (c.pending() > 0) {
    ++syscalls_;
    ssize_t n = send(c.fd, c.out.data() + c.out_off, c.pending(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.out_off += size_t(n);
      c.last_tx_ns = MonoNs();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      c.write_blocked = true;
      c.blocked_since_ns = MonoNs();
      break;
    }
    Close(c, std::strerror(errno));
    return;
  }
  TrimOut(c);
}

void Loop::TrimOut(Conn& c) {
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
  } else if (c.out_off > (64 << 10) && c.out_off * 2 > c.out.size()) {
    c.out.erase(c.out.begin(), c.out.begin() + long(c.out_off));
    c.out_off = 0;
  }
}

void Loop::Poll(int64_t timeout_ns) {
  epoll_event events[kMaxEvents];
  ++syscalls_;
  int n = -1;
  if (timeout_ns > 0 && have_pwait2_) {
    const timespec ts{time_t(timeout_ns / 1'000'000'000), long(timeout_ns % 1'000'000'000)};
    n = epoll_pwait2(epfd_, events, kMaxEvents, &ts, nullptr);
    if (n < 0 && errno == ENOSYS) have_pwait2_ = false;  // kernel < 5.11: millisecond timeouts
  }
  if (timeout_ns <= 0 || !have_pwait2_) {
    n = epoll_wait(epfd_, events, kMaxEvents,
                   int((std::max<int64_t>(timeout_ns, 0) + 999'999) / 1'000'000));
  }
  for (int i = 0; i < n; ++i) {
    Conn& c = *static_cast<Conn*>(events[i].data.ptr);
    const uint32_t ev = events[i].events;
    if (c.fd < 0) continue;
    if (ev & EPOLLOUT) {
      if (c.state == Conn::kTcpConnecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
          Close(c, std::strerror(err));
          continue;
        }
        if (c.ssl) {
          c.state = Conn::kTlsHandshaking;
          Handshake(c);
        } else {
          c.state = Conn::kMqttConnecting;
          FlushOne(c);
        }
      } else if (c.state == Conn::kTlsHandshaking) {
        Handshake(c);
      } else if (c.write_blocked) {
        c.write_blocked = false;
        c.max_blocked_ns = std::max(c.max_blocked_ns, MonoNs() - c.blocked_since_ns);
        FlushOne(c);
      }
      if (c.fd >= 0 && c.tls_read_wants_write) ReadTls(c);
      if (c.fd < 0) continue;
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
      if (c.state == Conn::kTlsHandshaking) {
        Handshake(c);
      } else {
        OnReadable(c);
      }
    }
  }
}

void Loop::OnReadable(Conn& c) {
  if (c.read_paused) return;
  if (c.ssl) {
    ReadTls(c);
    return;
  }
  for (;;) {
    const size_t have = PrepareRead(c);
    const size_t room = rbuf_.size() - have;
    ++syscalls_;
    const ssize_t n = read(c.fd, rbuf_.data() + have, room);
    if (n > 0) {
      if (!TakePackets(c, have, size_t(n))) return;
      if (size_t(n) < room || c.read_paused)
        return;  // drained (edge-triggered: a short read empties it)
      continue;
    }
    if (n == 0) {
      Close(c, c.state == Conn::kClosing ? "closed" : "closed by peer");
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    Close(c, std::strerror(errno));
    return;
  }
}

// ---- TLS ----
//
// Edge-triggered epoll and OpenSSL: an operation is retried on the next edge only after it
// returned SSL_ERROR_WANT_READ/WANT_WRITE, which OpenSSL reports only once the socket said
// EAGAIN, so an edge is due. Reads go on until WANT_READ (SSL_read returns one record at a time,
// and with read-ahead more may sit decrypted or raw in OpenSSL's buffer than SSL_pending shows),
// so no data is left behind without an edge to come. Writes: the unsent bytes of `out` from
// out_off are retried as they are; `out` only grows at the end while blocked (TrimOut may move
// it, which SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER allows), so each retry passes the same bytes
// and a length never below the last one's, as SSL_write requires.

std::string Loop::TlsFailure(Conn& c, int err, const char* what) {
  std::string why = what;
  if (err == SSL_ERROR_SYSCALL) {
    const int e = errno;
    ERR_clear_error();
    return why + (e ? std::strerror(e) : "closed by peer");
  }
  why += TlsErrorText(err == SSL_ERROR_SSL ? "TLS protocol error (no OpenSSL error queued)"
                                           : "TLS error");
  const long v = c.ssl ? SSL_get_verify_result(c.ssl) : X509_V_OK;
  if (v != X509_V_OK) why += std::string(" (") + X509_verify_cert_error_string(v) + ")";
  return why;
}

void Loop::Handshake(Conn& c) {
  ++syscalls_;
  const int rc = SSL_do_handshake(c.ssl);
  if (rc == 1) {
    if (tls_description_.empty()) {
      const char* group = SSL_group_to_name(c.ssl, SSL_get_negotiated_group(c.ssl));
      tls_description_ = std::string(SSL_get_version(c.ssl)) + " " + SSL_get_cipher_name(c.ssl) +
                         " " + (group ? group : "?");
    }
    c.state = Conn::kMqttConnecting;
    FlushTls(c);                // the CONNECT queued by Connect
    if (c.fd >= 0) ReadTls(c);  // whatever came with the last handshake flight
    return;
  }
  const int err = SSL_get_error(c.ssl, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return;
  Close(c, TlsFailure(c, err, "TLS handshake: ").c_str());
}

// Puts the incomplete packet kept from the last read at the start of the read buffer, with room
// behind it at least its size; returns its length.
size_t Loop::PrepareRead(Conn& c) {
  const size_t have = c.partial.size();
  if (have * 2 > rbuf_.size()) rbuf_.resize(have * 2);
  if (have) std::memcpy(rbuf_.data(), c.partial.data(), have);
  return have;
}

// Dispatches the packets of the read buffer after `n` bytes were read behind `have` kept ones,
// and keeps the incomplete tail. False when the connection was closed (by a handler, or for a
// malformed length).
bool Loop::TakePackets(Conn& c, size_t have, size_t n) {
  const int64_t now = MonoNs();
  const size_t total = have + n;
  bool error = false;
  const size_t used =
      SplitPackets(rbuf_.data(), total, &error, [&](const Packet& p) { Dispatch(c, p, now); });
  if (c.fd < 0) return false;
  if (error) {
    Close(c, "malformed packet length");
    return false;
  }
  c.partial.assign(rbuf_.data() + used, rbuf_.data() + total);
  return true;
}

void Loop::ReadTls(Conn& c) {
  c.tls_read_wants_write = false;
  for (;;) {
    const size_t have = PrepareRead(c);
    const int room = int(std::min<size_t>(rbuf_.size() - have, INT_MAX));
    ++syscalls_;
    const int n = SSL_read(c.ssl, rbuf_.data() + have, room);
    if (n > 0) {
      if (!TakePackets(c, have, size_t(n))) return;
      if (c.read_paused) return;  // ResumeRead reads on from OpenSSL's buffer
      continue;
    }
    const int err = SSL_get_error(c.ssl, n);
    if (err == SSL_ERROR_WANT_READ) {
      if (c.tls_write_wants_read) {  // the record SSL_write waited for may have come
        c.write_blocked = false;
        FlushTls(c);
      }
      return;
    }
    if (err == SSL_ERROR_WANT_WRITE) {
      c.tls_read_wants_write = true;  // retried on EPOLLOUT
      return;
    }
    if (err == SSL_ERROR_ZERO_RETURN || c.state == Conn::kClosing) {
      ERR_clear_error();
      Close(c, c.state == Conn::kClosing ? "closed" : "closed by peer");
      return;
    }
    Close(c, TlsFailure(c, err, "").c_str());
    return;
  }
}

void Loop::FlushTls(Conn& c) {
  c.tls_write_wants_read = false;
  while (c.pending() > 0) {
    ++syscalls_;
    const int n =
        SSL_write(c.ssl, c.out.data() + c.out_off, int(std::min<size_t>(c.pending(), INT_MAX)));
    if (n > 0) {
      c.out_off += size_t(n);
      c.last_tx_ns = MonoNs();
      continue;
    }
    const int err = SSL_get_error(c.ssl, n);
    if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
      c.write_blocked = true;
      c.blocked_since_ns = MonoNs();
      c.tls_write_wants_read = err == SSL_ERROR_WANT_READ;
      break;
    }
    Close(c, TlsFailure(c, err, "").c_str());
    return;
  }
  TrimOut(c);
}

void Loop::Dispatch(Conn& c, const Packet& p, int64_t now) {
  if (c.fd < 0) return;
  if (c.state == Conn::kMqttConnecting) {
    if (p.type() != kConnack || p.len < 2) {
      Close(c, "expected CONNACK");
      return;
    }
    if (p.body[1] != 0) {
      char why[64];
      std::snprintf(why, sizeof why, "CONNACK refused, code %d", p.body[1]);
      Close(c, why);
      return;
    }
    c.state = Conn::kReady;
    handler_->OnConnected(c, now);
    return;
  }
  handler_->OnPacket(c, p, now);
}

}  // namespace bench
