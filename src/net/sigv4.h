// AWS Signature Version 4 for S3 requests sent in the Authorization header (one signed chunk or
// UNSIGNED-PAYLOAD; no chunked streaming signatures, no presigned URLs). Pure computation: the
// time is an input, nothing is sent or logged.
#ifndef DATASITE_NET_SIGV4_H_
#define DATASITE_NET_SIGV4_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace datasite::net {

// An access key pair. The secret is only ever an HMAC key: it appears in no string this module
// returns.
struct AwsCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  // A temporary credential's token, sent (and signed) as x-amz-security-token when not empty.
  std::string session_token;
};

// The payload hash that tells S3 the body is not covered by the signature.
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// SHA-256 of no bytes: the payload hash of a request without a body.
inline constexpr std::string_view kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct SigV4Request {
  std::string method = "GET";
  // The object's path before encoding, e.g. "/bucket/my key.txt"; each segment between slashes is
  // encoded once (S3 does not encode twice, nor normalize "." or "..").
  std::string path = "/";
  // Query parameters before encoding, in any order; a parameter without a value ("?uploads") has
  // an empty one.
  std::vector<std::pair<std::string, std::string>> query;
  // Headers to sign besides x-amz-date and x-amz-content-sha256 (added by SignV4); `host` must be
  // among them, exactly as it is sent.
  std::vector<std::pair<std::string, std::string>> headers;
  // The body's SHA-256 in lowercase hex, or kUnsignedPayload.
  std::string payload_sha256;
};

struct SigV4Signature {
  // The headers to add to the request: Authorization, x-amz-date, x-amz-content-sha256 and, for a
  // temporary credential, x-amz-security-token.
  std::vector<std::pair<std::string, std::string>> headers;
  // The intermediate strings, for tests and for debugging a server's refusal (no secret in them).
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;
};

// Signs `request` for `region` and `service` ("s3") at `unix_seconds` (UTC).
SigV4Signature SignV4(const SigV4Request& request, const AwsCredentials& credentials,
                      std::string_view region, std::string_view service, int64_t unix_seconds);

// Percent-encodes as SigV4 wants: every byte but A-Z a-z 0-9 - _ . ~ as %XX (uppercase hex),
// and '/' too unless `keep_slash`. The same encoding must be used in the URL that is sent.
std::string SigV4Encode(std::string_view text, bool keep_slash);

// The query string SigV4 signs and the URL must carry: encoded pairs sorted by name, then value.
std::string SigV4CanonicalQuery(const std::vector<std::pair<std::string, std::string>>& query);

}  // namespace datasite::net

#endif  // DATASITE_NET_SIGV4_H_
