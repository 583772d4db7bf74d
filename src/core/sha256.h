// SHA-256 of a byte string, as 64 lowercase hex digits: the one spelling of the hashes the store,
// the audit chain, sync and the S3 signer write down.
#ifndef DATASITE_CORE_SHA256_H_
#define DATASITE_CORE_SHA256_H_

#include <string>
#include <string_view>

namespace datasite {

std::string Sha256Hex(std::string_view bytes);

}  // namespace datasite

#endif  // DATASITE_CORE_SHA256_H_
