// SPDX-License-Identifier: Apache-2.0
#include "node/auth/password_file.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "node/base/files.h"

namespace mqtt::auth {
namespace {

// absl::StrCat takes absl::string_view, which Debian's Abseil keeps distinct from std's.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

constexpr size_t kSaltBytes = 12;  // what mosquitto_passwd writes
constexpr size_t kHashBytes = 64;  // SHA-512
constexpr int kMaxIterations = 10'000'000;

std::string Base64Encode(const unsigned char* data, size_t size) {
  std::string out(4 * ((size + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, size);
  out.resize(n < 0 ? 0 : n);
  return out;
}

// Standard base64 with padding; false on anything else.
bool Base64Decode(std::string_view text, std::string* out) {
  if (text.empty() || text.size() % 4 != 0) return false;
  out->assign(3 * text.size() / 4, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out->data()),
                          reinterpret_cast<const unsigned char*>(text.data()), text.size());
  if (n < 0) return false;
  // EVP_DecodeBlock counts the bytes the padding stands for.
  size_t padding = text.back() == '=' ? (text[text.size() - 2] == '=' ? 2 : 1) : 0;
  out->resize(n - padding);
  return true;
}

// A parsed hash: the digest of `password` is recomputed from these.
struct Hash {
  int iterations = 0;  // 0: the $6$ form (one SHA-512)
  std::string salt;
  std::string digest;
};

absl::StatusOr<Hash> DecodeHash(std::string_view encoded) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    size_t end = encoded.find('$', start);
    parts.push_back(encoded.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
  Hash hash;
  // "$6$salt$hash" splits into {"", "6", salt, hash}; "$7$iter$salt$hash" into five.
  if (parts.size() == 4 && parts[0].empty() && parts[1] == "6") {
    parts.erase(parts.begin() + 1);
  } else if (parts.size() == 5 && parts[0].empty() && parts[1] == "7") {
    int iterations = 0;
    for (char c : parts[2]) {
      if (c < '0' || c > '9' || iterations > kMaxIterations) {
        return absl::InvalidArgumentError("bad iteration count");
      }
      iterations = iterations * 10 + (c - '0');
    }
    if (iterations < 1 || iterations > kMaxIterations) {
      return absl::InvalidArgumentError("bad iteration count");
    }
    hash.iterations = iterations;
    parts.erase(parts.begin() + 1, parts.begin() + 3);
  } else {
    return absl::InvalidArgumentError("not a $6$ or $7$ hash (plain-text passwords are refused)");
  }
  if (!Base64Decode(parts[1], &hash.salt) || hash.salt.empty()) {
    return absl::InvalidArgumentError("bad salt");
  }
  if (!Base64Decode(parts[2], &hash.digest) || hash.digest.size() != kHashBytes) {
    return absl::InvalidArgumentError("bad hash");
  }
  return hash;
}

bool Digest(const Hash& hash, std::string_view password, unsigned char* out) {
  const auto* salt = reinterpret_cast<const unsigned char*>(hash.salt.data());
  if (hash.iterations > 0) {
    return PKCS5_PBKDF2_HMAC(password.data(), password.size(), salt, hash.salt.size(),
                             hash.iterations, EVP_sha512(), kHashBytes, out) == 1;
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned int size = 0;
  bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha512(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx, password.data(), password.size()) == 1 &&
            EVP_DigestUpdate(ctx, salt, hash.salt.size()) == 1 &&
            EVP_DigestFinal_ex(ctx, out, &size) == 1 && size == kHashBytes;
  EVP_MD_CTX_free(ctx);
  return ok;
}

}  // namespace

absl::Status ValidateHash(std::string_view encoded) { return DecodeHash(encoded).status(); }

bool VerifyPassword(std::string_view encoded, std::string_view password) {
  absl::StatusOr<Hash> hash = DecodeHash(encoded);
  unsigned char digest[kHashBytes];
  if (!hash.ok() || !Digest(*hash, password, digest)) return false;
  return CRYPTO_memcmp(digest, hash->digest.data(), kHashBytes) == 0;
}

absl::StatusOr<std::string> HashPassword(std::string_view password, int iterations) {
  if (iterations < 1 || iterations > kMaxIterations) {
    return absl::InvalidArgumentError("bad iteration count");
  }
  Hash hash;
  hash.iterations = iterations;
  hash.salt.resize(kSaltBytes);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(hash.salt.data()), kSaltBytes) != 1) {
    return absl::InternalError("RAND_bytes failed");
  }
  unsigned char digest[kHashBytes];
  if (!Digest(hash, password, digest)) return absl::InternalError("PBKDF2 failed");
  const auto* salt = reinterpret_cast<const unsigned char*>(hash.salt.data());
  return absl::StrCat("$7$", iterations, "$", Base64Encode(salt, kSaltBytes), "$",
                      Base64Encode(digest, kHashBytes));
}

absl::StatusOr<PasswordFile> PasswordFile::Parse(std::string_view text, std::string_view name) {
  PasswordFile file;
  int line_number = 0;
  for (absl::string_view piece :
       absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    std::string_view line(piece.data(), piece.size());
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    auto error = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat(Sv(name), ":", line_number, ": ", what));
    };
    const size_t colon = line.rfind(':');  // a hash has no ':'; a user name may
    if (colon == std::string_view::npos || colon == 0) return error("expected user:hash");
    std::string_view user = line.substr(0, colon);
    if (absl::Status s = ValidateHash(line.substr(colon + 1)); !s.ok()) return error(s.message());
    if (!file.hashes_.emplace(user, line.substr(colon + 1)).second) {
      return error(absl::StrCat("user '", Sv(user), "' listed twice"));
    }
  }
  return file;
}

absl::StatusOr<PasswordFile> PasswordFile::Load(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

bool PasswordFile::Check(std::string_view user, std::string_view password) const {
  auto it = hashes_.find(absl::string_view(user.data(), user.size()));
  if (it != hashes_.end()) return VerifyPassword(it->second, password);
  // An unknown user costs as much as a known one, so that timing does not tell which exist.
  static const std::string kDummy = HashPassword("", kDefaultPbkdf2Iterations).value_or("");
  VerifyPassword(kDummy, password);
  return false;
}

bool PasswordFile::Contains(std::string_view user) const {
  return hashes_.contains(absl::string_view(user.data(), user.size()));
}

absl::Status ValidateUserName(std::string_view user) {
  if (user.empty() || user.find_first_of(":\r\n") != std::string_view::npos) {
    return absl::InvalidArgumentError("a user name must be non-empty, without ':' or line breaks");
  }
  return absl::OkStatus();
}

namespace {

// Rewrites `text` line by line: each line of `user` is replaced by `replacement` (dropped when
// empty); sets *found.
std::string ReplaceUser(std::string_view text, std::string_view user, std::string_view replacement,
                        bool* found) {
  std::string out;
  *found = false;
  for (size_t start = 0; start < text.size();) {
    size_t end = std::min(text.find('\n', start), text.size());
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    const size_t colon = line.rfind(':');
    const bool ours = !line.empty() && line[0] != '#' && colon != std::string_view::npos &&
                      line.substr(0, colon) == user;
    if (ours && *found) continue;  // a second line of the same user (the parser refuses those)
    if (ours) {
      *found = true;
      line = replacement;
      if (line.empty()) continue;
    }
    absl::StrAppend(&out, Sv(line), "\n");
  }
  return out;
}

}  // namespace

absl::StatusOr<std::string> WithUser(std::string_view text, std::string_view user,
                                     std::string_view hash) {
  if (absl::Status s = ValidateUserName(user); !s.ok()) return s;
  if (absl::Status s = ValidateHash(hash); !s.ok()) return s;
  const std::string line = absl::StrCat(Sv(user), ":", Sv(hash));
  bool found = false;
  std::string out = ReplaceUser(text, user, line, &found);
  if (!found) absl::StrAppend(&out, Sv(line), "\n");
  return out;
}

absl::StatusOr<std::string> WithoutUser(std::string_view text, std::string_view user) {
  bool found = false;
  std::string out = ReplaceUser(text, user, "", &found);
  if (!found) return absl::NotFoundError(absl::StrCat("user '", Sv(user), "' is not in the file"));
  return out;
}

}  // namespace mqtt::auth
