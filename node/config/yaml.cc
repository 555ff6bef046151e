// SPDX-License-Identifier: Apache-2.0
// The YAML config file: ParseConfigText reads it, ConfigToYaml writes it. yaml-cpp reports
// errors by throwing; every exception is caught in this file and becomes a Status.
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <exception>
#include <initializer_list>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "node/base/host_port.h"
#include "node/bridge/topic_line.h"
#include "node/config/config.h"
#include "node/config/option_table.h"

namespace mqtt {
namespace {

using config_internal::Kind;
using config_internal::Option;

constexpr absl::string_view kMask = "********";

std::string TypeName(const YAML::Node& node) {
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  if (node.IsScalar()) return absl::StrCat("'", node.Scalar(), "'");
  return "nothing";
}

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF). yaml-cpp passes other bytes through, and its emitter replaces them with U+FFFD in
// quoted scalars, so a value that is not UTF-8 would not survive ConfigToYaml.
bool IsUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const size_t n = b < 0x80           ? 1
                     : (b >> 5) == 0x6  ? 2
                     : (b >> 4) == 0xE  ? 3
                     : (b >> 3) == 0x1E ? 4
                                        : 0;
    if (n == 0 || i + n > s.size()) return false;
    uint32_t cp = n == 1 ? b : b & (0x7F >> n);
    for (size_t k = 1; k < n; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      if ((c & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

// Walks one file's document along the option table; every error names the file, the line and
// the key path.
class Reader {
 public:
  explicit Reader(absl::string_view file) : file_(file) {}

  absl::Status Error(const YAML::Mark& mark, absl::string_view path,
                     absl::string_view message) const {
    std::string where(file_);
    if (!mark.is_null()) absl::StrAppend(&where, ":", mark.line + 1);
    if (!path.empty()) absl::StrAppend(&where, ": ", path);
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", message));
  }

  absl::Status ApplyMap(const YAML::Node& map, absl::string_view prefix, Config* config) const {
    std::set<std::string> seen;
    for (const auto& entry : map) {  // a temporary: copy the nodes out, do not refer into it
      const YAML::Node key = entry.first;
      if (!key.IsScalar()) return Error(key.Mark(), prefix, "a key must be a plain name");
      std::string path = prefix.empty() ? key.Scalar() : absl::StrCat(prefix, ".", key.Scalar());
      if (!seen.insert(key.Scalar()).second) return Error(key.Mark(), path, "duplicate key");
      if (absl::Status s = ApplyKey(key, entry.second, path, config); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  absl::Status ApplyKey(const YAML::Node& key, const YAML::Node& value, const std::string& path,
                        Config* config) const {
    if (const Option* option = config_internal::FindByPath(path)) {
      // A null value's mark is where the next token starts: name the key's line instead.
      if (value.IsNull()) return Error(key.Mark(), path, "needs a value");
      return ApplyValue(*option, value, path, config);
    }
    if (config_internal::IsSection(path)) {
      if (value.IsNull()) return absl::OkStatus();  // a section with every key commented out
      if (!value.IsMap()) {
        return Error(value.Mark(), path,
                     absl::StrCat("must be a map of keys, not ", TypeName(value)));
      }
      return ApplyMap(value, path, config);
    }
    const Option* flag = config_internal::FindByFlag(key.Scalar());
    if (flag != nullptr && flag->path != nullptr) {
      return Error(key.Mark(), path,
                   absl::StrCat("unknown key (the flag --", flag->flag, " is '", flag->path,
                                "' in the file)"));
    }
    return Error(key.Mark(), path, "unknown key");
  }

  absl::Status ApplyValue(const Option& option, const YAML::Node& value, const std::string& path,
                          Config* config) const {
    if (option.value.kind == Kind::kScalar) return ApplyScalar(option, value, path, config);
    if (!value.IsSequence()) {
      return Error(value.Mark(), path,
                   absl::StrCat("must be a list (use [] for none), not ", TypeName(value)));
    }
    option.value.clear(config);
    // The file's `listeners` are every protocol's (the --listen flag replaces the mqtt ones).
    if (option.value.kind == Kind::kListeners) config->secure_listeners.clear();
    for (size_t i = 0; i < value.size(); ++i) {
      std::string item_path = absl::StrCat(path, "[", i, "]");
      absl::Status s =
          option.value.kind == Kind::kListeners ? ApplyListener(option, value[i], item_path, config)
          : option.value.kind == Kind::kBridges ? ApplyBridge(value[i], item_path, config)
                                                : ApplyScalar(option, value[i], item_path, config);
      if (!s.ok()) return s;
    }
    if (value.size() < option.value.min_items) {
      return Error(value.Mark(), path, "needs at least one address");
    }
    return absl::OkStatus();
  }

  // One scalar: a scalar option's value or one item of a list.
  absl::Status ApplyScalar(const Option& option, const YAML::Node& value, const std::string& path,
                           Config* config) const {
    if (value.IsNull()) return Error(value.Mark(), path, "needs a value");
    if (!value.IsScalar()) {
      return Error(value.Mark(), path,
                   absl::StrCat("must be a single value, not ", TypeName(value)));
    }
    if (!IsUtf8(value.Scalar())) return Error(value.Mark(), path, "is not valid UTF-8");
    absl::Status s = option.value.set(value.Scalar(), config);
    return s.ok() ? s : Error(value.Mark(), path, s.message());
  }

  // {protocol: mqtt|mqtts|ws|wss, address: HOST:PORT, ...}; protocol may be left out (mqtt).
  // TLS and WebSocket listeners take per-listener keys (kSecureKeys) over the tls.* and
  // websocket.* settings.
  absl::Status ApplyListener(const Option& option, const YAML::Node& item, const std::string& path,
                             Config* config) const {
    if (!item.IsMap()) {
      return Error(
          item.Mark(), path,
          absl::StrCat("must be a map {protocol: mqtt, address: HOST:PORT}, not ", TypeName(item)));
    }
    std::string protocol = "mqtt";
    if (item["protocol"]) {
      absl::Status s = CheckProtocol(item["protocol"], absl::StrCat(path, ".protocol"));
      if (!s.ok()) return s;
      protocol = item["protocol"].Scalar();
    }
    std::set<std::string> seen;
    for (const auto& entry : item) {
      const YAML::Node key = entry.first;
      std::string name = key.IsScalar() ? key.Scalar() : "";
      std::string key_path = absl::StrCat(path, ".", name);
      if (!seen.insert(name).second) return Error(key.Mark(), key_path, "duplicate key");
      if (!KeyAllowed(protocol, name)) {
        return Error(key.Mark(), key_path,
                     absl::StrCat("unknown key for a ", protocol, " listener (it has ",
                                  AllowedKeys(protocol), ")"));
      }
      if (!entry.second.IsScalar()) {
        return Error(entry.second.Mark(), key_path,
                     absl::StrCat("must be a single value, not ", TypeName(entry.second)));
      }
      if (!IsUtf8(entry.second.Scalar())) {
        return Error(entry.second.Mark(), key_path, "is not valid UTF-8");
      }
    }
    if (!item["address"]) return Error(item.Mark(), path, "address missing");
    if (protocol == "mqtt") {
      absl::Status s = ApplyScalar(option, item["address"], absl::StrCat(path, ".address"), config);
      if (!s.ok() || !item["max_connections"]) return s;
      const YAML::Node v = item["max_connections"];
      s = config_internal::ParseUintText(v.Scalar(), 0, 10'000'000,
                                         &config->listeners.back().max_connections);
      if (!s.ok()) return Error(v.Mark(), absl::StrCat(path, ".max_connections"), s.message());
      return absl::OkStatus();
    }
    return ApplySecureListener(protocol, item, path, config);
  }

  static bool KeyAllowed(absl::string_view protocol, absl::string_view key) {
    if (key == "protocol" || key == "address") return true;
    const bool tls = protocol == "mqtts" || protocol == "wss";
    const bool ws = protocol == "ws" || protocol == "wss";
    if (key == "max_connections") return true;
    if (tls && (key == "cert_file" || key == "key_file" || key == "ca_file" ||
                key == "require_client_cert")) {
      return true;
    }
    return ws && key == "path";
  }

  static std::string AllowedKeys(absl::string_view protocol) {
    std::vector<std::string> keys;
    for (const char* key : {"protocol", "address", "cert_file", "key_file", "ca_file",
                            "require_client_cert", "path", "max_connections"}) {
      if (KeyAllowed(protocol, key)) keys.push_back(key);
    }
    return absl::StrJoin(keys, ", ");
  }

  absl::Status ApplySecureListener(const std::string& protocol, const YAML::Node& item,
                                   const std::string& path, Config* config) const {
    SecureListener listener;
    listener.protocol = protocol;
    const YAML::Node address = item["address"];
    if (absl::Status s = config_internal::ParseListen(address.Scalar(), &listener.address);
        !s.ok()) {
      return Error(address.Mark(), absl::StrCat(path, ".address"), s.message());
    }
    auto text = [&](const char* key, std::string* out) {
      if (item[key]) *out = item[key].Scalar();
    };
    text("cert_file", &listener.cert_file);
    text("key_file", &listener.key_file);
    text("ca_file", &listener.ca_file);
    text("path", &listener.path);
    if (const YAML::Node v = item["require_client_cert"]) {
      bool value = false;
      if (!config_internal::ParseBoolText(v.Scalar(), &value).ok()) {
        return Error(v.Mark(), absl::StrCat(path, ".require_client_cert"),
                     absl::StrCat("must be true or false, not '", v.Scalar(), "'"));
      }
      listener.require_client_cert = value ? "true" : "false";
    }
    if (const YAML::Node v = item["max_connections"]) {
      absl::Status s =
          config_internal::ParseUintText(v.Scalar(), 0, 10'000'000, &listener.max_connections);
      if (!s.ok()) return Error(v.Mark(), absl::StrCat(path, ".max_connections"), s.message());
    }
    config->secure_listeners.push_back(std::move(listener));
    return absl::OkStatus();
  }

  // One bridge map (config.h BridgeConfig); each topic line is parsed here so that a bad one
  // stops start-up naming its file, line and key.
  absl::Status ApplyBridge(const YAML::Node& item, const std::string& path, Config* config) const {
    if (!item.IsMap()) {
      return Error(item.Mark(), path, absl::StrCat("must be a bridge map, not ", TypeName(item)));
    }
    BridgeConfig bridge;
    std::set<std::string> seen;
    for (const auto& entry : item) {
      const YAML::Node key = entry.first;
      const std::string name = key.IsScalar() ? key.Scalar() : "";
      const std::string key_path = absl::StrCat(path, ".", name);
      if (!seen.insert(name).second) return Error(key.Mark(), key_path, "duplicate key");
      if (absl::Status s = ApplyBridgeKey(name, entry.second, key_path, &bridge); !s.ok()) {
        return s;
      }
    }
    for (const char* required : {"name", "addresses", "topics"}) {
      if (!seen.count(required))
        return Error(item.Mark(), path, absl::StrCat(required, " missing"));
    }
    for (const BridgeConfig& other : config->bridges) {
      if (other.name == bridge.name) {
        return Error(item["name"].Mark(), absl::StrCat(path, ".name"),
                     absl::StrCat("a second bridge named '", bridge.name, "'"));
      }
    }
    if (bridge.restart_min > bridge.restart_max) {
      return Error(item["restart_timeout"].Mark(), absl::StrCat(path, ".restart_timeout"),
                   "min must not exceed max");
    }
    config->bridges.push_back(std::move(bridge));
    return absl::OkStatus();
  }

  absl::Status ApplyBridgeKey(const std::string& key, const YAML::Node& value,
                              const std::string& path, BridgeConfig* bridge) const {
    if (key == "addresses" || key == "topics") return ApplyBridgeList(key, value, path, bridge);
    if (key == "tls") return ApplyBridgeTls(value, path, bridge);
    if (key == "restart_timeout") {
      return ApplyBridgeMap(
          value, path, {"min", "max"}, [&](const std::string& k, const std::string& v) {
            return config_internal::ParseUintText(
                v, 1, 86400, k == "min" ? &bridge->restart_min : &bridge->restart_max);
          });
    }
    std::string text;
    if (absl::Status s = BridgeScalar(value, path, &text); !s.ok()) return s;
    absl::Status s = SetBridgeScalar(key, text, bridge);
    if (s.code() == absl::StatusCode::kNotFound) {
      return Error(value.Mark(), path,
                   "unknown key for a bridge (it has name, addresses, protocol_version, client_id, "
                   "username, password, tls, clean_session, session_expiry, keepalive, "
                   "restart_timeout, try_private, topics)");
    }
    return s.ok() ? s : Error(value.Mark(), path, s.message());
  }

  static absl::Status SetBridgeScalar(const std::string& key, const std::string& v,
                                      BridgeConfig* b) {
    if (key == "name") {
      if (v.empty() || v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789_-") != std::string::npos) {
        return absl::InvalidArgumentError("must be letters, digits, '_' or '-'");
      }
      b->name = v;
    } else if (key == "protocol_version") {
      if (v != "mqttv311" && v != "mqttv50") {
        return absl::InvalidArgumentError(
            absl::StrCat("must be mqttv311 or mqttv50, not '", v, "'"));
      }
      b->protocol_version = v;
    } else if (key == "client_id") {
      b->client_id = v;
    } else if (key == "username") {
      b->username = v;
    } else if (key == "password") {
      b->password = v;
    } else if (key == "clean_session") {
      return config_internal::ParseBoolText(v, &b->clean_session);
    } else if (key == "try_private") {
      return config_internal::ParseBoolText(v, &b->try_private);
    } else if (key == "session_expiry") {
      return config_internal::ParseUintText(v, 0, 0xFFFFFFFF, &b->session_expiry);
    } else if (key == "keepalive") {
      return config_internal::ParseUintText(v, 0, 65535, &b->keepalive);
    } else {
      return absl::NotFoundError(key);
    }
    return absl::OkStatus();
  }

  absl::Status BridgeScalar(const YAML::Node& value, const std::string& path,
                            std::string* out) const {
    if (!value.IsScalar()) {
      return Error(value.Mark(), path,
                   absl::StrCat("must be a single value, not ", TypeName(value)));
    }
    if (!IsUtf8(value.Scalar())) return Error(value.Mark(), path, "is not valid UTF-8");
    *out = value.Scalar();
    return absl::OkStatus();
  }

  // `addresses` (HOST:PORT each) or `topics` (Mosquitto topic lines), at least one item.
  absl::Status ApplyBridgeList(const std::string& key, const YAML::Node& value,
                               const std::string& path, BridgeConfig* bridge) const {
    if (!value.IsSequence()) {
      return Error(value.Mark(), path, absl::StrCat("must be a list, not ", TypeName(value)));
    }
    if (value.size() == 0) return Error(value.Mark(), path, "needs at least one item");
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string item_path = absl::StrCat(path, "[", i, "]");
      std::string text;
      if (absl::Status s = BridgeScalar(value[i], item_path, &text); !s.ok()) return s;
      absl::Status s =
          key == "topics" ? bridge::ParseTopicLine(text).status() : CheckHostPort(text);
      if (!s.ok()) return Error(value[i].Mark(), item_path, s.message());
      (key == "topics" ? bridge->topics : bridge->addresses).push_back(text);
    }
    return absl::OkStatus();
  }

  // The parser bridge::Bridge dials with: what passes here, it can split.
  static absl::Status CheckHostPort(const std::string& text) {
    if (!ParseHostPort(text).ok()) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not HOST:PORT"));
    }
    return absl::OkStatus();
  }

  absl::Status ApplyBridgeTls(const YAML::Node& value, const std::string& path,
                              BridgeConfig* bridge) const {
    bridge->tls = true;
    BridgeTls& t = bridge->tls_options;
    return ApplyBridgeMap(value, path,
                          {"ca_file", "cert_file", "key_file", "verify", "server_name"},
                          [&](const std::string& k, const std::string& v) {
                            if (k == "verify") return config_internal::ParseBoolText(v, &t.verify);
                            (k == "ca_file"     ? t.ca_file
                             : k == "cert_file" ? t.cert_file
                             : k == "key_file"  ? t.key_file
                                                : t.server_name) = v;
                            return absl::OkStatus();
                          });
  }

  // A map of scalars with the keys `allowed`, each handed to `set` (key, value).
  template <typename Set>
  absl::Status ApplyBridgeMap(const YAML::Node& value, const std::string& path,
                              std::initializer_list<const char*> allowed, Set set) const {
    if (!value.IsMap()) {
      return Error(value.Mark(), path, absl::StrCat("must be a map, not ", TypeName(value)));
    }
    for (const auto& entry : value) {
      const std::string k = entry.first.IsScalar() ? entry.first.Scalar() : "";
      const std::string key_path = absl::StrCat(path, ".", k);
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
        return Error(entry.first.Mark(), key_path, "unknown key");
      }
      std::string text;
      if (absl::Status s = BridgeScalar(entry.second, key_path, &text); !s.ok()) return s;
      if (absl::Status s = set(k, text); !s.ok()) {
        return Error(entry.second.Mark(), key_path, s.message());
      }
    }
    return absl::OkStatus();
  }

  absl::Status CheckProtocol(const YAML::Node& value, const std::string& path) const {
    if (!value.IsScalar()) {
      return Error(value.Mark(), path,
                   absl::StrCat("must be mqtt, mqtts, ws or wss, not ", TypeName(value)));
    }
    const std::string& p = value.Scalar();
    if (p != "mqtt" && p != "mqtts" && p != "ws" && p != "wss") {
      return Error(value.Mark(), path,
                   absl::StrCat("protocol '", p, "': must be mqtt, mqtts, ws or wss"));
    }
    return absl::OkStatus();
  }

  absl::string_view file_;
};

absl::Status ParseDocument(const YAML::Node& root, const Reader& reader, Config* config) {
  if (root.IsNull()) return absl::OkStatus();
  if (!root.IsMap()) {
    return reader.Error(root.Mark(), "",
                        absl::StrCat("the file must be a map of keys, not ", TypeName(root)));
  }
  return reader.ApplyMap(root, "", config);
}

// yaml-cpp writes a string holding a control character such as "\r" as a plain scalar, which
// reads back as something else (the config fuzzer found "\r" read back as empty): such strings
// are written double-quoted, with escapes.
void EmitString(const std::string& value, YAML::Emitter* out) {
  const bool control = std::any_of(value.begin(), value.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (control) *out << YAML::DoubleQuoted;
  *out << value;
}

void EmitList(const std::vector<std::string>& items, YAML::Emitter* out) {
  if (items.empty()) {
    *out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
    return;
  }
  *out << YAML::BeginSeq;
  for (const std::string& item : items) EmitString(item, out);
  *out << YAML::EndSeq;
}

// The TLS and WebSocket listeners, after the mqtt ones, with the keys that are set.
void EmitSecureListeners(const Config& config, YAML::Emitter* out) {
  for (const SecureListener& l : config.secure_listeners) {
    *out << YAML::BeginMap << YAML::Key << "protocol" << YAML::Value << l.protocol << YAML::Key
         << "address" << YAML::Value << config_internal::FormatListen(l.address);
    auto text = [&](const char* key, const std::string& value) {
      if (!value.empty()) *out << YAML::Key << key << YAML::Value << value;
    };
    text("cert_file", l.cert_file);
    text("key_file", l.key_file);
    text("ca_file", l.ca_file);
    text("require_client_cert", l.require_client_cert);
    text("path", l.path);
    if (l.max_connections != 0) {
      *out << YAML::Key << "max_connections" << YAML::Value << l.max_connections;
    }
    *out << YAML::EndMap;
  }
}

// The bridges as maps, every key present, the password masked.
void EmitBridges(const Config& config, YAML::Emitter* out) {
  if (config.bridges.empty()) {
    *out << YAML::Flow << YAML::BeginSeq << YAML::EndSeq;
    return;
  }
  *out << YAML::BeginSeq;
  for (const BridgeConfig& b : config.bridges) {
    auto key = [&](const char* k) -> YAML::Emitter& {
      return *out << YAML::Key << k << YAML::Value;
    };
    *out << YAML::BeginMap;
    key("name") << b.name;
    key("addresses");
    EmitList(b.addresses, out);
    key("protocol_version") << b.protocol_version;
    key("client_id") << b.client_id;
    key("username") << b.username;
    key("password") << (b.password.empty() ? std::string() : std::string(kMask));
    if (b.tls) {
      const BridgeTls& t = b.tls_options;
      key("tls") << YAML::BeginMap;
      key("ca_file") << t.ca_file;
      key("cert_file") << t.cert_file;
      key("key_file") << t.key_file;
      key("verify") << (t.verify ? "true" : "false");
      key("server_name") << t.server_name;
      *out << YAML::EndMap;
    }
    key("clean_session") << (b.clean_session ? "true" : "false");
    key("session_expiry") << b.session_expiry;
    key("keepalive") << b.keepalive;
    key("restart_timeout") << YAML::BeginMap;
    key("min") << b.restart_min;
    key("max") << b.restart_max;
    *out << YAML::EndMap;
    key("try_private") << (b.try_private ? "true" : "false");
    key("topics");
    EmitList(b.topics, out);
    *out << YAML::EndMap;
  }
  *out << YAML::EndSeq;
}

void EmitValue(const Option& option, const Config& config, YAML::Emitter* out) {
  if (option.value.kind == Kind::kBridges) {
    EmitBridges(config, out);
    return;
  }
  std::vector<std::string> items = option.value.get(config);
  if (option.value.kind == Kind::kListeners) {
    *out << YAML::BeginSeq;
    for (const ListenAddress& l : config.listeners) {
      *out << YAML::BeginMap << YAML::Key << "protocol" << YAML::Value << "mqtt" << YAML::Key
           << "address" << YAML::Value << config_internal::FormatListen(l);
      if (l.max_connections != 0) {
        *out << YAML::Key << "max_connections" << YAML::Value << l.max_connections;
      }
      *out << YAML::EndMap;
    }
    EmitSecureListeners(config, out);
    *out << YAML::EndSeq;
    return;
  }
  if (option.value.kind != Kind::kScalar) {
    EmitList(items, out);
    return;
  }
  bool mask = (option.traits & config_internal::kSecret) && !items[0].empty();
  EmitString(mask ? std::string(kMask) : items[0], out);
}

// "limits.max_inflight" -> {"limits", "max_inflight"}; "node_id" -> {"", "node_id"}.
std::pair<std::string, std::string> SplitPath(absl::string_view path) {
  size_t dot = path.find('.');
  if (dot == absl::string_view::npos) return {"", std::string(path)};
  return {std::string(path.substr(0, dot)), std::string(path.substr(dot + 1))};
}

// Records where the root node of each document starts (the first node event after a
// document start); parses nothing else.
class DocumentStarts final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override { in_document_ = true; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    Node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnMapEnd() override {}

  std::vector<YAML::Mark> roots;

 private:
  void Node(const YAML::Mark& mark) {
    if (in_document_) roots.push_back(mark);
    in_document_ = false;
  }
  bool in_document_ = false;
};

// Counts the documents of `text`, stopping at two, and checks that there is at most one.
// YAML::LoadAll is not used: yaml-cpp 0.7 (Debian 12) loops forever in it, allocating a null
// document per turn, on a token that cannot start a node (a file that is just ",": upstream
// issue 1040, fixed by PR 1319 after 0.8.0). Such a stuck parser starts its next "document" where
// the previous one started; that is reported as the syntax error it is.
absl::Status CheckOneDocument(const std::string& text, const Reader& reader) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  DocumentStarts starts;
  int documents = 0;
  while (documents < 2 && parser.HandleNextDocument(starts)) ++documents;
  if (documents < 2) return absl::OkStatus();
  const std::vector<YAML::Mark>& roots = starts.roots;
  if (roots.size() == 2 && roots[0].pos == roots[1].pos) {
    const size_t pos = static_cast<size_t>(roots[0].pos);
    const std::string what = pos < text.size() ? std::string(1, text[pos]) : "end of file";
    return reader.Error(roots[0], "", absl::StrCat("unexpected '", what, "'"));
  }
  return reader.Error(roots.size() == 2 ? roots[1] : YAML::Mark::null_mark(), "",
                      "one YAML document only, found more");
}

}  // namespace

absl::Status ParseConfigText(absl::string_view text, absl::string_view file_name, Config* config) {
  Reader reader(file_name);
  try {
    const std::string copy(text);
    if (absl::Status s = CheckOneDocument(copy, reader); !s.ok()) return s;
    return ParseDocument(YAML::Load(copy), reader, config);
  } catch (const YAML::Exception& e) {
    return reader.Error(e.mark, "", e.msg);
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(file_name, ": ", e.what()));
  }
}

std::string ConfigToYaml(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::string section;
  for (const Option& option : config_internal::Options()) {
    if (option.path == nullptr) continue;
    auto [option_section, key] = SplitPath(option.path);
    if (option_section != section) {
      if (!section.empty()) out << YAML::EndMap;
      if (!option_section.empty()) {
        out << YAML::Key << option_section << YAML::Value << YAML::BeginMap;
      }
      section = option_section;
    }
    out << YAML::Key << key << YAML::Value;
    EmitValue(option, config, &out);
  }
  if (!section.empty()) out << YAML::EndMap;
  out << YAML::EndMap;
  std::string text =
      absl::StrCat("# mqttd --print-config: defaults < config file < MQTTD_* environment < flags\n",
                   out.c_str(), "\n");
  if (!config.ignored_env.empty()) {
    absl::StrAppend(&text, "# ignored environment variables (not configuration keys): ",
                    absl::StrJoin(config.ignored_env, ", "), "\n");
  }
  return text;
}

}  // namespace mqtt
