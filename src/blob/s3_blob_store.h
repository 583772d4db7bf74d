// The BlobStore of an S3-compatible bucket (AWS, MinIO, Garage...), for servers that share no disk:
// one object per blob, `PREFIX/<id>`. A library of its own (datasite_blob_s3) because the S3
// client (datasite_net) is built on datasite_blob.
#ifndef DATASITE_BLOB_S3_BLOB_STORE_H_
#define DATASITE_BLOB_S3_BLOB_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "blob/blob_store.h"
#include "core/status.h"
#include "net/s3_client.h"

namespace datasite::blob {

struct S3BlobStoreOptions {
  // Endpoint, region, bucket and credentials of the bucket.
  net::S3ClientOptions client;
  // Where the blobs are in the bucket: `prefix/<id>` (`<id>` alone when empty). Slashes at either
  // end are dropped.
  std::string prefix;
  // A local directory (created if needed) for ScratchPath() files and materialised copies.
  std::string scratch_dir;
  // Bytes per part of a multipart upload, and the most a writer holds in memory. A blob of at
  // most this many bytes is one PutObject. S3 wants parts of 5 MiB at least.
  int64_t part_size = int64_t{8} << 20;
  // The most bytes readers' windows (ranged reads ahead of what was asked) hold at once, over all
  // readers; a reader past it reads each piece with a request of its own.
  int64_t read_window_budget = int64_t{256} << 20;
  // The most bytes writers' parts (received, not yet stored in S3) hold at once, over all writers;
  // an upload's Append past it fails with kUnavailable (retry after a few seconds).
  int64_t upload_memory_budget = int64_t{512} << 20;
};

// The store. Writers hash their bytes as they come and hold two parts at most (one filling, one
// being sent); readers read ahead in windows of up to 8 MiB within read_window_budget. Readers and
// writers borrow the store: destroy them before it. kInvalidArgument for options the S3 client
// refuses, or a part size under 5 MiB; no request is made here.
Result<std::unique_ptr<BlobStore>> NewS3BlobStore(S3BlobStoreOptions options);

// Whether bytes sent to the S3 `endpoint` are safe on the way without a signed payload hash, so
// that a blob of known size may go as one streamed PUT (its payload unsigned): https (TLS protects
// them) or a loopback address (nobody else is on the way). Over plain http to another host, a
// blob over one part is a multipart upload whose parts' SHA-256 are signed.
bool ConnectionGuardsPayloads(std::string_view endpoint);

// Reads the environment: the value of a variable, nullopt when unset.
using GetEnv = std::function<std::optional<std::string>(const char* name)>;

// The options of `--blob s3://BUCKET[/PREFIX][?endpoint=URL&region=R&credentials=FILE]` (all but
// scratch_dir, which the caller sets). `endpoint` defaults to AWS's of the region
// (https://s3.REGION.amazonaws.com), `region` to us-east-1; query values may be percent-encoded.
// The credentials come from FILE when given (AWS's shared credentials format: aws_access_key_id,
// aws_secret_access_key and optionally aws_session_token, outside any section or in [default]),
// else from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and optionally AWS_SESSION_TOKEN in `env`.
// kInvalidArgument for anything else or missing credentials; no message holds a credential.
Result<S3BlobStoreOptions> ParseS3BlobUrl(std::string_view url, const GetEnv& env);

}  // namespace datasite::blob

#endif  // DATASITE_BLOB_S3_BLOB_STORE_H_
