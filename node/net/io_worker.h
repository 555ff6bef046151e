// SPDX-License-Identifier: Apache-2.0
// One worker thread running one Asio io_context. A connection lives on one worker for its whole
// life (or until it is handed to its session's home worker right after CONNECT); everything a
// worker owns is touched only from its thread, so the hot path takes no locks.
//
// Threading: Post() and InThisThread() may be called from any thread, Start() and Stop() from
// any thread but the worker's own (Stop joins it). Everything else only from the worker's own
// thread (or before Start()).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "node/base/executor.h"
#include "node/net/poller.h"

namespace mqtt::net {

class Transport;

class IoWorker final : public Executor {
  class CrossThreadQueue;

 public:
  explicit IoWorker(uint32_t index);
  ~IoWorker();
  IoWorker(const IoWorker&) = delete;
  IoWorker& operator=(const IoWorker&) = delete;

  uint32_t index() const { return index_; }
  boost::asio::io_context& io() { return io_; }
  // This worker's epoll set for plain TCP connections and listening sockets (poller.h).
  Poller& poller() { return poller_; }

  // Before Start: a worker that runs out of work while it is busy keeps polling for more for up
  // to `idle_poll` before it sleeps (SpinGate, spin_gate.h, says when: `messages` is a running
  // total of the messages it handled). Sleeping costs a wake-up when work comes, and on a
  // virtual machine whose idle vCPU halts that wake-up takes tens of microseconds: the round
  // trip of every QoS 1 exchange. 0: never poll.
  void set_idle_poll(std::chrono::microseconds idle_poll, std::function<uint64_t()> messages) {
    idle_poll_ = idle_poll;
    messages_handled_ = std::move(messages);
  }

  void Start();  // runs the io_context on a new thread
  void Stop();   // stops the loop and joins the thread; pending handlers are dropped
  bool InThisThread() const override { return std::this_thread::get_id() == thread_.get_id(); }

  // From the worker's own thread (or before Start): queued behind the handlers already
  // queued. From another thread: through the worker's cross-thread queue (below), in the order
  // of posting per posting thread.
  void Post(std::function<void()> fn) override;

  // Runs `fn` once after the handlers that are already queued, i.e. at the end of this loop
  // turn. Used to batch work produced by many packets (writes, cross-worker deliveries).
  void AtEndOfTurn(std::function<void()> fn);

  // Writes `transport`'s output at the end of this turn, once however often it is called.
  void ScheduleFlush(std::shared_ptr<Transport> transport);

  // Scratch space for reading sockets: a connection reads into it and keeps only the bytes of an
  // incomplete packet, so an idle connection holds no read buffer.
  char* read_scratch() { return read_scratch_.data(); }
  size_t read_scratch_size() const { return read_scratch_.size(); }

 private:
  void RunEndOfTurn();
  void Run();
  bool PollForWork(std::chrono::steady_clock::time_point idle_since);

  const uint32_t index_;
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  Poller poller_{io_};
  std::unique_ptr<CrossThreadQueue> cross_thread_;  // registered in poller_: destroyed first
  std::atomic<bool> started_{false};
  std::chrono::microseconds idle_poll_{0};
  std::function<uint64_t()> messages_handled_;
  std::thread thread_;
  std::vector<char> read_scratch_;
  std::vector<std::function<void()>> end_of_turn_;
  std::vector<std::shared_ptr<Transport>> to_flush_;
  bool end_of_turn_scheduled_ = false;
};

}  // namespace mqtt::net
