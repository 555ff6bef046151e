// SPDX-License-Identifier: Apache-2.0
// Poller: one worker's own edge-triggered epoll set, for the descriptors that would otherwise
// each need Asio's per-socket reactor state (a mutex and three operation queues, 168 bytes) and
// a pending wait operation (about 100 bytes) for as long as they are idle: plain TCP
// connections and the listening sockets. A descriptor is added once, for input and output,
// and costs nothing in user space while idle; its events arrive through OnPollEvents.
//
// The set's own descriptor is watched by the worker's io_context, so poller events and Asio
// handlers run in the one loop. Edge-triggered: a target is told when a descriptor becomes
// readable or writable, and must read or write until EAGAIN (or remember that it did not).
//
// Threading: every method on the worker's thread.
#pragma once

#include <sys/epoll.h>

#include <cstdint>

#include "absl/status/status.h"
#include "boost/asio/io_context.hpp"
#include "boost/asio/posix/stream_descriptor.hpp"

namespace mqtt::net {

class PollTarget {
 public:
  // `events`: the EPOLL* bits reported (EPOLLIN, EPOLLOUT, EPOLLRDHUP, EPOLLHUP, EPOLLERR).
  virtual void OnPollEvents(uint32_t events) = 0;

 protected:
  ~PollTarget() = default;
};

class Poller {
 public:
  explicit Poller(boost::asio::io_context& io);
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Watches `fd` for input and output (edge-triggered) until Remove; `target` must stay alive
  // until then. A descriptor already readable is reported at once.
  absl::Status Add(int fd, PollTarget* target);
  // Stops watching `fd`; events of `target` fetched and not yet delivered are dropped, so the
  // target may be destroyed right after, even from within a delivery.
  void Remove(int fd, PollTarget* target);
  // As Remove, for a descriptor about to be closed (closing takes it out of the set: one system
  // call less per connection).
  void RemoveBeforeClose(PollTarget* target);

 private:
  void Wait();
  void Dispatch();

  // Events fetched per epoll_wait; more ready ones are fetched in a later handler, after Asio's
  // own handlers had their turn.
  static constexpr int kMaxEvents = 128;

  const int epoll_fd_;
  boost::asio::io_context& io_;
  boost::asio::posix::stream_descriptor watch_;  // epoll_fd_, as Asio sees it
  epoll_event events_[kMaxEvents];
  int fetched_ = 0;     // events in events_ of the dispatch under way
  int delivering_ = 0;  // index of the event being delivered
};

}  // namespace mqtt::net
