// SPDX-License-Identifier: Apache-2.0
// Executor: where a piece of work runs. An IoWorker is one (its event loop thread); code that
// must call back "on the owner's thread" (acknowledgements, deliveries) takes an Executor
// rather than a worker, so that it needs nothing of node/net.
// Threading: Post and InThisThread may be called from any thread.
#pragma once

#include <functional>

namespace mqtt {

class Executor {
 public:
  virtual ~Executor() = default;
  // Runs `fn` later on this executor's thread.
  virtual void Post(std::function<void()> fn) = 0;
  // True on this executor's thread (then work may run inline).
  virtual bool InThisThread() const = 0;
};

}  // namespace mqtt
