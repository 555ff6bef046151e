// SPDX-License-Identifier: Apache-2.0
#include "node/base/files.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace mqtt {

absl::StatusOr<std::string> ReadFileToString(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot be read"));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace mqtt
