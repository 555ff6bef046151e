// SPDX-License-Identifier: Apache-2.0
// Helpers of the config tests: ParseCommandLine with an explicit environment, temp files.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
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

// Writes `text` to a file named `name` in a directory of this test process; returns its path.
// ctest runs each test case as its own process, several at once, and cases reuse names
// ("printed.yaml"): a directory shared between processes let one case read another's file.
inline std::string WriteFile(const std::string& name, const std::string& text) {
  struct ProcessDir {  // removed with what it holds when the process exits
    std::string path = absl::StrCat(::testing::TempDir(), "/mqtt-config-test-", getpid());
    ProcessDir() { std::filesystem::create_directories(path); }
    ~ProcessDir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const ProcessDir dir;
  std::string path = absl::StrCat(dir.path, "/", name);
  std::ofstream(path) << text;
  return path;
}

}  // namespace mqtt::testing_config
