// SPDX-License-Identifier: Apache-2.0
#include "node/net/listener.h"

#include "absl/strings/str_cat.h"
#include "node/base/log.h"

namespace mqtt::net {

using boost::asio::ip::tcp;

Listener::Listener(IoWorker* accept_worker, std::vector<IoWorker*> workers, AcceptFn on_accept)
    : workers_(std::move(workers)),
      on_accept_(std::move(on_accept)),
      acceptor_(accept_worker->io()),
      retry_timer_(accept_worker->io()) {}

absl::StatusOr<std::unique_ptr<Listener>> Listener::Bind(IoWorker* accept_worker,
                                                         const std::vector<IoWorker*>& workers,
                                                         const std::string& host, uint16_t port,
                                                         AcceptFn on_accept) {
  std::unique_ptr<Listener> listener(new Listener(accept_worker, workers, std::move(on_accept)));
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address(host, ec);
  if (ec) return absl::InvalidArgumentError(absl::StrCat("listen: bad address '", host, "'"));
  tcp::endpoint endpoint(address, port);
  tcp::acceptor& acceptor = listener->acceptor_;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(4096, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("listen on ", host, ":", port, ": ", ec.message()));
  }
  listener->host_ = host;
  listener->port_ = acceptor.local_endpoint(ec).port();
  return listener;
}

std::string Listener::address() const { return absl::StrCat(host_, ":", port_); }

void Listener::Start() { AcceptNext(); }

void Listener::Stop() {
  boost::system::error_code ec;
  retry_timer_.cancel();
  acceptor_.close(ec);
}

void Listener::AcceptNext() {
  IoWorker* worker = workers_[next_worker_++ % workers_.size()];
  acceptor_.async_accept(
      worker->io(), [this, worker](const boost::system::error_code& ec, TcpSocket socket) {
        if (ec == boost::asio::error::operation_aborted) return;
        if (ec) {
          // Out of file descriptors and the like: log once per retry and back off briefly rather
          // than spinning on an acceptor that stays readable.
          MQTT_LOG_WARN("accept on %s failed: %s", address(), ec.message());
          retry_timer_.expires_after(std::chrono::milliseconds(100));
          retry_timer_.async_wait([this](const boost::system::error_code& timer_ec) {
            if (!timer_ec) AcceptNext();
          });
          return;
        }
        on_accept_(worker, std::move(socket));
        AcceptNext();
      });
}

}  // namespace mqtt::net
