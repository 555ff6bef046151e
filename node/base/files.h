// SPDX-License-Identifier: Apache-2.0
// Reading a whole (small) file: configuration, password and ACL files. Any thread.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace mqtt {

// The file's bytes; kNotFound ("PATH: cannot be read") if it cannot be opened.
absl::StatusOr<std::string> ReadFileToString(const std::string& path);

}  // namespace mqtt
