// SPDX-License-Identifier: Apache-2.0
// The texts made from the option table: --help and the key reference of
// docs/configuration.md (--print-config-reference).
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "node/config/config.h"
#include "node/config/option_table.h"

namespace mqtt {
namespace {

using config_internal::Option;

constexpr char kHelpHeader[] =
    "Usage: mqttd [OPTIONS]\n"
    "An MQTT 3.1/3.1.1/5.0 broker node.\n"
    "\n"
    "An option with a [key] is also that key of the YAML file read with --config and the\n"
    "environment variable MQTTD_<KEY>, the key upper-cased with '.' as '_' (limits.max_inflight:\n"
    "MQTTD_LIMITS_MAX_INFLIGHT). Flags override the environment, which overrides the file.\n"
    "Lists: repeat the flag or separate the items with commas. Every key, with an example file:\n"
    "docs/configuration.md.\n"
    "\n";

std::string HelpLine(const Option& option) {
  std::string flag = absl::StrCat("--", option.flag);
  if (option.value_name != nullptr) absl::StrAppend(&flag, " ", option.value_name);
  std::string line = absl::StrCat(
      "  ", flag, std::string(flag.size() < 28 ? 28 - flag.size() : 1, ' '), option.help);
  if (option.path != nullptr) {
    absl::StrAppend(&line, " (default: ", config_internal::DefaultText(option), ") [", option.path,
                    "]");
  }
  return absl::StrCat(line, "\n");
}

std::string Cell(absl::string_view text) { return absl::StrReplaceAll(text, {{"|", "\\|"}}); }

std::string DefaultCell(const Option& option) {
  std::string text = config_internal::DefaultText(option);
  if (option.default_text != nullptr || text == "none") return Cell(text);
  return absl::StrCat("`", Cell(text), "`");
}

std::string KeyRow(const Option& option) {
  return absl::StrCat("| `", option.path, "` | ", Cell(option.value.type), " | ",
                      DefaultCell(option), " | `--", option.flag, "` | `",
                      config_internal::EnvName(option), "` | ", Cell(option.help), " |\n");
}

}  // namespace

std::string HelpText() {
  std::string text = kHelpHeader;
  for (const Option& option : config_internal::Options()) {
    if (!(option.traits & config_internal::kHidden)) absl::StrAppend(&text, HelpLine(option));
  }
  return text;
}

std::string ConfigReference() {
  std::string keys =
      "| key | type | default | flag | environment variable | meaning |\n"
      "|---|---|---|---|---|---|\n";
  std::string flags =
      "| flag | meaning |\n"
      "|---|---|\n";
  for (const Option& option : config_internal::Options()) {
    if (option.traits & config_internal::kHidden) continue;
    if (option.path != nullptr) {
      absl::StrAppend(&keys, KeyRow(option));
      continue;
    }
    std::string flag = absl::StrCat("--", option.flag);
    if (option.value_name != nullptr) absl::StrAppend(&flag, " ", option.value_name);
    absl::StrAppend(&flags, "| `", flag, "` | ", Cell(option.help), " |\n");
  }
  return absl::StrCat(keys, "\nCommand line only:\n\n", flags);
}

}  // namespace mqtt
