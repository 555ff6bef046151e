// SPDX-License-Identifier: Apache-2.0
#include "node/net/poller.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "boost/asio/post.hpp"
#include "node/base/log.h"

namespace mqtt::net {

Poller::Poller(boost::asio::io_context& io)
    : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)), io_(io), watch_(io) {
  if (epoll_fd_ < 0) {
    MQTT_LOG_ERROR("epoll_create1: %s", std::strerror(errno));
    std::abort();  // no descriptors left at start-up: nothing could be served
  }
  boost::system::error_code ec;
  watch_.assign(epoll_fd_, ec);
  if (ec) {
    MQTT_LOG_ERROR("watching the worker's epoll set: %s", ec.message());
    std::abort();
  }
  Wait();
}

Poller::~Poller() {
  boost::system::error_code ec;
  watch_.close(ec);  // closes epoll_fd_
}

absl::Status Poller::Add(int fd, PollTarget* target) {
  epoll_event event{};
  event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  event.data.ptr = target;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl add: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

void Poller::Remove(int fd, PollTarget* target) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  RemoveBeforeClose(target);
}

// The descriptor is closed by the caller right after, with no duplicate open (we never dup a
// watched descriptor), so the kernel drops it from the set.
void Poller::RemoveBeforeClose(PollTarget* target) {
  for (int i = delivering_ + 1; i < fetched_; ++i) {
    if (events_[i].data.ptr == target) events_[i].data.ptr = nullptr;
  }
}

void Poller::Wait() {
  watch_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                    [this](const boost::system::error_code& ec) {
                      if (!ec) Dispatch();
                    });
}

// The set's descriptor is edge-triggered in Asio's reactor too: it signals again only when a
// new event arrives, so a full batch means more may be waiting, fetched after a post.
void Poller::Dispatch() {
  fetched_ = epoll_wait(epoll_fd_, events_, kMaxEvents, 0);
  if (fetched_ < 0) {
    fetched_ = 0;
    if (errno != EINTR) {
      MQTT_LOG_ERROR("epoll_wait on the worker's set: %s", std::strerror(errno));
      return;  // the set is gone (shutdown): nothing more to deliver
    }
    boost::asio::post(io_, [this] { Dispatch(); });
    return;
  }
  for (delivering_ = 0; delivering_ < fetched_; ++delivering_) {
    auto* target = static_cast<PollTarget*>(events_[delivering_].data.ptr);
    if (target != nullptr) target->OnPollEvents(events_[delivering_].events);
  }
  const bool full = fetched_ == kMaxEvents;
  fetched_ = 0;
  delivering_ = 0;
  if (full) {
    boost::asio::post(io_, [this] { Dispatch(); });
  } else {
    Wait();
  }
}

}  // namespace mqtt::net
