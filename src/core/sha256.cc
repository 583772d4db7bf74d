#include "core/sha256.h"

#include <openssl/evp.h>

#include "core/random.h"

namespace datasite {

std::string Sha256Hex(std::string_view bytes) {
  // OpenSSL's EVP digest: it uses the CPU's SHA instructions where there are some (about three
  // times libsodium's speed here), which matters for the blobs sync hashes.
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), size));
}

}  // namespace datasite
