// A client of S3's REST API (AWS, MinIO, s3rver, Garage...) on top of HttpClient: objects put,
// read (whole or a byte range, streamed), inspected, deleted and listed, and multipart uploads
// for large ones. Requests are signed with SigV4 (sigv4.h) and addressed path-style
// (`endpoint/bucket/key`), which every S3-compatible server accepts.
#ifndef DATASITE_NET_S3_CLIENT_H_
#define DATASITE_NET_S3_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "net/http_client.h"
#include "net/sigv4.h"

namespace datasite::net {

// The most bytes S3 takes in one PutObject (and in one part of a multipart upload).
inline constexpr uint64_t kMaxPutObjectBytes = uint64_t{5} << 30;

struct S3ClientOptions {
  // http://host[:port] or https://host[:port], with no path; e.g.
  // https://s3.eu-west-3.amazonaws.com.
  std::string endpoint;
  std::string region = "us-east-1";
  std::string bucket;
  AwsCredentials credentials;
  HttpClientOptions http;
  // Signing time; SystemClock() when null. Borrowed: must outlive the client.
  const Clock* clock = nullptr;
};

struct S3Object {
  std::string key;
  uint64_t size = 0;
  std::string etag;           // as S3 sends it, quotes included
  std::string last_modified;  // as S3 sends it (ISO 8601 in a listing, an HTTP date in a HEAD)
};

struct S3ListPage {
  std::vector<S3Object> objects;
  // Set when the listing goes on: pass it as `continuation_token` for the next page.
  std::string next_continuation_token;
};

struct S3Upload {
  std::string key;
  std::string upload_id;
  std::string initiated;  // ISO 8601, as S3 sends it
};

struct S3UploadsPage {
  std::vector<S3Upload> uploads;
  // Set when the listing goes on: pass them as the markers of the next page.
  std::string next_key_marker;
  std::string next_upload_id_marker;
};

struct S3CompletedPart {
  int part_number = 0;
  std::string etag;
};

// Errors: an S3 error answer becomes a Status with S3's code and message in it (never the
// credentials): NoSuchKey, NoSuchUpload and NoSuchBucket kNotFound; AccessDenied,
// SignatureDoesNotMatch, InvalidAccessKeyId, RequestTimeTooSkewed and other 403s
// kPermissionDenied; 5xx (SlowDown, InternalError...) and transport failures kUnavailable; others
// kInvalidArgument (kFailedPrecondition for a 412). Blocks: never call it on a request thread.
// Not thread-safe (one HttpClient, one connection at a time): give each thread its own.
class S3Client {
 public:
  // kInvalidArgument for an endpoint that is not http(s)://host[:port] or an empty bucket.
  static Result<std::unique_ptr<S3Client>> Create(S3ClientOptions options);
  ~S3Client();
  S3Client(const S3Client&) = delete;
  S3Client& operator=(const S3Client&) = delete;

  // Stores `data` under `key` in one request, its SHA-256 signed.
  Status PutObject(std::string_view key, std::string_view data);
  // Stores `size` bytes pulled from `reader` under `key` in one request (up to 5 GiB), held in
  // memory only a chunk at a time. The payload goes unsigned (UNSIGNED-PAYLOAD): its hash would
  // have to be known before the first byte. S3 stores nothing unless all `size` bytes arrive, so
  // a reader that fails ends the request and leaves no object.
  // `cancel` (optional, borrowed): the request ends soon after it turns true, even when the
  // server reads nothing (see HttpRequest::cancel).
  Status PutObjectFrom(std::string_view key, uint64_t size, const BodyReader& reader,
                       const std::atomic<bool>* cancel = nullptr);

  // Streams the object (or bytes [first, last] of it, both included) to `writer`. Returns its
  // size as the answer states it (the range's length for a range) and ETag.
  struct ByteRange {
    uint64_t first = 0;
    uint64_t last = 0;
  };
  Result<S3Object> GetObject(std::string_view key, std::optional<ByteRange> range,
                             const BodyWriter& writer);

  // The object's size, ETag and Last-Modified; kNotFound when there is none.
  Result<S3Object> HeadObject(std::string_view key);

  // Deletes the object; deleting a missing key succeeds (as in S3).
  Status DeleteObject(std::string_view key);

  // One page (at most `max_keys`, S3 caps it at 1000) of the keys under `prefix` in order, after
  // `start_after` (first page) or from `continuation_token` (later pages).
  Result<S3ListPage> ListObjects(std::string_view prefix, std::string_view continuation_token,
                                 std::string_view start_after = "", int max_keys = 1000);

  // Multipart upload: parts of 5 MiB to 5 GiB (the last may be smaller), numbered 1 to 10000.
  Result<std::string> CreateMultipartUpload(std::string_view key);
  // Sends part `part_number` of `size` bytes pulled from `reader`, held in memory only a chunk at
  // a time. Its SHA-256 is signed when `sha256_hex` is given (the caller hashed it on the way),
  // else the body goes as UNSIGNED-PAYLOAD. Returns the part's ETag for Complete.
  Result<std::string> UploadPart(std::string_view key, std::string_view upload_id, int part_number,
                                 uint64_t size, const BodyReader& reader,
                                 std::string_view sha256_hex = "");
  Status CompleteMultipartUpload(std::string_view key, std::string_view upload_id,
                                 const std::vector<S3CompletedPart>& parts);
  Status AbortMultipartUpload(std::string_view key, std::string_view upload_id);
  // One page of the uploads begun and neither completed nor aborted, under `prefix`.
  Result<S3UploadsPage> ListMultipartUploads(std::string_view prefix,
                                             std::string_view key_marker = "",
                                             std::string_view upload_id_marker = "");

 private:
  class Impl;
  explicit S3Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The Status for an S3 error answer (exposed for tests): `status` and the XML error body.
Status S3ErrorStatus(int status, std::string_view body, std::string_view what);

}  // namespace datasite::net

#endif  // DATASITE_NET_S3_CLIENT_H_
