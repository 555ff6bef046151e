// SPDX-License-Identifier: Apache-2.0
#include "node/router/ack_token.h"

namespace mqtt {

AckToken::~AckToken() {
  if (cancelled_.load(std::memory_order_relaxed)) return;
  if (executor_ == nullptr || executor_->InThisThread()) {
    if (auto listener = listener_.lock()) listener->OnDurable(seq_);
    return;
  }
  executor_->Post([listener = std::move(listener_), seq = seq_] {
    if (auto l = listener.lock()) l->OnDurable(seq);
  });
}

}  // namespace mqtt
