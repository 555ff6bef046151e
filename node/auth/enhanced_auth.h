// SPDX-License-Identifier: Apache-2.0
// MQTT 5.0 enhanced authentication (section 4.12): pluggable methods.
//
// A method is named by the Authentication Method property; the broker looks it up by name and
// runs one AuthExchange per CONNECT (or per re-authentication). An exchange is a small state
// machine fed with the client's Authentication Data: each step either ends it (success or
// failure) or asks the broker to send AUTH (reason 0x18, Continue authentication) with the
// step's data and wait for the client's next AUTH.
//
// Threading: an AuthMethod is shared by all workers and must be thread-safe (NewExchange is
// called from any worker); an AuthExchange lives on one connection's worker.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace mqtt::auth {

struct AuthStep {
  enum class Outcome { kContinue, kSuccess, kFailure };
  Outcome outcome = Outcome::kFailure;
  std::string data;  // Authentication Data for the AUTH (continue) or CONNACK/AUTH (success)
};

class AuthExchange {
 public:
  virtual ~AuthExchange() = default;
  // The first step, with the Authentication Data of the CONNECT (or of AUTH 0x19).
  virtual AuthStep Start(std::string_view client_id, std::string_view data) = 0;
  // The next step, with the Authentication Data of the client's AUTH (reason 0x18).
  virtual AuthStep Continue(std::string_view data) = 0;
};

class AuthMethod {
 public:
  virtual ~AuthMethod() = default;
  virtual std::string_view name() const = 0;
  virtual std::unique_ptr<AuthExchange> NewExchange() const = 0;
};

// "HMAC-SHA256-CHALLENGE": the server answers CONNECT with a random 32-byte challenge; the
// client proves it knows the shared secret by returning HMAC-SHA256(secret, challenge). The
// CONNECT's data, if any, is ignored. A small real method, so that the exchange is exercised
// end to end; SCRAM or Kerberos would plug in the same way.
inline constexpr std::string_view kHmacChallengeMethod = "HMAC-SHA256-CHALLENGE";
std::unique_ptr<AuthMethod> MakeHmacChallengeMethod(std::string secret);

}  // namespace mqtt::auth
