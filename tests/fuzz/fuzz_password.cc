// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for password files (node/auth/password_file.h). The input is a file's text.
// Properties, each a trap when broken:
// - PasswordFile::Parse returns a Status for anything (no crash, no exception);
// - of an accepted file, every listed user is Contains()ed, and Check() with a wrong password
//   is false (only for cheap hashes: Check runs PBKDF2 with the file's iteration count);
// - the edits of `mqttctl passwd` keep a valid file valid: WithUser(text, u, h) parses and
//   lists u; WithoutUser of it parses and no longer lists u.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "node/auth/password_file.h"

namespace mqtt::auth {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

// A valid $6$ hash (of "secret"), fixed so that runs are reproducible.
constexpr std::string_view kHash =
    "$6$c2FsdHNhbHRzYWx0$"
    "3aiBbchfIZo+1WYrkPzJjQxZ79F/NmwLQ+wF073kTd+6ANhaic8G/jWF/X4sqSFUKpLNdm1FZjBck6HQ8knM3A==";

// True when a "$7$" hash in `text` asks for more than 1000 PBKDF2 iterations (too slow to check
// on every input).
bool HasCostlyHash(std::string_view text) {
  for (size_t at = text.find("$7$"); at != std::string_view::npos; at = text.find("$7$", at + 1)) {
    size_t digits = 0;
    while (at + 3 + digits < text.size() && text[at + 3 + digits] >= '0' &&
           text[at + 3 + digits] <= '9') {
      ++digits;
    }
    if (digits > 3) return true;
  }
  return false;
}

// The user names of `text` as Parse reads them (non-comment lines, up to the last ':').
std::vector<std::string> Users(std::string_view text) {
  std::vector<std::string> users;
  for (size_t start = 0; start < text.size();) {
    size_t end = std::min(text.find('\n', start), text.size());
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    size_t colon = line.rfind(':');
    if (colon != std::string_view::npos && colon > 0) users.emplace_back(line.substr(0, colon));
  }
  return users;
}

void RunOne(std::string_view text) {
  absl::StatusOr<PasswordFile> file = PasswordFile::Parse(text, "fuzz.passwd");
  if (!file.ok()) return;
  const std::vector<std::string> users = Users(text);
  Check(file->size() == users.size());
  const bool cheap = !HasCostlyHash(text);
  for (const std::string& user : users) {
    Check(file->Contains(user));
    // A wrong password: the fuzzer cannot invert SHA-512, so a match would be a bug.
    if (cheap && users.size() <= 4) Check(!file->Check(user, "not the password \x01"));
  }
  // Edits: add (or replace) a user, then remove it again.
  const std::string user = users.empty() ? "fuzz" : users.front();
  if (!ValidateUserName(user).ok()) return;
  absl::StatusOr<std::string> added = WithUser(text, user, kHash);
  Check(added.ok());
  absl::StatusOr<PasswordFile> with = PasswordFile::Parse(*added, "added");
  Check(with.ok() && with->Contains(user) && with->size() == file->size() + (users.empty()));
  Check(with->Check(user, "secret"));
  absl::StatusOr<std::string> removed = WithoutUser(*added, user);
  Check(removed.ok());
  absl::StatusOr<PasswordFile> without = PasswordFile::Parse(*removed, "removed");
  Check(without.ok() && !without->Contains(user) && without->size() + 1 == with->size());
}

}  // namespace
}  // namespace mqtt::auth

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mqtt::auth::RunOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
