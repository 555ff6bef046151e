// SPDX-License-Identifier: Apache-2.0
// ParseCommandLine: defaults, then the config file, then the MQTTD_* environment, then the flags.
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "node/base/files.h"
#include "node/config/config.h"
#include "node/config/option_table.h"

namespace mqtt {
namespace {

using config_internal::Option;

struct Flag {
  const Option* option;
  std::string value;
};

struct CommandLine {
  std::vector<Flag> flags;                 // in order, without --config
  std::optional<std::string> config_file;  // --config
  bool strict_env = false;                 // --strict-env, needed before the flags apply
};

absl::Status FlagError(absl::string_view flag, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, ": ", message));
}

// Reads one `--name VALUE`, `--name=VALUE` or `--switch` starting at argv[*i].
absl::StatusOr<Flag> ReadFlag(int argc, const char* const* argv, int* i) {
  absl::string_view arg = argv[*i];
  if (!absl::ConsumePrefix(&arg, "--")) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", argv[*i], "'"));
  }
  std::optional<std::string> value;
  if (size_t eq = arg.find('='); eq != absl::string_view::npos) {
    value = std::string(arg.substr(eq + 1));
    arg = arg.substr(0, eq);
  }
  const Option* option = config_internal::FindByFlag(arg);
  if (option == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("unknown option '--", arg, "'"));
  }
  if (option->value_name == nullptr && value.has_value()) return FlagError(arg, "takes no value");
  if (option->value_name != nullptr && !value.has_value()) {
    if (*i + 1 >= argc) return FlagError(arg, "needs a value");
    value = argv[++*i];
  }
  return Flag{option, value.value_or("")};
}

absl::StatusOr<CommandLine> SplitCommandLine(int argc, const char* const* argv) {
  CommandLine result;
  for (int i = 1; i < argc; ++i) {
    absl::StatusOr<Flag> flag = ReadFlag(argc, argv, &i);
    if (!flag.ok()) return flag.status();
    absl::string_view name = flag->option->flag;
    if (name == "config") {
      result.config_file = flag->value;
      continue;
    }
    if (name == "strict-env") result.strict_env = true;
    result.flags.push_back(*std::move(flag));
  }
  return result;
}

absl::Status ReadConfigFile(const std::string& path, Config* config) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return FlagError("config", absl::StrCat("cannot read '", path, "'"));
  return ParseConfigText(*text, path, config);
}

// Applies every MQTTD_* variable of `envp`. One that is no key is an error when `strict`, and
// otherwise listed in config->ignored_env.
absl::Status ApplyEnvironment(const char* const* envp, bool strict, Config* config) {
  for (; envp != nullptr && *envp != nullptr; ++envp) {
    absl::string_view entry = *envp;
    if (!absl::StartsWith(entry, config_internal::kEnvPrefix)) continue;
    size_t eq = entry.find('=');
    absl::string_view name = entry.substr(0, eq);
    absl::string_view value = eq == absl::string_view::npos ? "" : entry.substr(eq + 1);
    const Option* option = config_internal::FindByEnvName(name);
    if (option == nullptr && strict) {
      return absl::InvalidArgumentError(absl::StrCat(
          "environment variable ", name,
          ": not a configuration key (docs/configuration.md; unset it or drop --strict-env)"));
    }
    if (option == nullptr) {
      config->ignored_env.push_back(std::string(name));
      continue;
    }
    if (absl::Status s = config_internal::SetFromText(*option, value, /*append=*/false, config);
        !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

// A list flag given on the command line replaces the list from the file and the environment;
// repeated, its values add up.
absl::Status ApplyFlags(const std::vector<Flag>& flags, Config* config) {
  std::set<const Option*> seen;
  for (const Flag& flag : flags) {
    bool append = !seen.insert(flag.option).second;
    if (absl::Status s = config_internal::SetFromText(*flag.option, flag.value, append, config);
        !s.ok()) {
      return FlagError(flag.option->flag, s.message());
    }
  }
  return absl::OkStatus();
}

// The defaults that depend on the host, filled after every source.
void ApplyDefaults(Config* config) {
  if (config->listeners.empty() && config->secure_listeners.empty()) {
    config->listeners.push_back({"0.0.0.0", 1883});
  }
  if (config->node_id.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    config->node_id = host[0] ? host : "mqttd";
  }
  if (config->workers == 0)
    config->workers = std::clamp(std::thread::hardware_concurrency(), 1u, 256u);
}

}  // namespace

absl::StatusOr<Config> ParseCommandLine(int argc, const char* const* argv) {
  return ParseCommandLine(argc, argv, environ);
}

absl::StatusOr<Config> ParseCommandLine(int argc, const char* const* argv,
                                        const char* const* envp) {
  absl::StatusOr<CommandLine> command_line = SplitCommandLine(argc, argv);
  if (!command_line.ok()) return command_line.status();
  Config config;
  if (command_line->config_file.has_value()) {
    if (absl::Status s = ReadConfigFile(*command_line->config_file, &config); !s.ok()) return s;
  }
  if (absl::Status s = ApplyEnvironment(envp, command_line->strict_env, &config); !s.ok()) {
    return s;
  }
  if (absl::Status s = ApplyFlags(command_line->flags, &config); !s.ok()) return s;
  ApplyDefaults(&config);
  return config;
}

}  // namespace mqtt
