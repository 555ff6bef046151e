// SPDX-License-Identifier: Apache-2.0
// AccessControl: the node's password file and ACL file (Mosquitto formats, docs/security.md),
// reloadable without a restart. A Policy is one immutable reading of both files; Reload() swaps
// in a new one, or keeps the old one and returns the error when a file is unreadable or bad.
// Clients hold a Policy and compare generation() before each operation, so a reload applies to
// a connected client's next operation without a lock on the hot path.
//
// Threading: every method may be called from any thread. Reload() and ReloadIfChanged() run on
// the main thread (SIGHUP, file watch); policy() takes a mutex, generation() is one atomic load.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "node/auth/acl.h"
#include "node/auth/password_file.h"

namespace mqtt::auth {

struct AccessOptions {
  std::string password_file;  // empty: none
  std::string acl_file;       // empty: none (every topic allowed)
  // "true", "false", or "auto": true without a password file, false with one.
  std::string allow_anonymous = "auto";
};

enum class ConnectVerdict : uint8_t {
  kAccepted,
  kBadUserNameOrPassword,  // 3.1.1 CONNACK 0x04, 5.0 0x86
  kNotAuthorized,          // 3.1.1 CONNACK 0x05, 5.0 0x87: anonymous when not allowed
};

class Policy {
 public:
  Policy(std::optional<PasswordFile> passwords, std::optional<AclFile> acl, bool allow_anonymous)
      : passwords_(std::move(passwords)), acl_(std::move(acl)), allow_anonymous_(allow_anonymous) {}

  // A CONNECT's user name and password. No user name: anonymous. A user name with a password
  // file: must be listed with this password. A user name without a password file: taken as
  // given (as Mosquitto does) when anonymous clients are allowed, refused otherwise.
  ConnectVerdict Authenticate(const std::optional<std::string>& username,
                              const std::optional<std::string>& password) const;
  // True without an ACL file.
  bool Allowed(const Identity& who, std::string_view topic, Access access) const {
    return !acl_ || acl_->Allowed(who, topic, access);
  }
  bool has_acl() const { return acl_.has_value(); }

 private:
  std::optional<PasswordFile> passwords_;
  std::optional<AclFile> acl_;
  bool allow_anonymous_;
};

class AccessControl {
 public:
  // Reads the files once; an error names the file and line.
  static absl::StatusOr<std::shared_ptr<AccessControl>> Create(AccessOptions options);

  // Reads the files again. On error the current policy stays and the error is returned.
  absl::Status Reload();
  // Reload() when a file's modification time, size or inode changed since the last reading (a
  // Kubernetes Secret update replaces the file behind a symbolic link); `reloaded` says whether
  // the files were read. A bad new file is reported once, not at every check.
  absl::Status ReloadIfChanged(bool* reloaded) ABSL_LOCKS_EXCLUDED(mutex_);

  std::shared_ptr<const Policy> policy() const ABSL_LOCKS_EXCLUDED(mutex_);
  // Changes with every successful Reload().
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

 private:
  explicit AccessControl(AccessOptions options) : options_(std::move(options)) {}
  absl::StatusOr<std::shared_ptr<const Policy>> Read() const;
  std::string FileStamps() const;

  const AccessOptions options_;
  mutable absl::Mutex mutex_;
  std::shared_ptr<const Policy> policy_ ABSL_GUARDED_BY(mutex_);
  std::string loaded_stamps_ ABSL_GUARDED_BY(mutex_);  // FileStamps() at the last reading
  std::atomic<uint64_t> generation_{1};
};

}  // namespace mqtt::auth
