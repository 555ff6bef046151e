// SPDX-License-Identifier: Apache-2.0
// Password files: hashes written by the real mosquitto_passwd (run by the test), our own $7$
// writer, and the file edits of `mqttctl passwd`.
#include "node/auth/password_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace mqtt::auth {
namespace {

constexpr char kMosquittoPasswd[] = "/usr/bin/mosquitto_passwd";

class MosquittoPasswdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kMosquittoPasswd, X_OK) != 0) GTEST_FAIL() << "apt package mosquitto is needed";
    path_ = std::filesystem::temp_directory_path() /
            ("auth_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove(path_);
  }
  void TearDown() override { std::filesystem::remove(path_); }

  // Runs mosquitto_passwd in batch mode with `flags` (e.g. "-H sha512").
  void Add(const std::string& flags, const std::string& user, const std::string& password) {
    std::string command = std::string(kMosquittoPasswd) + " " + flags +
                          (std::filesystem::exists(path_) ? "" : " -c") + " -b '" + path_.string() +
                          "' '" + user + "' '" + password + "'";
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  std::string Text() const {
    std::ifstream in(path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::filesystem::path path_;
};

TEST_F(MosquittoPasswdTest, DefaultPbkdf2FileIsAccepted) {
  Add("", "alice", "secret");
  Add("", "bob", "hunter2 with spaces");
  ASSERT_NE(Text().find("alice:$7$"), std::string::npos) << Text();
  absl::StatusOr<PasswordFile> file = PasswordFile::Load(path_.string());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->size(), 2u);
  EXPECT_TRUE(file->Check("alice", "secret"));
  EXPECT_TRUE(file->Check("bob", "hunter2 with spaces"));
  EXPECT_FALSE(file->Check("alice", "Secret"));
  EXPECT_FALSE(file->Check("alice", ""));
  EXPECT_FALSE(file->Check("bob", "secret"));
  EXPECT_FALSE(file->Check("carol", "secret"));
}

TEST_F(MosquittoPasswdTest, Sha512FileIsAccepted) {
  Add("-H sha512", "alice", "secret");
  ASSERT_NE(Text().find("alice:$6$"), std::string::npos) << Text();
  absl::StatusOr<PasswordFile> file = PasswordFile::Load(path_.string());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_TRUE(file->Check("alice", "secret"));
  EXPECT_FALSE(file->Check("alice", "secreT"));
}

TEST_F(MosquittoPasswdTest, MixedFormsAndOurEditsStayReadableByMosquittoPasswd) {
  Add("-H sha512", "old", "one");
  Add("-H sha512-pbkdf2", "new", "two");
  absl::StatusOr<std::string> hash = HashPassword("three");
  ASSERT_TRUE(hash.ok());
  absl::StatusOr<std::string> edited = WithUser(Text(), "ours", *hash);
  ASSERT_TRUE(edited.ok());
  std::ofstream(path_) << *edited;
  // mosquitto_passwd rewrites the file it reads: it must parse our line to keep it.
  Add("", "later", "four");
  absl::StatusOr<PasswordFile> file = PasswordFile::Load(path_.string());
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->size(), 4u);
  EXPECT_TRUE(file->Check("old", "one"));
  EXPECT_TRUE(file->Check("new", "two"));
  EXPECT_TRUE(file->Check("ours", "three"));
  EXPECT_TRUE(file->Check("later", "four"));
}

TEST(HashPasswordTest, WritesPbkdf2FormThatVerifies) {
  absl::StatusOr<std::string> hash = HashPassword("pw", 1000);
  ASSERT_TRUE(hash.ok());
  EXPECT_EQ(hash->rfind("$7$1000$", 0), 0u) << *hash;
  EXPECT_TRUE(VerifyPassword(*hash, "pw"));
  EXPECT_FALSE(VerifyPassword(*hash, "pW"));
  absl::StatusOr<std::string> again = HashPassword("pw", 1000);
  EXPECT_NE(*hash, *again);  // a new salt each time
}

TEST(HashPasswordTest, KnownVectorsFromMosquitto) {
  // Written by mosquitto_passwd 2.0 (user alice, password "secret"; bob, "hunter2").
  EXPECT_TRUE(VerifyPassword(
      "$7$101$rjQQ1NP8i73xB/O0$7GqLaA0yowUxEzNIARmn9/249e4qB14bCIsby+fqqwA5ueFOWW7TQ0M+"
      "M3xPOv9utfOO2MTctnnYfDamgo7iEA==",
      "secret"));
  EXPECT_TRUE(VerifyPassword(
      "$6$kdR2ykLTNpyowswN$sp1cfl2dIEjcPYs5j7fwZeRjtg46TsnBjMevh5Nyh6T6U4VAKnh+Zczaww1K9HDsayyz"
      "EciyCHXsG0wIOYd0sw==",
      "hunter2"));
}

TEST(PasswordFileParseTest, ErrorsNameFileAndLine) {
  auto error = [](const std::string& text) {
    return std::string(PasswordFile::Parse(text, "pw.txt").status().message());
  };
  EXPECT_EQ(error("# comment\n\nnocolon\n").rfind("pw.txt:3: ", 0), 0u);
  EXPECT_EQ(error("alice:plaintext\n").rfind("pw.txt:1: ", 0), 0u);
  EXPECT_EQ(error("alice:$7$x$AAAA$AAAA\n").rfind("pw.txt:1: bad iteration count", 0), 0u);
  EXPECT_EQ(error("alice:$6$AAAA$AAAA\n").rfind("pw.txt:1: bad hash", 0), 0u);
  EXPECT_EQ(error("alice:$6$!!!!$AAAA\n").rfind("pw.txt:1: bad salt", 0), 0u);
  EXPECT_EQ(error(":$6$AAAA$AAAA\n").rfind("pw.txt:1: expected user:hash", 0), 0u);
  absl::StatusOr<std::string> hash = HashPassword("x");
  ASSERT_TRUE(hash.ok());
  EXPECT_NE(error("a:" + *hash + "\na:" + *hash + "\n").find("pw.txt:2: user 'a' listed twice"),
            std::string::npos);
  EXPECT_TRUE(PasswordFile::Parse("", "empty").ok());
  EXPECT_TRUE(PasswordFile::Parse("a:" + *hash + "\r\n", "crlf")->Check("a", "x"));
}

TEST(PasswordFileEditTest, ReplacesAppendsAndDeletesKeepingOtherLines) {
  absl::StatusOr<std::string> one = HashPassword("1");
  absl::StatusOr<std::string> two = HashPassword("2");
  const std::string text = "# users\nalice:" + *one + "\nbob:" + *one + "\n";
  absl::StatusOr<std::string> changed = WithUser(text, "alice", *two);
  ASSERT_TRUE(changed.ok());
  EXPECT_EQ(*changed, "# users\nalice:" + *two + "\nbob:" + *one + "\n");
  absl::StatusOr<std::string> added = WithUser(text, "carol", *two);
  EXPECT_EQ(*added, text + "carol:" + *two + "\n");
  absl::StatusOr<std::string> removed = WithoutUser(text, "alice");
  EXPECT_EQ(*removed, "# users\nbob:" + *one + "\n");
  EXPECT_TRUE(absl::IsNotFound(WithoutUser(text, "dave").status()));
  EXPECT_FALSE(WithUser(text, "a:b", *two).ok());
  EXPECT_FALSE(WithUser(text, "", *two).ok());
  EXPECT_FALSE(WithUser(text, "x", "plain").ok());
}

}  // namespace
}  // namespace mqtt::auth
