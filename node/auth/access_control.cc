// SPDX-License-Identifier: Apache-2.0
#include "node/auth/access_control.h"

#include <sys/stat.h>

#include "absl/strings/str_cat.h"

namespace mqtt::auth {

ConnectVerdict Policy::Authenticate(const std::optional<std::string>& username,
                                    const std::optional<std::string>& password) const {
  if (!username)
    return allow_anonymous_ ? ConnectVerdict::kAccepted : ConnectVerdict::kNotAuthorized;
  if (!passwords_) {
    return allow_anonymous_ ? ConnectVerdict::kAccepted : ConnectVerdict::kNotAuthorized;
  }
  if (password && passwords_->Check(*username, *password)) return ConnectVerdict::kAccepted;
  return ConnectVerdict::kBadUserNameOrPassword;
}

absl::StatusOr<std::shared_ptr<AccessControl>> AccessControl::Create(AccessOptions options) {
  if (options.allow_anonymous != "true" && options.allow_anonymous != "false" &&
      options.allow_anonymous != "auto") {
    return absl::InvalidArgumentError("allow-anonymous must be true, false or auto");
  }
  std::shared_ptr<AccessControl> control(new AccessControl(std::move(options)));
  // Stamped before reading: a change while reading is seen by the next check.
  std::string stamps = control->FileStamps();
  absl::StatusOr<std::shared_ptr<const Policy>> policy = control->Read();
  if (!policy.ok()) return policy.status();
  absl::MutexLock lock(&control->mutex_);
  control->policy_ = std::move(*policy);
  control->loaded_stamps_ = std::move(stamps);
  return control;
}

// Modification time (ns), size and inode of each file, as one comparable string; a missing
// file counts as "-".
std::string AccessControl::FileStamps() const {
  std::string stamps;
  for (const std::string* file : {&options_.password_file, &options_.acl_file}) {
    struct stat st;
    if (file->empty() || stat(file->c_str(), &st) != 0) {
      stamps += "-;";
      continue;
    }
    absl::StrAppend(&stamps, st.st_mtim.tv_sec, ".", st.st_mtim.tv_nsec, ",", st.st_size, ",",
                    st.st_ino, ";");
  }
  return stamps;
}

absl::Status AccessControl::ReloadIfChanged(bool* reloaded) {
  *reloaded = false;
  std::string stamps = FileStamps();
  {
    absl::MutexLock lock(&mutex_);
    if (stamps == loaded_stamps_) return absl::OkStatus();
    loaded_stamps_ = stamps;  // a bad new file is reported once, not at every check
  }
  *reloaded = true;
  return Reload();
}

absl::StatusOr<std::shared_ptr<const Policy>> AccessControl::Read() const {
  std::optional<PasswordFile> passwords;
  if (!options_.password_file.empty()) {
    absl::StatusOr<PasswordFile> file = PasswordFile::Load(options_.password_file);
    if (!file.ok()) return file.status();
    passwords = std::move(*file);
  }
  std::optional<AclFile> acl;
  if (!options_.acl_file.empty()) {
    absl::StatusOr<AclFile> file = AclFile::Load(options_.acl_file);
    if (!file.ok()) return file.status();
    acl = std::move(*file);
  }
  const bool anonymous = options_.allow_anonymous == "auto" ? options_.password_file.empty()
                                                            : options_.allow_anonymous == "true";
  return std::make_shared<const Policy>(std::move(passwords), std::move(acl), anonymous);
}

absl::Status AccessControl::Reload() {
  std::string stamps = FileStamps();
  absl::StatusOr<std::shared_ptr<const Policy>> policy = Read();
  if (!policy.ok()) return policy.status();
  {
    absl::MutexLock lock(&mutex_);
    policy_ = std::move(*policy);
    loaded_stamps_ = std::move(stamps);
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return absl::OkStatus();
}

std::shared_ptr<const Policy> AccessControl::policy() const {
  absl::MutexLock lock(&mutex_);
  return policy_;
}

}  // namespace mqtt::auth
