// SPDX-License-Identifier: Apache-2.0
// DiskWatermark: whether the file system of the data directory has less free space than the
// node keeps in reserve (storage.min_free_disk). Above the watermark (free space below it) the
// node refuses new persistent state (docs/security.md, "Limits") so that the store never runs
// into a full disk: a failed RocksDB write makes the store refuse every later write, and the
// node stops rather than acknowledge what it cannot keep (store.h, "Errors").
//
// The check is a statvfs call made by Check() on a timer (node/main.cc), never per write;
// exceeded() is one relaxed atomic load, read on the publish path.
//
// Threading: Check() from one thread at a time (the main thread); exceeded(), free_bytes() and
// the accessors from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace mqtt::storage {

struct DiskSpace {
  uint64_t available_bytes = 0;  // to unprivileged users (statvfs f_bavail)
  uint64_t total_bytes = 0;
};

// statvfs(path).
absl::StatusOr<DiskSpace> StatDisk(const std::string& path);

// The reserve: `bytes`, or `percent` of the file system's size (one of them; both 0: none).
struct MinFreeDisk {
  uint64_t bytes = 0;
  uint32_t percent = 0;
};

class DiskWatermark {
 public:
  using Probe = std::function<absl::StatusOr<DiskSpace>()>;

  // `probe` is StatDisk(data_dir) in the node; tests pass their own.
  DiskWatermark(MinFreeDisk min_free, Probe probe)
      : min_free_(min_free), probe_(std::move(probe)) {}

  // Asks the probe and updates exceeded(). Returns whether exceeded() changed (the caller logs
  // it), or the probe's error (the previous state stays).
  absl::StatusOr<bool> Check();

  bool exceeded() const { return exceeded_.load(std::memory_order_relaxed); }
  uint64_t available_bytes() const { return available_.load(std::memory_order_relaxed); }
  // The reserve in bytes for a file system of `total_bytes`.
  uint64_t ReserveBytes(uint64_t total_bytes) const;

 private:
  const MinFreeDisk min_free_;
  const Probe probe_;
  std::atomic<bool> exceeded_{false};
  std::atomic<uint64_t> available_{0};
};

}  // namespace mqtt::storage
