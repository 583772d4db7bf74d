// `datasite blobs migrate`: copies a datasite's blobs from its local directory into an
// S3-compatible bucket, under the same ids, so that the server can start with `--blob s3://...`.
#ifndef DATASITE_SERVER_BLOBS_MIGRATE_H_
#define DATASITE_SERVER_BLOBS_MIGRATE_H_

#include <string>

namespace datasite::server {

struct BlobsMigrateOptions {
  std::string from;      // a data directory (SQLite), or with `database` the servers' --storage-dir
  std::string to;        // s3://BUCKET/PREFIX?endpoint=URL&region=R, as --blob takes it
  std::string database;  // the servers' --database; empty for SQLite in `from`
};

// Copies every blob the database records and the bucket lacks (or holds at another size),
// checking each copy's SHA-256 against the one recorded at upload; reports progress on stderr.
// Never deletes a local blob. Returns the process exit code: 0 when every recorded blob is in the
// bucket, verified, at the end.
int RunBlobsMigrate(const BlobsMigrateOptions& options);

}  // namespace datasite::server

#endif  // DATASITE_SERVER_BLOBS_MIGRATE_H_
