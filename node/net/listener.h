// SPDX-License-Identifier: Apache-2.0
// A TCP listener with one listening socket per worker, bound together with SO_REUSEPORT: the
// kernel spreads incoming connections over the workers and each is accepted on the worker that
// serves it, with no hand-over between threads. Accepting is a loop of accept4() calls when the
// worker's Poller reports the socket readable.
//
// The port stays exclusive to this process: the first socket is bound without SO_REUSEPORT (so
// a port held by anyone fails as before, "address in use"), and only then allows the others.
//
// Threading: Bind() on any thread before the workers run the sockets; Start() and Stop() from
// any thread (each worker starts or stops its own socket on its thread; Stop() does it at once
// for the calling worker). The accept callback runs on the accepting worker's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "node/net/io_worker.h"

namespace mqtt::net {

class Listener {
 public:
  // Called with an accepted connection's descriptor, non-blocking and with TCP_NODELAY, on the
  // worker that accepted it. The callback owns `fd` (closes it to refuse the connection).
  using AcceptFn = std::function<void(IoWorker* worker, int fd)>;

  // Binds and listens on every worker; returns the error (address in use, bad address)
  // without throwing.
  static absl::StatusOr<std::unique_ptr<Listener>> Bind(const std::vector<IoWorker*>& workers,
                                                        const std::string& host, uint16_t port,
                                                        AcceptFn on_accept);
  ~Listener();
  void Start();
  void Stop();
  uint16_t port() const { return port_; }
  std::string address() const;

 private:
  class Acceptor;
  explicit Listener(AcceptFn on_accept);

  AcceptFn on_accept_;
  std::vector<std::unique_ptr<Acceptor>> acceptors_;  // one per worker
  std::string host_;
  uint16_t port_ = 0;
};

}  // namespace mqtt::net
