// BlobStore: large bytes (asset data and mocks), written as streams with their SHA-256, durable
// before they are acknowledged. The local implementation keeps one file per blob under a directory;
// an S3-compatible store will implement the same interface for clusters.
#ifndef DATASITE_BLOB_BLOB_STORE_H_
#define DATASITE_BLOB_BLOB_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blob/file_writer.h"
#include "core/status.h"

namespace datasite::blob {

struct BlobInfo {
  std::string id;  // UUID
  int64_t size = 0;
  std::string sha256;  // lowercase hex
};

// One blob being written. Not thread-safe. Destroying it without Commit removes what was written.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  // kResourceExhausted once the blob would pass its size limit or the disk is full.
  virtual Status Append(std::string_view bytes) = 0;
  // Hands every appended byte to the file at temp_path(), so that checks may read it there. Append
  // may follow. Commit flushes too.
  virtual Status Flush() = 0;
  // Makes the bytes durable (fsync of file and directory) and gives them their final place.
  virtual Result<BlobInfo> Commit() = 0;
  // Where the bytes are before Commit (for checks that read the file, after Flush).
  virtual const std::string& temp_path() const = 0;
};

// Safe for concurrent use.
class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // `max_size`: the most bytes this blob may hold.
  virtual Result<std::unique_ptr<BlobWriter>> NewWriter(int64_t max_size) = 0;
  // The file holding a committed blob; kNotFound when absent.
  virtual Result<std::string> LocalPath(const std::string& id) = 0;
  // Makes the file at `path` a new committed blob (a new id) by renaming it into place, without
  // copying, and fsyncs the directories. The file must be fsynced already, be a regular file on the
  // store's file system (e.g. from ScratchPath(); kFailedPrecondition otherwise) and hold `size`
  // bytes (kInvalidArgument otherwise, and the file is left where it is). `sha256` is recorded as
  // given: the caller has computed it while the file was written. The blob counts as written now
  // (for `modified_before` below), however old the file is.
  virtual Result<BlobInfo> AdoptFile(const std::string& path, int64_t size,
                                     const std::string& sha256) = 0;
  // Removes a committed blob's bytes; OK when already gone.
  virtual Status Delete(const std::string& id) = 0;
  // Ids of every committed blob; with `modified_before` (Unix seconds), only of those last written
  // before then (a file's modification time; an object store's LastModified).
  virtual Result<std::vector<std::string>> List(
      std::optional<int64_t> modified_before = std::nullopt) = 0;
  // A fresh path for a scratch file among the temporary files (removed with them at start-up).
  virtual std::string ScratchPath() = 0;
  // Removes temporary files of uploads that never committed: all of them when no upload can be
  // running; with `modified_before` (Unix seconds), only those last written before then, when
  // other processes sharing the store may be uploading (an object store: its incomplete multipart
  // uploads started before then).
  virtual Status RemoveTemporaryFiles(std::optional<int64_t> modified_before = std::nullopt) = 0;
};

// Blobs under `dir` (created if needed): `dir/tmp/` for uploads in progress, `dir/ab/<id>` when
// committed.
Result<std::unique_ptr<BlobStore>> NewFileBlobStore(const std::string& dir,
                                                    BlobWriteMode mode = BlobWriteMode::kDirect);

}  // namespace datasite::blob

#endif  // DATASITE_BLOB_BLOB_STORE_H_
