// SPDX-License-Identifier: Apache-2.0
#include "node/base/log.h"

#include <unistd.h>

#include <atomic>
#include <ctime>
#include <string>

namespace mqtt {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void LogLine(LogLevel level, std::string_view line) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  tm utc;
  gmtime_r(&now.tv_sec, &utc);
  std::string out = absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %s %s\n",
                                    utc.tm_year + 1900, utc.tm_mon + 1, utc.tm_mday, utc.tm_hour,
                                    utc.tm_min, utc.tm_sec, static_cast<int>(now.tv_nsec / 1000000),
                                    kNames[static_cast<int>(level)], line);
  ssize_t ignored = write(STDERR_FILENO, out.data(), out.size());
  (void)ignored;
}

bool ParseLogLevel(std::string_view name, LogLevel* level) {
  for (int i = 0; i < 4; ++i) {
    if (name == kNames[i]) {
      *level = static_cast<LogLevel>(i);
      return true;
    }
  }
  return false;
}

}  // namespace mqtt
