// SPDX-License-Identifier: Apache-2.0
// Helpers of the config tests: ParseCommandLine with an explicit environment, temp files.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "node/config/config.h"

namespace mqtt::testing_config {

// ParseCommandLine("mqttd" + args) with only `env` as the environment.
inline absl::StatusOr<Config> Parse(std::vector<const char*> args,
                                    std::vector<const char*> env = {}) {
  args.insert(args.begin(), "mqttd");
  env.push_back(nullptr);
  return ParseCommandLine(static_cast<int>(args.size()), args.data(), env.data());
}

// Writes `text` to a file named `name` in the test's temp dir; returns its path.
inline std::string WriteFile(const std::string& name, const std::string& text) {
  std::string path = absl::StrCat(::testing::TempDir(), "/", name);
  std::ofstream(path) << text;
  return path;
}

}  // namespace mqtt::testing_config
