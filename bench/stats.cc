// SPDX-License-Identifier: Apache-2.0
#include "stats.h"

#include <dirent.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace bench {

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Histogram::Histogram() : counts_((64 - kSubBits + 1) << kSubBits, 0) {}

size_t Histogram::Index(uint64_t v) {
  constexpr uint64_t kSub = uint64_t(1) << kSubBits;
  if (v < kSub) return size_t(v);
  const int msb = 63 - __builtin_clzll(v);
  const int shift = msb - kSubBits;
  const uint64_t sub = (v >> shift) - kSub;
  return size_t(kSub + uint64_t(shift) * kSub + sub);
}

uint64_t Histogram::UpperEdge(size_t index) {
  constexpr uint64_t kSub = uint64_t(1) << kSubBits;
  if (index < kSub) return index;
  const uint64_t shift = (index - kSub) >> kSubBits;
  const uint64_t sub = (index - kSub) & (kSub - 1);
  return ((kSub + sub) << shift) + (uint64_t(1) << shift) - 1;
}

int64_t Histogram::Quantile(double q) const {
  if (total_ == 0) return 0;
  uint64_t rank = uint64_t(std::ceil(q * double(total_)));
  if (rank < 1) rank = 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const int64_t edge = int64_t(UpperEdge(i));
      return edge < max_ ? edge : max_;
    }
  }
  return max_;
}

int64_t SelfCpuNs() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& tv) {
    return int64_t(tv.tv_sec) * 1'000'000'000 + tv.tv_usec * 1000;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

int64_t ProcCpuNs(pid_t pid) {
  if (pid <= 0) return -1;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/stat", int(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char buf[1024];
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  buf[n] = 0;
  // Fields after the command name (which may hold spaces): state is field 3; utime and stime
  // are fields 14 and 15.
  const char* p = std::strrchr(buf, ')');
  if (!p) return -1;
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
      2) {
    return -1;
  }
  const long hz = sysconf(_SC_CLK_TCK);
  return int64_t(utime + stime) * (1'000'000'000 / hz);
}

long ProcStatusKb(pid_t pid, const char* key) {
  if (pid <= 0) return -1;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/status", int(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  const size_t klen = std::strlen(key);
  char line[256];
  long kb = -1;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, key, klen) == 0 && line[klen] == ':') {
      kb = std::strtol(line + klen + 1, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  return kb;
}

long ProcRssKb(pid_t pid) { return ProcStatusKb(pid, "VmRSS"); }

long ProcFdRoom(pid_t pid) {
  if (pid <= 0) return -1;
  char path[64];
  std::snprintf(path, sizeof path, "/proc/%d/limits", int(pid));
  FILE* f = std::fopen(path, "r");
  if (!f) return -1;
  char line[256];
  long soft = -1;
  while (std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "Max open files", 14) == 0) {
      const char* p = line + 14;
      while (*p == ' ') ++p;
      soft = std::strncmp(p, "unlimited", 9) == 0 ? 1L << 30 : std::strtol(p, nullptr, 10);
      break;
    }
  }
  std::fclose(f);
  if (soft < 0) return -1;
  std::snprintf(path, sizeof path, "/proc/%d/fd", int(pid));
  DIR* d = opendir(path);
  if (!d) return -1;
  long open = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++open;
  }
  closedir(d);
  return soft - open;
}

int64_t CpuPressureUs() {
  FILE* f = std::fopen("/proc/pressure/cpu", "r");
  if (!f) return -1;
  char line[256];
  long long total = -1;
  if (std::fgets(line, sizeof line, f)) {
    if (const char* t = std::strstr(line, "total=")) total = std::strtoll(t + 6, nullptr, 10);
  }
  std::fclose(f);
  return total;
}

long RaiseFdLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return long(rl.rlim_cur);
}

void Json::Sep() {
  if (!first_) s_ += ',';
  first_ = false;
}

Json& Json::Key(std::string_view k) {
  Sep();
  s_ += '"';
  s_ += k;
  s_ += "\":";
  return *this;
}

Json& Json::Str(std::string_view k, std::string_view v) {
  Key(k);
  s_ += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') s_ += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    s_ += c;
  }
  s_ += '"';
  return *this;
}

Json& Json::Num(std::string_view k, double v, int decimals) {
  Key(k);
  if (!std::isfinite(v)) {
    s_ += "null";
    return *this;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  s_ += buf;
  return *this;
}

Json& Json::Int(std::string_view k, int64_t v) {
  Key(k);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%" PRId64, v);
  s_ += buf;
  return *this;
}

Json& Json::Bool(std::string_view k, bool v) {
  Key(k);
  s_ += v ? "true" : "false";
  return *this;
}

Json& Json::Null(std::string_view k) {
  Key(k);
  s_ += "null";
  return *this;
}

Json& Json::Begin(std::string_view k) {
  Key(k);
  s_ += '{';
  first_ = true;
  return *this;
}

Json& Json::End() {
  s_ += '}';
  first_ = false;
  return *this;
}

std::string Json::Finish() { return s_ + "}"; }

}  // namespace bench
