// Password hashing (argon2id at libsodium's interactive limits) and the rules for new passwords.
//
// Hashing takes tens of milliseconds and 64 MiB on purpose: callers run it off the I/O threads.
#ifndef DATASITE_AUTH_PASSWORD_H_
#define DATASITE_AUTH_PASSWORD_H_

#include <string>
#include <string_view>

#include "core/status.h"

namespace datasite::auth {

inline constexpr size_t kMinPasswordLength = 8;
inline constexpr size_t kMaxPasswordLength = 128;

// The encoded argon2id hash (algorithm, parameters and salt included). Thread-safe.
Result<std::string> HashPassword(std::string_view password);

// `encoded_hash` marked as the hash of a password accepted only under PasswordRules::kDevelopment,
// so that a server later launched beyond loopback can find such accounts (IsDevelopmentHash) and
// refuse to start. VerifyPassword reads marked hashes as well.
std::string MarkDevelopmentHash(std::string_view encoded_hash);
bool IsDevelopmentHash(std::string_view encoded_hash);

// True when `password` matches `encoded_hash`. The comparison is constant-time. Thread-safe.
bool VerifyPassword(std::string_view encoded_hash, std::string_view password);

// Spends the same time as a VerifyPassword on a real hash, so that a login for an unknown email
// takes as long as one for a known email. Thread-safe.
void VerifyAgainstDummy(std::string_view password);

// How new passwords are checked.
enum class PasswordRules {
  // NIST SP 800-63B: 8 to 128 characters (Unicode characters count one each; the upper bound is in
  // bytes), not one of the common passwords found in breaches, not one character repeated, not the
  // email. No composition rules (no upper case, digit or symbol asked for).
  kStandard,
  // A development server reachable only on loopback (`launch --dev-mode`): what kStandard refuses
  // for being short, common or repetitive is accepted with a warning, as PySyft's tutorials use
  // "abc123", "pw" and "123". An empty password, one over the upper bound and one equal to the
  // email are still refused.
  kDevelopment,
};

// OK with an empty string when the password may be used; OK with a warning a person should read
// (kDevelopment only: why kStandard would refuse it); or kInvalidArgument with a message a person
// can act on. `email` may be empty. Thread-safe.
Result<std::string> CheckNewPassword(std::string_view password, std::string_view email,
                                     PasswordRules rules);

// CheckNewPassword under kStandard. Thread-safe.
Status CheckPasswordStrength(std::string_view password, std::string_view email);

// Whether `password`, compared without regard to ASCII letter case, is on the built-in list of
// common passwords (python3-zxcvbn's, 30,000 found most often in breaches). Thread-safe.
bool IsCommonPassword(std::string_view password);

}  // namespace datasite::auth

#endif  // DATASITE_AUTH_PASSWORD_H_
