// SPDX-License-Identifier: Apache-2.0
#include "node/auth/passwd_command.h"

#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "node/auth/password_file.h"
#include "node/base/files.h"

namespace mqtt::auth {
namespace {

constexpr char kUsage[] =
    "usage: mqttctl passwd [-c] FILE USER\n"
    "       mqttctl passwd [-c] -b FILE USER PASSWORD\n"
    "       mqttctl passwd -D FILE USER\n";

struct PasswdArgs {
  bool create = false;
  bool batch = false;
  bool remove = false;
  std::vector<std::string> positional;  // FILE USER [PASSWORD]
};

std::optional<PasswdArgs> ParseArgs(int argc, char** argv) {
  PasswdArgs args;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-c") {
      args.create = true;
    } else if (arg == "-b") {
      args.batch = true;
    } else if (arg == "-D") {
      args.remove = true;
    } else if (!arg.empty() && arg[0] == '-') {
      return std::nullopt;
    } else {
      args.positional.emplace_back(arg);
    }
  }
  const size_t wanted = args.batch ? 3 : 2;
  if (args.positional.size() != wanted || (args.remove && (args.batch || args.create))) {
    return std::nullopt;
  }
  return args;
}

// One line from the terminal without echo, or from stdin when it is not a terminal.
std::optional<std::string> ReadLine(const char* prompt) {
  const bool tty = isatty(STDIN_FILENO);
  termios saved{};
  if (tty) {
    std::cerr << prompt << std::flush;
    tcgetattr(STDIN_FILENO, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~ECHO;
    tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
  }
  std::string line;
  const bool got = static_cast<bool>(std::getline(std::cin, line));
  if (tty) {
    tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    std::cerr << "\n";
  }
  if (!got) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

absl::StatusOr<std::string> ReadPassword() {
  std::optional<std::string> password = ReadLine("Password: ");
  if (!password) return absl::InvalidArgumentError("no password given");
  if (isatty(STDIN_FILENO)) {
    std::optional<std::string> again = ReadLine("Reenter password: ");
    if (!again || *again != *password) return absl::InvalidArgumentError("passwords do not match");
  }
  return *password;
}

// Writes `path.tmp` and renames it over `path`, keeping the mode of an existing file.
absl::Status WriteFileAtomically(const std::string& path, const std::string& text) {
  struct stat st {};
  const mode_t mode = stat(path.c_str(), &st) == 0 ? (st.st_mode & 07777) : 0600;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!(out << text) || !out.flush()) {
      return absl::UnavailableError(absl::StrCat(tmp, ": cannot be written"));
    }
  }
  if (chmod(tmp.c_str(), mode) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return absl::UnavailableError(absl::StrCat(path, ": cannot be replaced"));
  }
  return absl::OkStatus();
}

absl::Status Run(const PasswdArgs& args) {
  const std::string& path = args.positional[0];
  const std::string& user = args.positional[1];
  std::string text;
  if (!args.create) {
    absl::StatusOr<std::string> existing = ReadFileToString(path);
    if (!existing.ok()) return existing.status();
    // Refuse to edit a file we could not read back.
    if (absl::Status s = PasswordFile::Parse(*existing, path).status(); !s.ok()) return s;
    text = std::move(*existing);
  }
  absl::StatusOr<std::string> edited;
  if (args.remove) {
    edited = WithoutUser(text, user);
  } else {
    if (absl::Status s = ValidateUserName(user); !s.ok()) return s;
    absl::StatusOr<std::string> password =
        args.batch ? absl::StatusOr<std::string>(args.positional[2]) : ReadPassword();
    if (!password.ok()) return password.status();
    absl::StatusOr<std::string> hash = HashPassword(*password);
    if (!hash.ok()) return hash.status();
    edited = WithUser(text, user, *hash);
  }
  if (!edited.ok()) return edited.status();
  return WriteFileAtomically(path, *edited);
}

}  // namespace

int PasswdMain(int argc, char** argv) {
  std::optional<PasswdArgs> args = ParseArgs(argc, argv);
  if (!args) {
    std::cerr << kUsage;
    return 2;
  }
  if (absl::Status s = Run(*args); !s.ok()) {
    std::cerr << "mqttctl passwd: " << s.message() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace mqtt::auth
