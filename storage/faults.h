// SPDX-License-Identifier: Apache-2.0
// A way in for fault tests (LevelDB's fault_injection_test does the same through its Env): when
// StoreOptions::faults is set, every file RocksDB writes (WAL, MANIFEST, SST) goes through a
// wrapper that fails on demand as a full disk would. Production code leaves it null.
//
// Threading: any thread may flip the switch while the store runs.
#pragma once

#include <atomic>
#include <cstdint>

namespace mqtt::storage {

class StorageFaults {
 public:
  // From now on, every append or sync to a file opened for writing fails with "No space left on
  // device" (RocksDB IOError, NoSpace) and writes nothing.
  void FailWrites() { failing_.store(true); }
  // Writes succeed again (a Store that saw an error still refuses writes: see Store::Write).
  void Clear() { failing_.store(false); }
  bool failing() const { return failing_.load(); }
  // How many operations were made to fail so far.
  uint64_t injected() const { return injected_.load(); }

  // Called by the wrapper: true if this operation must fail (and counts it).
  bool ShouldFail() {
    if (!failing_.load()) return false;
    injected_.fetch_add(1);
    return true;
  }

 private:
  std::atomic<bool> failing_{false};
  std::atomic<uint64_t> injected_{0};
};

}  // namespace mqtt::storage
