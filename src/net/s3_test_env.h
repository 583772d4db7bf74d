// For tests that run against an S3 server: the one tests/s3/servers.sh starts (scripts/test-s3.sh
// does for the test command), named by DATASITE_TEST_S3_URL=http://HOST:PORT/BUCKET and its
// DATASITE_TEST_S3_REGION, _ACCESS_KEY_ID and _SECRET_ACCESS_KEY.
#ifndef DATASITE_NET_S3_TEST_ENV_H_
#define DATASITE_NET_S3_TEST_ENV_H_

#include <cstdlib>
#include <optional>
#include <string>

#include "core/status.h"
#include "net/s3_client.h"

namespace datasite::net {

// Why a test is skipped when no server is named.
inline constexpr const char* kNoTestS3Server =
    "DATASITE_TEST_S3_URL is not set: start s3rver behind the SigV4 proxy with "
    "`eval \"$(bash tests/s3/servers.sh start DIR)\"` (scripts/test.sh does)";

// The client options of the named server; nullopt when none is named, kInvalidArgument for a
// URL that is not http://HOST:PORT/BUCKET.
inline std::optional<Result<S3ClientOptions>> TestS3ClientOptions() {
  auto env = [](const char* name, const char* fallback) -> std::string {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
  };
  const std::string url = env("DATASITE_TEST_S3_URL", "");
  if (url.empty()) return std::nullopt;
  const size_t scheme = url.find("://");
  const size_t slash = scheme == std::string::npos ? scheme : url.find('/', scheme + 3);
  if (slash == std::string::npos) {
    return Result<S3ClientOptions>(
        InvalidArgumentError("DATASITE_TEST_S3_URL must be http://HOST:PORT/BUCKET"));
  }
  S3ClientOptions options;
  options.endpoint = url.substr(0, slash);
  options.bucket = url.substr(slash + 1);
  options.region = env("DATASITE_TEST_S3_REGION", "us-east-1");
  options.credentials.access_key_id = env("DATASITE_TEST_S3_ACCESS_KEY_ID", "AKIDDATASITETEST");
  options.credentials.secret_access_key =
      env("DATASITE_TEST_S3_SECRET_ACCESS_KEY", "datasite/test+secret");
  return Result<S3ClientOptions>(std::move(options));
}

}  // namespace datasite::net

#endif  // DATASITE_NET_S3_TEST_ENV_H_
