// Cryptographically secure random ids and bytes (libsodium).
#ifndef DATASITE_CORE_RANDOM_H_
#define DATASITE_CORE_RANDOM_H_

#include <string>
#include <string_view>

namespace datasite {

// Must be called once before any other function here (idempotent, thread-safe). Returns false if
// the system's random source is unusable.
bool InitCrypto();

// A random version-4 UUID, lowercase, "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".
std::string NewUuid();
// True when `s` is a canonical lowercase UUID.
bool IsUuid(std::string_view s);
// `n` random bytes.
std::string RandomBytes(size_t n);
// Lowercase hex of arbitrary bytes.
std::string HexEncode(std::string_view bytes);
// Unpadded base64url of arbitrary bytes.
std::string Base64UrlEncode(std::string_view bytes);

}  // namespace datasite

#endif  // DATASITE_CORE_RANDOM_H_
