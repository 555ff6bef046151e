// SPDX-License-Identifier: Apache-2.0
// libFuzzer target for the YAML config file (node/config/config.h, ParseConfigText). The input
// is a config file's text. Properties, each a trap when broken:
// - no exception leaves ParseConfigText (yaml-cpp throws; config/yaml.cc must turn every throw
//   into a Status);
// - an accepted file round-trips: ConfigToYaml of the result parses again to the same Config
//   (both parses over the defaults mqttd starts from; the secret, which ConfigToYaml masks, is
//   carried over by hand), as config.h promises; ConfigToYaml does not throw either.
// tests/fuzz/config.dict holds every key path's names (from the option table), so that the
// fuzzer reaches each key; the seeds in corpus/config set every key.
#include <cstddef>
#include <cstdint>
#include <string>

#include "node/config/config.h"

namespace mqtt {
namespace {

void Check(bool ok) {
  if (!ok) __builtin_trap();
}

// The defaults as mqttd resolves them before reading its file (node id from the host name,
// worker count, the default listener): ConfigToYaml of a Config{} would not parse again.
const Config& Defaults() {
  static const Config* defaults = [] {
    const char* argv[] = {"mqttd", nullptr};
    absl::StatusOr<Config> config = ParseCommandLine(1, argv, nullptr);
    if (!config.ok()) __builtin_trap();
    return new Config(*config);
  }();
  return *defaults;
}

void RunOne(std::string_view text) {
  Config config = Defaults();
  absl::Status status;
  try {
    status = ParseConfigText(absl::string_view(text.data(), text.size()), "fuzz.yaml", &config);
  } catch (...) {
    Check(false);  // an exception escaped the parser
  }
  if (!status.ok()) {
    Check(!status.message().empty());
    return;
  }
  std::string yaml;
  try {
    yaml = ConfigToYaml(config);
  } catch (...) {
    Check(false);
  }
  Config again = Defaults();
  absl::Status reparsed;
  try {
    reparsed = ParseConfigText(yaml, "again.yaml", &again);
  } catch (...) {
    Check(false);
  }
  if (!reparsed.ok()) {
    fprintf(stderr, "accepted, but its ConfigToYaml is refused: %s\n--- yaml:\n%s\n",
            std::string(reparsed.message()).c_str(), yaml.c_str());
    Check(false);
  }
  again.auth_hmac_secret = config.auth_hmac_secret;  // masked as ******** in the YAML
  if (!(again == config)) {
    fprintf(stderr, "round trip changed the config; yaml:\n%s\n", yaml.c_str());
    Check(false);
  }
}

}  // namespace
}  // namespace mqtt

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mqtt::RunOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
