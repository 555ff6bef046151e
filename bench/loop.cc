// SPDX-License-Identifier: Apache-2.0
#include "loop.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "stats.h"

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

Loop::~Loop() { close(epfd_); }

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
  c.fd = fd;
  c.state = rc == 0 ? Conn::kMqttConnecting : Conn::kTcpConnecting;
  c.write_blocked = false;
  c.read_paused = false;
  c.last_tx_ns = c.connect_start_ns;
  c.out.clear();
  c.out_off = 0;
  c.partial.clear();
  EncodeConnect(Out(c), client_id, keepalive, clean_session_);
  return true;
}

void Loop::Close(Conn& c, const char* why) {
  if (c.fd < 0) return;
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
    if (c->fd >= 0 && !c->write_blocked && c->state != Conn::kTcpConnecting) FlushOne(*c);
  }
  dirty_.clear();
}

void Loop::FlushOne(Conn& c) {
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
        c.state = Conn::kMqttConnecting;
        FlushOne(c);
      } else if (c.write_blocked) {
        c.write_blocked = false;
        c.max_blocked_ns = std::max(c.max_blocked_ns, MonoNs() - c.blocked_since_ns);
        FlushOne(c);
      }
      if (c.fd < 0) continue;
    }
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) OnReadable(c);
  }
}

void Loop::OnReadable(Conn& c) {
  if (c.read_paused) return;
  for (;;) {
    const size_t have = c.partial.size();
    if (have * 2 > rbuf_.size()) rbuf_.resize(have * 2);
    if (have) std::memcpy(rbuf_.data(), c.partial.data(), have);
    const size_t room = rbuf_.size() - have;
    ++syscalls_;
    const ssize_t n = read(c.fd, rbuf_.data() + have, room);
    if (n > 0) {
      const int64_t now = MonoNs();
      const size_t total = have + size_t(n);
      bool error = false;
      const size_t used =
          SplitPackets(rbuf_.data(), total, &error, [&](const Packet& p) { Dispatch(c, p, now); });
      if (c.fd < 0) return;  // closed by a handler
      if (error) {
        Close(c, "malformed packet length");
        return;
      }
      c.partial.assign(rbuf_.data() + used, rbuf_.data() + total);
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
