#include "auth/password.h"

#include <sodium.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "auth/common_passwords.h"

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

namespace {
constexpr std::string_view kDevelopmentMark = "dev:";
}  // namespace

std::string MarkDevelopmentHash(std::string_view encoded_hash) {
  if (IsDevelopmentHash(encoded_hash)) return std::string(encoded_hash);
  return std::string(kDevelopmentMark) + std::string(encoded_hash);
}

bool IsDevelopmentHash(std::string_view encoded_hash) {
  return encoded_hash.substr(0, kDevelopmentMark.size()) == kDevelopmentMark;
}

bool VerifyPassword(std::string_view encoded_hash, std::string_view password) {
  if (IsDevelopmentHash(encoded_hash)) encoded_hash.remove_prefix(kDevelopmentMark.size());
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

namespace {

std::string Lower(std::string_view v) {
  std::string out(v);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Unicode characters in UTF-8 text: the bytes that do not continue a character.
size_t CharacterCount(std::string_view v) {
  return static_cast<size_t>(std::count_if(
      v.begin(), v.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// The embedded list, lower-cased and sorted once.
const std::vector<std::string_view>& CommonPasswords() {
  static const std::vector<std::string_view> sorted = [] {
    static const std::string lowered = Lower(internal::kCommonPasswords);
    std::vector<std::string_view> out;
    std::string_view rest = lowered;
    while (!rest.empty()) {
      size_t end = rest.find('\n');
      std::string_view word = rest.substr(0, end);
      if (!word.empty()) out.push_back(word);
      if (end == std::string_view::npos) break;
      rest.remove_prefix(end + 1);
    }
    std::sort(out.begin(), out.end());
    return out;
  }();
  return sorted;
}

}  // namespace

bool IsCommonPassword(std::string_view password) {
  const auto& list = CommonPasswords();
  return std::binary_search(list.begin(), list.end(), std::string_view(Lower(password)));
}

Result<std::string> CheckNewPassword(std::string_view password, std::string_view email,
                                     PasswordRules rules) {
  if (password.empty()) return InvalidArgumentError("password must not be empty");
  if (password.size() > kMaxPasswordLength) {
    return InvalidArgumentError("password must be at most " + std::to_string(kMaxPasswordLength) +
                                " characters long");
  }
  if (!email.empty() && Lower(password) == Lower(email)) {
    return InvalidArgumentError("password must not be the same as the email");
  }
  std::string weakness;
  if (CharacterCount(password) < kMinPasswordLength) {
    weakness =
        "password must be at least " + std::to_string(kMinPasswordLength) + " characters long";
  } else if (IsCommonPassword(password)) {
    weakness =
        "password is one of the most common passwords (found in breaches): choose another; a "
        "few unrelated words make a long password that is easy to remember";
  } else if (std::all_of(password.begin(), password.end(),
                         [&](char c) { return c == password.front(); })) {
    weakness = "password must not be one character repeated";
  }
  if (weakness.empty()) return std::string();
  if (rules == PasswordRules::kStandard) return InvalidArgumentError(weakness);
  return "accepted only because this is a development server reachable on loopback alone (" +
         weakness + ")";
}

Status CheckPasswordStrength(std::string_view password, std::string_view email) {
  return CheckNewPassword(password, email, PasswordRules::kStandard).status();
}

}  // namespace datasite::auth
