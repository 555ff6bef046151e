// SPDX-License-Identifier: Apache-2.0
#include "node/auth/access_control.h"

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
  absl::StatusOr<std::shared_ptr<const Policy>> policy = control->Read();
  if (!policy.ok()) return policy.status();
  absl::MutexLock lock(&control->mutex_);
  control->policy_ = std::move(*policy);
  return control;
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
  absl::StatusOr<std::shared_ptr<const Policy>> policy = Read();
  if (!policy.ok()) return policy.status();
  {
    absl::MutexLock lock(&mutex_);
    policy_ = std::move(*policy);
  }
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return absl::OkStatus();
}

std::shared_ptr<const Policy> AccessControl::policy() const {
  absl::MutexLock lock(&mutex_);
  return policy_;
}

}  // namespace mqtt::auth
