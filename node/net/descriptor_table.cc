// SPDX-License-Identifier: Apache-2.0
#include "node/net/descriptor_table.h"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace mqtt::net {
namespace {

absl::Status ErrnoStatus(const char* what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

// Places a descriptor at number `slots - 1` and closes it: the table grows to fit it and the
// kernel never shrinks it.
absl::Status GrowTable(uint64_t slots) {
  if (slots < 2 || DescriptorTableSlots() >= slots) return absl::OkStatus();
  const int probe = eventfd(0, EFD_CLOEXEC);
  if (probe < 0) return ErrnoStatus("eventfd");
  const int placed = fcntl(probe, F_DUPFD_CLOEXEC, static_cast<int>(slots - 1));
  const int saved_errno = errno;
  close(probe);
  if (placed < 0) {
    errno = saved_errno;
    return ErrnoStatus("fcntl(F_DUPFD)");
  }
  close(placed);
  return absl::OkStatus();
}

}  // namespace

uint64_t DescriptorTableSlots() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    absl::string_view rest = line;
    if (!absl::ConsumePrefix(&rest, "FDSize:")) continue;
    uint64_t slots = 0;
    return absl::SimpleAtoi(absl::StripAsciiWhitespace(rest), &slots) ? slots : 0;
  }
  return 0;
}

absl::StatusOr<DescriptorTable> PrepareDescriptorTable(uint64_t expected) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return ErrnoStatus("getrlimit(RLIMIT_NOFILE)");
  DescriptorTable table;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    // Refused when the hard limit is above fs.nr_open (RLIM_INFINITY): keep the soft limit.
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      table.raised_from = limit.rlim_cur;
      limit = raised;
    }
  }
  table.limit = limit.rlim_cur;
  if (absl::Status grown = GrowTable(std::min<uint64_t>(expected, table.limit)); !grown.ok()) {
    return grown;
  }
  table.slots = DescriptorTableSlots();
  return table;
}

}  // namespace mqtt::net
