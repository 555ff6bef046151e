// SPDX-License-Identifier: Apache-2.0
#include "node/auth/enhanced_auth.h"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace mqtt::auth {
namespace {

constexpr size_t kChallengeSize = 32;

class HmacChallengeExchange : public AuthExchange {
 public:
  explicit HmacChallengeExchange(const std::string* secret) : secret_(secret) {}

  AuthStep Start(std::string_view, std::string_view) override {
    challenge_.resize(kChallengeSize);
    if (RAND_bytes(reinterpret_cast<unsigned char*>(challenge_.data()), kChallengeSize) != 1) {
      return {AuthStep::Outcome::kFailure, {}};
    }
    return {AuthStep::Outcome::kContinue, challenge_};
  }

  AuthStep Continue(std::string_view response) override {
    if (challenge_.empty()) return {AuthStep::Outcome::kFailure, {}};
    unsigned char expected[EVP_MAX_MD_SIZE];
    unsigned int expected_size = 0;
    HMAC(EVP_sha256(), secret_->data(), static_cast<int>(secret_->size()),
         reinterpret_cast<const unsigned char*>(challenge_.data()), challenge_.size(), expected,
         &expected_size);
    challenge_.clear();  // one answer per challenge
    bool match = response.size() == expected_size &&
                 CRYPTO_memcmp(response.data(), expected, expected_size) == 0;
    return {match ? AuthStep::Outcome::kSuccess : AuthStep::Outcome::kFailure, {}};
  }

 private:
  const std::string* secret_;
  std::string challenge_;
};

class HmacChallengeMethod : public AuthMethod {
 public:
  explicit HmacChallengeMethod(std::string secret) : secret_(std::move(secret)) {}
  std::string_view name() const override { return kHmacChallengeMethod; }
  std::unique_ptr<AuthExchange> NewExchange() const override {
    return std::make_unique<HmacChallengeExchange>(&secret_);
  }

 private:
  const std::string secret_;
};

}  // namespace

std::unique_ptr<AuthMethod> MakeHmacChallengeMethod(std::string secret) {
  return std::make_unique<HmacChallengeMethod>(std::move(secret));
}

}  // namespace mqtt::auth
