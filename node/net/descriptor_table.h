// SPDX-License-Identifier: Apache-2.0
// The process's descriptor limit and the kernel's descriptor table, set up once at start-up.
//
// Threading: call from the main thread before any other thread starts (the growth is then free
// of the RCU grace period below); calling later is correct, only slower.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"

namespace mqtt::net {

struct DescriptorTable {
  uint64_t limit = 0;        // the soft RLIMIT_NOFILE after PrepareDescriptorTable
  uint64_t raised_from = 0;  // the soft limit before, if it was raised; 0 otherwise
  uint64_t slots = 0;        // descriptors the kernel's table holds now (/proc/self/status FDSize)
};

// Raises the soft RLIMIT_NOFILE to the hard limit (a broker's connections are its descriptors;
// keeping the soft limit below the hard one only refuses clients), then makes the kernel's
// descriptor table hold `expected` descriptors (at most the limit) at once.
//
// Why: the kernel grows the table by doubling when a descriptor number does not fit, and in a
// process with several threads each growth waits for an RCU grace period: 10-17 ms measured on
// this project's machines, during which the accepting worker (and every client on it) stands
// still. A fresh node taking a connection storm went through ~8 of them (64 -> 16,384); growing
// the table once here, before the threads start, costs nothing of the kind.
absl::StatusOr<DescriptorTable> PrepareDescriptorTable(uint64_t expected);

// The size of this process's descriptor table now (FDSize in /proc/self/status); 0 if unknown.
uint64_t DescriptorTableSlots();

}  // namespace mqtt::net
