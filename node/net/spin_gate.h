// SPDX-License-Identifier: Apache-2.0
// Whether a worker that has just run out of work should poll for more before it sleeps.
//
// Sleeping costs a wake-up when work comes; on a virtual machine whose idle vCPU halts (no
// guest halt-polling) that wake-up takes tens of microseconds, the round trip of every QoS 1
// exchange. Polling instead costs CPU, which pays only while work comes back within the
// polling budget. The gate opens for a window of kWindow when, in the window before:
// - the worker handled at least kBusyMessages messages (PUBLISH packets in and out, counted by
//   the caller). Neither the loop's busy time nor its handler count tells a loaded worker from
//   an idle one: a 1 -> 1 QoS 1 stream at 95,000 msg/s and one at 5,000 msg/s both keep a worker
//   ~15 % busy in ~110 handlers per 10 ms, since the stream's messages come 16 to a turn; the
//   messages differ 20-fold;
// - polling found work: at least half the polls found some before the budget ran out. A window
//   of misses closes the gate for the next window, whose lack of polls lets the one after
//   open again: at worst every other window polls in vain.
// So the CPU that polling costs is bounded by the budget per idle moment, and spent only under
// load.
//
// Threading: none; one worker's loop owns its gate. Times are passed in, for the tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <utility>

namespace mqtt::net {

class SpinGate {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::duration kWindow = std::chrono::milliseconds(10);
  static constexpr uint64_t kBusyMessages = 500;  // per kWindow: 50,000 messages/s

  // `messages` returns a running total of the messages the worker handled; called once per
  // window. Without it the gate stays closed.
  explicit SpinGate(std::function<uint64_t()> messages) : messages_(std::move(messages)) {}

  // The worker is out of work at `now`: true if it should poll before sleeping.
  bool ShouldPoll(Clock::time_point now) {
    if (window_start_ == Clock::time_point{}) window_start_ = now;
    if (now - window_start_ >= kWindow) Roll(now);
    return open_;
  }
  // What the poll that ShouldPoll allowed found.
  void Polled(bool found) {
    ++polls_;
    if (found) ++hits_;
  }

 private:
  // Closes the window that `now` is past and decides the next one from it.
  void Roll(Clock::time_point now) {
    const uint64_t total = messages_ ? messages_() : 0;
    const uint64_t handled = total - window_messages_;
    // Scaled to the window's true length: a quiet worker's window spans its whole sleep.
    const bool busy = handled * kWindow.count() >= kBusyMessages * (now - window_start_).count();
    const bool finds_work = polls_ == 0 || hits_ * 2 >= polls_;
    open_ = busy && finds_work;
    window_start_ = now;
    window_messages_ = total;
    polls_ = hits_ = 0;
  }

  const std::function<uint64_t()> messages_;
  Clock::time_point window_start_{};
  uint64_t window_messages_ = 0;
  uint32_t polls_ = 0;
  uint32_t hits_ = 0;
  bool open_ = false;
};

}  // namespace mqtt::net
