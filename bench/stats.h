// SPDX-License-Identifier: Apache-2.0
// Measurement helpers for mqtt-bench: clocks, a log-linear latency histogram, a sequence-number
// set (loss / duplicate detection), CPU and RSS probes, and a one-line JSON writer.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

int64_t MonoNs();  // CLOCK_MONOTONIC in nanoseconds

// Log-linear histogram of nanosecond values: 64 sub-buckets per power of two (< 1.6 % error).
class Histogram {
 public:
  Histogram();
  void Record(int64_t ns) {
    if (ns < 0) ns = 0;
    ++counts_[Index(uint64_t(ns))];
    ++total_;
    if (ns > max_) max_ = ns;
  }
  uint64_t count() const { return total_; }
  int64_t max() const { return max_; }
  // Value at quantile q in [0, 1] (upper edge of the bucket, capped by the max seen).
  int64_t Quantile(double q) const;

 private:
  static constexpr int kSubBits = 6;
  static size_t Index(uint64_t v);
  static uint64_t UpperEdge(size_t index);
  std::vector<uint64_t> counts_;
  uint64_t total_ = 0;
  int64_t max_ = 0;
};

// Set of sequence numbers received from one publisher (1-based), as a growing bitmap.
class SeqSet {
 public:
  // Returns false if seq was already present (a duplicate).
  bool Insert(uint32_t seq) {
    const size_t word = seq >> 6;
    if (word >= bits_.size()) bits_.resize(std::max(word + 1, bits_.size() * 2), 0);
    const uint64_t mask = uint64_t(1) << (seq & 63);
    if (bits_[word] & mask) return false;
    bits_[word] |= mask;
    ++count_;
    return true;
  }
  uint64_t count() const { return count_; }

 private:
  std::vector<uint64_t> bits_;
  uint64_t count_ = 0;
};

// CPU time (user + system) of this process, in nanoseconds.
int64_t SelfCpuNs();
// CPU time (utime + stime, all threads) of another process from /proc/<pid>/stat; -1 if unknown.
int64_t ProcCpuNs(pid_t pid);
// VmRSS of a process in KiB from /proc/<pid>/status; -1 if unknown.
long ProcRssKb(pid_t pid);
// Any "Key: N kB" line of /proc/<pid>/status (VmRSS, VmHWM, ...); -1 if unknown.
long ProcStatusKb(pid_t pid, const char* key);
// Descriptors another process may still open: its RLIMIT_NOFILE soft limit (from
// /proc/<pid>/limits) minus the descriptors it holds now; -1 if unknown.
long ProcFdRoom(pid_t pid);
// Total CPU stall time ("some") from /proc/pressure/cpu in microseconds; -1 if unavailable.
int64_t CpuPressureUs();
// Raises RLIMIT_NOFILE to the hard limit; returns the new soft limit.
long RaiseFdLimit();

// Builds one JSON object on one line.
class Json {
 public:
  Json& Key(std::string_view k);
  Json& Str(std::string_view k, std::string_view v);
  Json& Num(std::string_view k, double v, int decimals = 1);
  Json& Int(std::string_view k, int64_t v);
  Json& Bool(std::string_view k, bool v);
  Json& Null(std::string_view k);
  Json& Begin(std::string_view k);  // nested object
  Json& End();
  std::string Finish();

 private:
  void Sep();
  std::string s_ = "{";
  bool first_ = true;
};

}  // namespace bench
