#include "auth/token.h"

#include <sodium.h>

#include "core/random.h"

namespace datasite::auth {

std::string NewToken() { return Base64UrlEncode(RandomBytes(32)); }

std::string HashToken(std::string_view token) {
  std::string out(crypto_hash_sha256_BYTES, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(out.data()),
                     reinterpret_cast<const unsigned char*>(token.data()), token.size());
  return out;
}

}  // namespace datasite::auth
