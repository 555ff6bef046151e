// SPDX-License-Identifier: Apache-2.0
#include "storage/disk_watermark.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace mqtt::storage {

absl::StatusOr<DiskSpace> StatDisk(const std::string& path) {
  struct statvfs st;
  if (statvfs(path.c_str(), &st) != 0) {
    return absl::UnavailableError(absl::StrCat("statvfs '", path, "': ", std::strerror(errno)));
  }
  return DiskSpace{uint64_t{st.f_bavail} * st.f_frsize, uint64_t{st.f_blocks} * st.f_frsize};
}

uint64_t DiskWatermark::ReserveBytes(uint64_t total_bytes) const {
  if (min_free_.percent != 0) return total_bytes / 100 * min_free_.percent;
  return min_free_.bytes;
}

absl::StatusOr<bool> DiskWatermark::Check() {
  absl::StatusOr<DiskSpace> space = probe_();
  if (!space.ok()) return space.status();
  available_.store(space->available_bytes, std::memory_order_relaxed);
  const uint64_t reserve = ReserveBytes(space->total_bytes);
  const bool exceeded = reserve != 0 && space->available_bytes < reserve;
  return exceeded_.exchange(exceeded, std::memory_order_relaxed) != exceeded;
}

}  // namespace mqtt::storage
