// SPDX-License-Identifier: Apache-2.0
// Password files in Mosquitto's format, as written by `mosquitto_passwd` (and `mqttctl passwd`):
// one `user:hash` per line; blank lines and lines starting with '#' are skipped. Hash forms:
//   $6$<salt>$<hash>         hash = SHA-512(password || salt)                 (Mosquitto <= 1.6)
//   $7$<iter>$<salt>$<hash>  hash = PBKDF2-HMAC-SHA512(password, salt, iter)  (Mosquitto >= 2.0)
// where salt and hash are standard base64 (with padding) of the raw bytes. A user may appear
// once; a malformed line is an error naming the file and line (the file is refused as a whole).
//
// Threading: a PasswordFile is immutable once built; Check() may be called from any thread.
#pragma once

#include <string>
#include <string_view>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

namespace mqtt::auth {

// Iterations written by HashPassword (Mosquitto's default is 101; more is slower to guess).
inline constexpr int kDefaultPbkdf2Iterations = 101;

class PasswordFile {
 public:
  // Parses `text`; `name` is used in error messages ("name:line: ...").
  static absl::StatusOr<PasswordFile> Parse(std::string_view text, std::string_view name);
  static absl::StatusOr<PasswordFile> Load(const std::string& path);

  // True when `user` is listed and `password` matches its hash (constant-time comparison; an
  // unknown user is checked against a dummy hash, so it takes as long as a default $7$ one).
  bool Check(std::string_view user, std::string_view password) const;
  bool Contains(std::string_view user) const;
  size_t size() const { return hashes_.size(); }

 private:
  absl::flat_hash_map<std::string, std::string> hashes_;  // user -> "$6$..." or "$7$..."
};

// True when `password` matches `encoded` ("$6$..." or "$7$..."); false for any other form.
bool VerifyPassword(std::string_view encoded, std::string_view password);
// A new "$7$" hash of `password` with a random 12-byte salt.
absl::StatusOr<std::string> HashPassword(std::string_view password,
                                         int iterations = kDefaultPbkdf2Iterations);
// Checks the syntax of one hash (as Parse does for each line).
absl::Status ValidateHash(std::string_view encoded);

// Edits of a password file's text, keeping every other line as it was (mqttctl passwd).
// A user name must be non-empty UTF-8 without ':' or line breaks.
absl::Status ValidateUserName(std::string_view user);
// `text` with `user`'s line set to user:hash (replaced in place, or appended).
absl::StatusOr<std::string> WithUser(std::string_view text, std::string_view user,
                                     std::string_view hash);
// `text` without `user`'s line; NotFound if the user is not listed.
absl::StatusOr<std::string> WithoutUser(std::string_view text, std::string_view user);

}  // namespace mqtt::auth
