// SPDX-License-Identifier: Apache-2.0
#include "storage/rocks_util.h"

#include <string>

#include "absl/strings/str_cat.h"

namespace mqtt::storage {
namespace {

absl::StatusCode CodeOf(const rocksdb::Status& s) {
  if (s.IsNotFound()) return absl::StatusCode::kNotFound;
  if (s.IsCorruption()) return absl::StatusCode::kDataLoss;
  if (s.IsNoSpace()) return absl::StatusCode::kResourceExhausted;
  if (s.IsIOError()) return absl::StatusCode::kInternal;
  if (s.IsInvalidArgument()) return absl::StatusCode::kInvalidArgument;
  if (s.IsNotSupported()) return absl::StatusCode::kUnimplemented;
  if (s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return absl::StatusCode::kUnavailable;
  if (s.IsAborted()) return absl::StatusCode::kAborted;
  return absl::StatusCode::kInternal;
}

}  // namespace

absl::Status FromRocks(const rocksdb::Status& status, std::string_view operation) {
  if (status.ok()) return absl::OkStatus();
  const std::string text = status.ToString();
  return absl::Status(CodeOf(status), absl::StrCat("storage: ", AbslView(operation), ": ", text));
}

}  // namespace mqtt::storage
