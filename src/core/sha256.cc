#include "core/sha256.h"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

#include "core/random.h"

namespace datasite {

std::string Sha256Hex(std::string_view bytes) {
  // OpenSSL's EVP digest: it uses the CPU's SHA instructions where there are some (about three
  // times libsodium's speed here), which matters for the blobs sync hashes.
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr) != 1 ||
      size != 32) {
    // Not a failure to pass on: an empty or short hash would compare equal to another, and the
    // code hashes, grants and the audit chain rest on these comparisons.
    std::fputs("datasite: OpenSSL could not compute a SHA-256\n", stderr);
    std::abort();
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), size));
}

}  // namespace datasite
