// SPDX-License-Identifier: Apache-2.0
#include "node/net/listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/post.hpp"
#include "boost/asio/steady_timer.hpp"
#include "node/base/host_port.h"
#include "node/base/log.h"
#include "node/net/poller.h"

namespace mqtt::net {

namespace {
using boost::asio::ip::tcp;
// Connections accepted per readiness event before the worker's other work gets a turn.
constexpr int kMaxAcceptsPerWakeup = 64;
constexpr int kBacklog = 4096;

absl::Status ListenError(const std::string& host, uint16_t port) {
  return absl::UnavailableError(
      absl::StrCat("listen on ", host, ":", port, ": ", std::strerror(errno)));
}
}  // namespace

// One worker's listening socket.
class Listener::Acceptor final : public PollTarget {
 public:
  Acceptor(IoWorker* worker, int fd, const AcceptFn* on_accept, const std::string* name)
      : worker_(worker), fd_(fd), on_accept_(on_accept), name_(name), retry_(worker->io()) {}
  ~Acceptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  IoWorker* worker() const { return worker_; }
  int fd() const { return fd_; }

  // On the worker's thread.
  void Start() {
    if (fd_ < 0 || watched_) return;
    if (absl::Status added = worker_->poller().Add(fd_, this); !added.ok()) {
      MQTT_LOG_ERROR("listener %s: %s", *name_, added.message());
      return;
    }
    watched_ = true;  // connections already waiting are reported at once
  }
  void Stop() {
    retry_.cancel();
    if (watched_) worker_->poller().Remove(fd_, this);
    watched_ = false;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void OnPollEvents(uint32_t) override { AcceptSome(); }

 private:
  void AcceptSome() {
    for (int i = 0; i < kMaxAcceptsPerWakeup && fd_ >= 0; ++i) {
      const int fd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        const int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        (*on_accept_)(worker_, fd);
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;  // the next edge brings more
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
      // Out of file descriptors and the like: log once per retry and back off briefly (the
      // waiting connections raise no new edge, so the timer tries again).
      MQTT_LOG_WARN("accept on %s failed: %s", *name_, std::strerror(errno));
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) AcceptSome();
      });
      return;
    }
    if (fd_ >= 0) boost::asio::post(worker_->io(), [this] { AcceptSome(); });  // more may wait
  }

  IoWorker* const worker_;
  int fd_;
  bool watched_ = false;
  const AcceptFn* const on_accept_;
  const std::string* const name_;
  boost::asio::steady_timer retry_;
};

absl::StatusOr<std::unique_ptr<Listener>> Listener::Bind(const std::vector<IoWorker*>& workers,
                                                         const std::string& host, uint16_t port,
                                                         AcceptFn on_accept) {
  std::unique_ptr<Listener> listener(new Listener(std::move(on_accept)));
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("listen: bad address '", host, "'"));
  listener->host_ = host;
  tcp::endpoint endpoint(address, port);
  for (IoWorker* worker : workers) {
    const int fd = socket(endpoint.protocol().family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                          IPPROTO_TCP);
    if (fd < 0) return ListenError(host, port);
    listener->acceptors_.push_back(
        std::make_unique<Acceptor>(worker, fd, &listener->on_accept_, &listener->host_));
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    // The first socket binds alone (an exclusive claim of the port), then lets its siblings in.
    const bool first = listener->acceptors_.size() == 1;
    if (!first) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
    if (bind(fd, endpoint.data(), endpoint.size()) != 0) return ListenError(host, port);
    if (first) {
      sockaddr_storage bound{};
      socklen_t length = sizeof(bound);
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) != 0) {
        return ListenError(host, port);
      }
      endpoint.resize(length);
      std::memcpy(endpoint.data(), &bound, length);  // the port picked for port 0
      if (workers.size() > 1) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
    }
  }
  for (const auto& acceptor : listener->acceptors_) {
    if (listen(acceptor->fd(), kBacklog) != 0) return ListenError(host, port);
  }
  listener->port_ = endpoint.port();
  return listener;
}

Listener::Listener(AcceptFn on_accept) : on_accept_(std::move(on_accept)) {}

Listener::~Listener() = default;

std::string Listener::address() const { return JoinHostPort(host_, port_); }

void Listener::Start() {
  for (const auto& acceptor : acceptors_) {
    Acceptor* a = acceptor.get();
    boost::asio::post(a->worker()->io(), [a] { a->Start(); });
  }
}

void Listener::Stop() {
  for (const auto& acceptor : acceptors_) {
    Acceptor* a = acceptor.get();
    if (a->worker()->InThisThread()) {
      a->Stop();
    } else {
      boost::asio::post(a->worker()->io(), [a] { a->Stop(); });
    }
  }
}

}  // namespace mqtt::net
