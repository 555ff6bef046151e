// SPDX-License-Identifier: Apache-2.0
#include "node/base/log.h"

#include <unistd.h>

#include <atomic>
#include <ctime>
#include <string>

#include "absl/strings/str_cat.h"

namespace mqtt {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};
constexpr const char* kNames[] = {"debug", "info", "warn", "error"};

// JSON string contents (RFC 8259 section 7): quote, backslash and control characters escaped;
// other bytes copied (the broker's strings are UTF-8 it has checked, or its own text).
void AppendJsonEscaped(std::string_view text, std::string* out) {
  for (char c : text) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", static_cast<int>(c));
        } else {
          out->push_back(c);
        }
    }
  }
}

void AppendJsonString(std::string_view text, std::string* out) {
  out->push_back('"');
  AppendJsonEscaped(text, out);
  out->push_back('"');
}

std::string Timestamp(int64_t unix_ms) {
  const time_t seconds = static_cast<time_t>(unix_ms / 1000);
  tm utc;
  gmtime_r(&seconds, &utc);
  return absl::StrFormat("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900, utc.tm_mon + 1,
                         utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                         static_cast<int>(unix_ms % 1000));
}

std::string JsonLine(const std::string& ts, LogLevel level, std::string_view msg,
                     std::initializer_list<LogField> fields) {
  std::string out = absl::StrCat(R"({"ts":")", ts, R"(","level":")",
                                 kNames[static_cast<int>(level)], R"(","msg":)");
  AppendJsonString(msg, &out);
  for (const LogField& field : fields) {
    out.push_back(',');
    AppendJsonString(field.key, &out);
    out.push_back(':');
    if (field.is_number) {
      absl::StrAppend(&out, field.number);
    } else {
      AppendJsonString(field.text, &out);
    }
  }
  out.push_back('}');
  return out;
}

// key=value; a value that is empty or holds a space, '"' or '=' is quoted as JSON strings are.
std::string TextLine(const std::string& ts, LogLevel level, std::string_view msg,
                     std::initializer_list<LogField> fields) {
  std::string out = absl::StrCat(ts, " ", kNames[static_cast<int>(level)], " ");
  out.append(msg);
  for (const LogField& field : fields) {
    out.push_back(' ');
    out.append(field.key);
    out.push_back('=');
    if (field.is_number) {
      absl::StrAppend(&out, field.number);
    } else if (field.text.empty() || field.text.find_first_of(" \"=\n") != std::string_view::npos) {
      AppendJsonString(field.text, &out);
    } else {
      out.append(field.text);
    }
  }
  return out;
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
void SetLogFormat(LogFormat format) { g_format.store(static_cast<int>(format)); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

std::string FormatLogLine(LogFormat format, int64_t unix_ms, LogLevel level, std::string_view msg,
                          std::initializer_list<LogField> fields) {
  const std::string ts = Timestamp(unix_ms);
  return format == LogFormat::kJson ? JsonLine(ts, level, msg, fields)
                                    : TextLine(ts, level, msg, fields);
}

void LogLine(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields) {
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  const int64_t unix_ms = int64_t{now.tv_sec} * 1000 + now.tv_nsec / 1000000;
  const auto format = static_cast<LogFormat>(g_format.load(std::memory_order_relaxed));
  std::string out = FormatLogLine(format, unix_ms, level, msg, fields);
  out.push_back('\n');
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

bool ParseLogFormat(std::string_view name, LogFormat* format) {
  if (name == "text" || name == "json") {
    *format = name == "json" ? LogFormat::kJson : LogFormat::kText;
    return true;
  }
  return false;
}

}  // namespace mqtt
