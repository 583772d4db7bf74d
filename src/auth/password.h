// Password hashing (argon2id at libsodium's interactive limits) and strength rules.
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

// True when `password` matches `encoded_hash`. The comparison is constant-time. Thread-safe.
bool VerifyPassword(std::string_view encoded_hash, std::string_view password);

// Spends the same time as a VerifyPassword on a real hash, so that a login for an unknown email
// takes as long as one for a known email. Thread-safe.
void VerifyAgainstDummy(std::string_view password);

// kInvalidArgument with a message a person can act on, or OK. `email` may be empty.
Status CheckPasswordStrength(std::string_view password, std::string_view email);

}  // namespace datasite::auth

#endif  // DATASITE_AUTH_PASSWORD_H_
