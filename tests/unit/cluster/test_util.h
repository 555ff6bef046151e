// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the cluster's multi-node unit tests (header only).
// Threading: FreePort and WaitUntil may be called from any thread.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <random>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cluster/registry_state.h"
#include "proto/registry.pb.h"

namespace mqtt::cluster::test_util {

// A loopback port free at this moment, picked at random below the kernel's ephemeral range
// (32768+), so that no outgoing connection or port-0 server of a parallel test takes it before
// the test binds it (libraft needs its address before it binds). 0 if none was found.
inline int FreePort() {
  static absl::Mutex mu(absl::kConstInit);
  static std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> pick(20000, 32767);
  for (int attempt = 0; attempt < 100; ++attempt) {
    int port = 0;
    {
      absl::MutexLock lock(&mu);
      port = pick(rng);
    }
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const bool free = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    close(fd);
    if (free) return port;
  }
  return 0;
}

// Polls `done` every 5 ms until it holds (true) or `timeout` passes (false).
inline bool WaitUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// Proposes through `proposer` (a Registry or a RegistryClient) and waits at most `timeout` for
// the callback, which may outlive a failed wait: its state is shared.
template <typename Proposer>
absl::StatusOr<std::vector<RegistryChange>> ProposeAndWait(
    Proposer& proposer, std::vector<v1::RegistryCommand> commands, absl::Duration timeout) {
  using Result = absl::StatusOr<std::vector<RegistryChange>>;
  struct Shared {
    absl::Notification done;
    Result result = absl::UnknownError("no callback");
  };
  auto shared = std::make_shared<Shared>();
  proposer.Propose(std::move(commands), [shared](Result r) {
    shared->result = std::move(r);
    shared->done.Notify();
  });
  if (!shared->done.WaitForNotificationWithTimeout(timeout)) {
    return absl::DeadlineExceededError("test: no callback in time");
  }
  return shared->result;
}

}  // namespace mqtt::cluster::test_util
