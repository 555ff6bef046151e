// SPDX-License-Identifier: Apache-2.0
// Process-wide logging: one line per event on stderr, written with one write(2) so lines from
// different threads never interleave. Thread-safety: every function may be called from any
// thread; the level is set once at start-up.
#pragma once

#include <string_view>

#include "absl/strings/str_format.h"

namespace mqtt {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLogLevel(LogLevel level);
bool LogEnabled(LogLevel level);
void LogLine(LogLevel level, std::string_view line);
bool ParseLogLevel(std::string_view name, LogLevel* level);

template <typename... Args>
void Log(LogLevel level, const absl::FormatSpec<Args...>& format, const Args&... args) {
  if (LogEnabled(level)) LogLine(level, absl::StrFormat(format, args...));
}

#define MQTT_LOG_DEBUG(...) ::mqtt::Log(::mqtt::LogLevel::kDebug, __VA_ARGS__)
#define MQTT_LOG_INFO(...) ::mqtt::Log(::mqtt::LogLevel::kInfo, __VA_ARGS__)
#define MQTT_LOG_WARN(...) ::mqtt::Log(::mqtt::LogLevel::kWarn, __VA_ARGS__)
#define MQTT_LOG_ERROR(...) ::mqtt::Log(::mqtt::LogLevel::kError, __VA_ARGS__)

}  // namespace mqtt
