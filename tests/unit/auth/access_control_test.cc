// SPDX-License-Identifier: Apache-2.0
// AccessControl: CONNECT verdicts for each --allow-anonymous setting, and Reload() swapping the
// policy only when both files read cleanly.
#include "node/auth/access_control.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace mqtt::auth {
namespace {

class AccessControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("access_control_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    Write("passwd", "alice:" + HashPassword("pw").value() + "\n");
    Write("acl", "user alice\ntopic read a/#\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
  }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static ConnectVerdict Verdict(const AccessControl& control, std::optional<std::string> user,
                                std::optional<std::string> password) {
    return control.policy()->Authenticate(user, password);
  }
  static bool CanRead(const AccessControl& control, const std::string& user,
                      const std::string& topic) {
    return control.policy()->Allowed({&user, "c", std::nullopt}, topic, Access::kRead);
  }

  std::filesystem::path dir_;
};

TEST_F(AccessControlTest, AnonymousDefaultsToFalseWithAPasswordFile) {
  auto control = AccessControl::Create({Path("passwd"), "", "auto"});
  ASSERT_TRUE(control.ok()) << control.status();
  EXPECT_EQ(Verdict(**control, "alice", "pw"), ConnectVerdict::kAccepted);
  EXPECT_EQ(Verdict(**control, "alice", "PW"), ConnectVerdict::kBadUserNameOrPassword);
  EXPECT_EQ(Verdict(**control, "alice", std::nullopt), ConnectVerdict::kBadUserNameOrPassword);
  EXPECT_EQ(Verdict(**control, "bob", "pw"), ConnectVerdict::kBadUserNameOrPassword);
  EXPECT_EQ(Verdict(**control, std::nullopt, std::nullopt), ConnectVerdict::kNotAuthorized);
  auto open = AccessControl::Create({Path("passwd"), "", "true"});
  EXPECT_EQ(Verdict(**open, std::nullopt, std::nullopt), ConnectVerdict::kAccepted);
  EXPECT_EQ(Verdict(**open, "alice", "PW"), ConnectVerdict::kBadUserNameOrPassword);
}

TEST_F(AccessControlTest, WithoutPasswordFileUserNamesAreTakenAsGivenOnlyIfAnonymousIsAllowed) {
  auto open = AccessControl::Create({"", Path("acl"), "auto"});
  ASSERT_TRUE(open.ok());
  EXPECT_EQ(Verdict(**open, "anyone", std::nullopt), ConnectVerdict::kAccepted);
  EXPECT_EQ(Verdict(**open, std::nullopt, std::nullopt), ConnectVerdict::kAccepted);
  auto closed = AccessControl::Create({"", "", "false"});
  EXPECT_EQ(Verdict(**closed, "anyone", "x"), ConnectVerdict::kNotAuthorized);
  EXPECT_FALSE(AccessControl::Create({"", "", "maybe"}).ok());
}

TEST_F(AccessControlTest, ReloadSwapsOnlyCleanFiles) {
  auto control = AccessControl::Create({Path("passwd"), Path("acl"), "auto"});
  ASSERT_TRUE(control.ok());
  const uint64_t first = (*control)->generation();
  EXPECT_TRUE(CanRead(**control, "alice", "a/x"));
  EXPECT_FALSE(CanRead(**control, "alice", "b/x"));

  Write("acl", "user alice\ntopic read b/#\n");
  ASSERT_TRUE((*control)->Reload().ok());
  EXPECT_NE((*control)->generation(), first);
  EXPECT_FALSE(CanRead(**control, "alice", "a/x"));
  EXPECT_TRUE(CanRead(**control, "alice", "b/x"));

  // A bad ACL or a bad password file: the error names the file and line; nothing changes.
  const uint64_t second = (*control)->generation();
  Write("acl", "user alice\ntopic read c/#\nbogus\n");
  absl::Status bad = (*control)->Reload();
  EXPECT_EQ(bad.message(), Path("acl") + ":3: unknown keyword 'bogus'");
  Write("acl", "user alice\ntopic read c/#\n");
  Write("passwd", "alice:plain\n");
  EXPECT_FALSE((*control)->Reload().ok());
  EXPECT_EQ((*control)->generation(), second);
  EXPECT_TRUE(CanRead(**control, "alice", "b/x"));
  EXPECT_EQ(Verdict(**control, "alice", "pw"), ConnectVerdict::kAccepted);
  std::filesystem::remove(dir_ / "passwd");
  EXPECT_TRUE(absl::IsNotFound((*control)->Reload()));
}

TEST_F(AccessControlTest, StartupErrorsNameTheFile) {
  Write("acl", "topic read a/#/b\n");
  auto control = AccessControl::Create({"", Path("acl"), "auto"});
  ASSERT_FALSE(control.ok());
  EXPECT_EQ(control.status().message(), Path("acl") + ":1: bad topic filter 'a/#/b'");
}

}  // namespace
}  // namespace mqtt::auth
