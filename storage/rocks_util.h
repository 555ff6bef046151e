// SPDX-License-Identifier: Apache-2.0
// The only place where RocksDB's Status becomes an absl::Status, plus view conversions. Internal
// to storage/: no public header includes RocksDB.
// Thread-safety: pure functions.
#pragma once

#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "rocksdb/slice.h"
#include "rocksdb/status.h"

namespace mqtt::storage {

// Maps `status` to an absl::Status whose message names the operation, e.g.
// "storage: write batch: IO error: No space left on device". OK stays OK.
// Codes: NotFound -> kNotFound; Corruption -> kDataLoss; IOError(no space) ->
// kResourceExhausted; other IOError -> kInternal; InvalidArgument -> kInvalidArgument;
// NotSupported -> kUnimplemented; Busy/TimedOut/TryAgain -> kUnavailable; Aborted -> kAborted;
// anything else -> kInternal.
absl::Status FromRocks(const rocksdb::Status& status, std::string_view operation);

// Debian's Abseil has its own absl::string_view; StrCat & co. take only that.
inline absl::string_view AbslView(std::string_view s) { return {s.data(), s.size()}; }
inline rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }
inline std::string_view ToView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

}  // namespace mqtt::storage
