#include "auth/password.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>

namespace datasite::auth {

Result<std::string> HashPassword(std::string_view password) {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(),
                            crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return ResourceExhaustedError("out of memory while hashing a password");
  }
  return std::string(out);
}

bool VerifyPassword(std::string_view encoded_hash, std::string_view password) {
  std::string h(encoded_hash);  // needs NUL termination
  return crypto_pwhash_str_verify(h.c_str(), password.data(), password.size()) == 0;
}

void VerifyAgainstDummy(std::string_view password) {
  static const std::string dummy = [] {
    auto h = HashPassword("dummy-password-never-used-1");
    return h.ok() ? *h : std::string();
  }();
  (void)VerifyPassword(dummy, password);
}

Status CheckPasswordStrength(std::string_view password, std::string_view email) {
  if (password.size() < kMinPasswordLength) {
    return InvalidArgumentError("password must be at least " + std::to_string(kMinPasswordLength) +
                                " characters long");
  }
  if (password.size() > kMaxPasswordLength) {
    return InvalidArgumentError("password must be at most " + std::to_string(kMaxPasswordLength) +
                                " characters long");
  }
  auto has = [&](int (*pred)(int)) {
    return std::any_of(password.begin(), password.end(),
                       [&](char c) { return pred(static_cast<unsigned char>(c)) != 0; });
  };
  if (!has(std::isupper) || !has(std::islower) || !has(std::isdigit)) {
    return InvalidArgumentError(
        "password must contain an upper-case letter, a lower-case letter and a digit");
  }
  auto lower = [](std::string_view v) {
    std::string out(v);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
  };
  if (!email.empty() && lower(password) == lower(email)) {
    return InvalidArgumentError("password must not be the same as the email");
  }
  return Status::Ok();
}

}  // namespace datasite::auth
