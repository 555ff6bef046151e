// SPDX-License-Identifier: Apache-2.0
#include "node/net/io_worker.h"

#include "boost/asio/post.hpp"
#include "node/net/transport.h"

namespace mqtt::net {

IoWorker::IoWorker(uint32_t index)
    : index_(index), work_(boost::asio::make_work_guard(io_)), read_scratch_(64 * 1024) {}

IoWorker::~IoWorker() { Stop(); }

void IoWorker::Start() {
  thread_ = std::thread([this] { io_.run(); });
}

void IoWorker::Stop() {
  work_.reset();
  io_.stop();
  if (thread_.joinable()) thread_.join();
}

void IoWorker::Post(std::function<void()> fn) { boost::asio::post(io_, std::move(fn)); }

void IoWorker::AtEndOfTurn(std::function<void()> fn) {
  end_of_turn_.push_back(std::move(fn));
  if (!end_of_turn_scheduled_) {
    end_of_turn_scheduled_ = true;
    boost::asio::post(io_, [this] { RunEndOfTurn(); });
  }
}

void IoWorker::ScheduleFlush(std::shared_ptr<Transport> transport) {
  to_flush_.push_back(std::move(transport));
  if (!end_of_turn_scheduled_) {
    end_of_turn_scheduled_ = true;
    boost::asio::post(io_, [this] { RunEndOfTurn(); });
  }
}

// Deferred functions run first: they may produce output (cross-worker deliveries); flushing
// comes last so each connection gets one write per turn.
void IoWorker::RunEndOfTurn() {
  end_of_turn_scheduled_ = false;
  while (!end_of_turn_.empty()) {
    std::vector<std::function<void()>> batch;
    batch.swap(end_of_turn_);
    for (auto& fn : batch) fn();
  }
  std::vector<std::shared_ptr<Transport>> batch;
  batch.swap(to_flush_);
  for (auto& transport : batch) transport->FlushOutput();
  if (batch.capacity() <= 1024) {
    batch.clear();
    if (to_flush_.empty()) to_flush_.swap(batch);  // keep the capacity for the next turn
  }
}

}  // namespace mqtt::net
