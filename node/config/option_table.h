// SPDX-License-Identifier: Apache-2.0
// The option table behind config.h, shared by its readers and writers (command line,
// environment, YAML file, --help, --print-config, the reference in docs/configuration.md).
// Internal to node/config/: nothing outside this folder includes it.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "node/config/config.h"

namespace mqtt::config_internal {

enum class Kind {
  kScalar,     // one value
  kList,       // YAML: a list of scalars; flag and environment: items separated by commas
  kListeners,  // YAML: a list of {protocol, address} maps; otherwise as kList (addresses)
  kBridges,    // YAML only: a list of bridge maps (BridgeConfig)
};

// How one option's value is read and shown, in flag syntax ("20", "true", "host:port").
struct Binding {
  Kind kind = Kind::kScalar;
  std::string type;  // for the reference: "integer, 1..65535"
  // Scalar: parses and stores the value. List: parses one item and appends it.
  std::function<absl::Status(absl::string_view value, Config* config)> set;
  std::function<void(Config* config)> clear;  // lists: called before a source sets the list
  // The current value; one string per item for lists.
  std::function<std::vector<std::string>(const Config& config)> get;
  size_t min_items = 0;  // lists
};

enum Trait : int { kPlain = 0, kSecret = 1, kHidden = 2 };

struct Option {
  const char* flag;        // command line: --flag
  const char* path;        // YAML key path, "limits.max_inflight"; nullptr: command line only
  const char* value_name;  // nullptr: a switch without a value
  const char* help;        // one line, without the default
  Binding value;
  const char* default_text = nullptr;  // when Config{} does not hold the default (filled later)
  int traits = kPlain;
};

// [HOST]:PORT of a listener (empty host: 0.0.0.0; [v6] brackets removed), and back.
absl::Status ParseListen(absl::string_view value, ListenAddress* out);
std::string FormatListen(const ListenAddress& address);
// The value syntax of Bool and Uint options, for keys outside the table (listener keys).
absl::Status ParseBoolText(absl::string_view value, bool* out);
absl::Status ParseUintText(absl::string_view value, uint32_t min, uint32_t max, uint32_t* out);

// Every option, in the order of the YAML layout (a section's keys are contiguous).
const std::vector<Option>& Options();
const Option* FindByFlag(absl::string_view flag);
const Option* FindByPath(absl::string_view path);
const Option* FindByEnvName(absl::string_view name);
// True when `path` is a section holding keys ("limits"), not a key itself.
bool IsSection(absl::string_view path);

// "MQTTD_" + the key path upper-cased, '.' replaced by '_'.
std::string EnvName(const Option& option);
inline constexpr absl::string_view kEnvPrefix = "MQTTD_";

// Flag syntax: a scalar, or the items of a list separated by commas, which replace the list
// (or are added to it with `append`).
absl::Status SetFromText(const Option& option, absl::string_view text, bool append, Config* config);
// The default as the reference and --help show it.
std::string DefaultText(const Option& option);

}  // namespace mqtt::config_internal
