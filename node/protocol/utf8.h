// SPDX-License-Identifier: Apache-2.0
// UTF-8 validation for MQTT strings, section 1.5.4.
#pragma once

#include <string_view>

namespace mqtt {

// True if `s` is well-formed UTF-8 [MQTT-1.5.4-1] containing no U+0000 [MQTT-1.5.4-2] and no
// UTF-16 surrogate code points (U+D800..U+DFFF). Overlong encodings are rejected.
bool IsValidMqttUtf8(std::string_view s);

}  // namespace mqtt
