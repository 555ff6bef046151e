// SPDX-License-Identifier: Apache-2.0
// Process-wide logging: one line per event on stderr, written with one write(2) so lines from
// different threads never interleave. Two formats: text (`<ts> <level> <msg> key=value ...`) and
// JSON (one object per line: ts, level, msg, then the event's fields). Thread-safety: every
// function may be called from any thread; the level and format are set once at start-up.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/str_format.h"

namespace mqtt {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };
enum class LogFormat { kText = 0, kJson = 1 };

void SetLogLevel(LogLevel level);
void SetLogFormat(LogFormat format);
bool LogEnabled(LogLevel level);
bool ParseLogLevel(std::string_view name, LogLevel* level);
bool ParseLogFormat(std::string_view name, LogFormat* format);

// One structured field of an event: a key (a JSON name: letters, digits, '_') and a text or
// integer value. Views only: the values must outlive the LogLine call.
struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), text(v) {}
  LogField(std::string_view k, const char* v) : key(k), text(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), text(v) {}
  LogField(std::string_view k, absl::string_view v) : key(k), text(v.data(), v.size()) {}
  template <typename Int, typename = std::enable_if_t<std::is_integral_v<Int>>>
  LogField(std::string_view k, Int v) : key(k), number(static_cast<int64_t>(v)), is_number(true) {}

  std::string_view key;
  std::string_view text;
  int64_t number = 0;
  bool is_number = false;
};

// Writes one event. `msg` is free text; `fields` follow it as key=value (text, values with a
// space or quote quoted) or as JSON members.
void LogLine(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});

// The line LogLine writes for an event at `unix_ms` (without the newline); for tests.
std::string FormatLogLine(LogFormat format, int64_t unix_ms, LogLevel level, std::string_view msg,
                          std::initializer_list<LogField> fields);

template <typename... Args>
void Log(LogLevel level, const absl::FormatSpec<Args...>& format, const Args&... args) {
  if (LogEnabled(level)) LogLine(level, absl::StrFormat(format, args...));
}

#define MQTT_LOG_DEBUG(...) ::mqtt::Log(::mqtt::LogLevel::kDebug, __VA_ARGS__)
#define MQTT_LOG_INFO(...) ::mqtt::Log(::mqtt::LogLevel::kInfo, __VA_ARGS__)
#define MQTT_LOG_WARN(...) ::mqtt::Log(::mqtt::LogLevel::kWarn, __VA_ARGS__)
#define MQTT_LOG_ERROR(...) ::mqtt::Log(::mqtt::LogLevel::kError, __VA_ARGS__)

// An event with structured fields: MQTT_LOG_EVENT(kInfo, "client connected", {"client_id", id},
// {"peer", peer()}). The field list (and any expression in it) is evaluated only when the
// level is enabled: nothing is built or allocated for a filtered event.
#define MQTT_LOG_EVENT(level, msg, ...)                             \
  do {                                                              \
    if (::mqtt::LogEnabled(::mqtt::LogLevel::level)) {              \
      ::mqtt::LogLine(::mqtt::LogLevel::level, msg, {__VA_ARGS__}); \
    }                                                               \
  } while (0)

}  // namespace mqtt
