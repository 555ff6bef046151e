// SPDX-License-Identifier: Apache-2.0
// A TCP listener: accepts connections and spreads them over the workers round robin.
// Threading: runs on the accept worker given to Bind(); the accept callback runs on that thread
// with a socket already bound to the chosen worker's io_context (use it only there: post).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/steady_timer.hpp"
#include "node/net/io_worker.h"
#include "node/net/tcp_transport.h"

namespace mqtt::net {

class Listener {
 public:
  using AcceptFn = std::function<void(IoWorker* worker, TcpSocket socket)>;

  // Binds and listens; returns the error (address in use, bad address) without throwing.
  static absl::StatusOr<std::unique_ptr<Listener>> Bind(IoWorker* accept_worker,
                                                        const std::vector<IoWorker*>& workers,
                                                        const std::string& host, uint16_t port,
                                                        AcceptFn on_accept);
  void Start();
  void Stop();  // on the accept worker's thread
  uint16_t port() const { return port_; }
  std::string address() const;

 private:
  Listener(IoWorker* accept_worker, std::vector<IoWorker*> workers, AcceptFn on_accept);
  void AcceptNext();

  std::vector<IoWorker*> workers_;
  AcceptFn on_accept_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  std::string host_;
  uint16_t port_ = 0;
  size_t next_worker_ = 0;
};

}  // namespace mqtt::net
