// The BlobStore of an S3-compatible bucket (AWS, MinIO, Garage...), for servers that share no disk:
// one object per blob, `PREFIX/<id>`. A library of its own (datasite_blob_s3) because the S3
// client (datasite_net) is built on datasite_blob.
#ifndef DATASITE_BLOB_S3_BLOB_STORE_H_
#define DATASITE_BLOB_S3_BLOB_STORE_H_

#include <cstdint>
#include <memory>
#include <string>

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
};

// The store. Writers hash their bytes as they come and buffer one part; readers read ranges with
// one GetObject each. Readers and writers borrow the store: destroy them before it.
// kInvalidArgument for options the S3 client refuses, or a part size under 5 MiB; no request is
// made here.
Result<std::unique_ptr<BlobStore>> NewS3BlobStore(S3BlobStoreOptions options);

}  // namespace datasite::blob

#endif  // DATASITE_BLOB_S3_BLOB_STORE_H_
