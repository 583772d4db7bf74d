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
#include <utility>
#include <vector>

#include "blob/file_writer.h"
#include "core/status.h"

namespace datasite::blob {

// Whether `id` may name a blob: a UUID, or a UUID, '.' and 1 to 9 digits (the run of a job whose
// result it is: "<job id>.<attempt>").
bool IsBlobId(std::string_view id);

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
  // Makes the bytes durable (fsync of file and directory for the directory store; a completed
  // upload for an object store) and gives them their final place. Nothing may follow.
  virtual Result<BlobInfo> Commit() = 0;
};

// A committed blob's bytes, opened by BlobStore::Open. Its size is fixed when it is opened. Not
// thread-safe: concurrent reads of one blob open one reader each.
class BlobReader {
 public:
  virtual ~BlobReader() = default;
  // The blob's size in bytes.
  virtual int64_t size() const = 0;
  // Copies min(n, size() - offset) bytes from `offset` into `buf` and returns how many: 0 at or
  // past the end. Never fewer unless an error is returned (kInternal for a blob that ended early
  // or could not be read; kInvalidArgument for a negative offset).
  virtual Result<size_t> ReadAt(int64_t offset, char* buf, size_t n) = 0;
  // Sequential reading on top of ReadAt: the next bytes after those read so far (from 0), at most
  // `n`; 0 only at the end.
  Result<size_t> Read(char* buf, size_t n);
  // Where the next Read starts.
  int64_t position() const { return position_; }

 private:
  int64_t position_ = 0;
};

// A local file holding a blob's bytes, for code that can only read files: the sandbox's inputs,
// data::InferSchema and data::GenerateMock (see BlobStore::Materialize). Read-only: its holder
// neither writes, renames nor removes it. `path()` is valid while the LocalFile lives. Move-only;
// not thread-safe (read the file from many threads, but move or destroy it from one).
class LocalFile {
 public:
  LocalFile() = default;
  // `remove`: whether the file is a temporary copy, removed when the LocalFile goes.
  LocalFile(std::string path, bool remove) : path_(std::move(path)), remove_(remove) {}
  ~LocalFile();
  LocalFile(LocalFile&& other) noexcept;
  LocalFile& operator=(LocalFile&& other) noexcept;
  LocalFile(const LocalFile&) = delete;
  LocalFile& operator=(const LocalFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  void Release();

  std::string path_;
  bool remove_ = false;
};

// Safe for concurrent use.
class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // `max_size`: the most bytes this blob may hold. `exact_size`, when the blob's size is known
  // before its first byte (an upload with a Content-Length): a store may then send the bytes to
  // their place as they come (an object store: one PUT rather than a multipart upload); Append
  // fails past it and Commit short of it (kInvalidArgument), and NewWriter fails
  // (kResourceExhausted) when it is over `max_size` (see CheckExactSize*).
  Result<std::unique_ptr<BlobWriter>> NewWriter(int64_t max_size,
                                                std::optional<int64_t> exact_size = std::nullopt);
  // A writer whose blob commits under `id`, the id it has in another store: for moving blobs
  // between stores (`datasite blobs migrate`), where the database names blobs by id. A blob
  // already committed under `id` is replaced by the commit. kInvalidArgument for an id that is no
  // UUID.
  virtual Result<std::unique_ptr<BlobWriter>> NewWriterFor(
      const std::string& id, int64_t max_size,
      std::optional<int64_t> exact_size = std::nullopt) = 0;
  // Opens a committed blob for reading; kNotFound when absent. The reader keeps reading the bytes
  // it opened when the blob is deleted meanwhile (the directory store) or fails with kInternal
  // (an object store); never other bytes.
  virtual Result<std::unique_ptr<BlobReader>> Open(const std::string& id) = 0;
  // Open for a reader past its caller's share of the store's read-ahead memory: it holds nothing
  // beyond the caller's buffer, so each read of a store that reads ahead (an object store) is a
  // request of its own; slower, never refused. This default, for stores that don't, is Open.
  virtual Result<std::unique_ptr<BlobReader>> OpenWithoutReadAhead(const std::string& id) {
    return Open(id);
  }
  // A committed blob as a local file, only where a file is unavoidable; kNotFound when absent.
  // The directory store returns the committed file itself (no copy; deleting the blob meanwhile
  // unlinks it, as for any reader of the file). This default, for stores without local files,
  // copies the blob into a fresh ScratchPath() file, removed when the LocalFile goes, or by
  // RemoveTemporaryFiles at start-up after a crash.
  virtual Result<LocalFile> Materialize(const std::string& id);
  // Makes the file at `path` (fsynced, `size` bytes, whose SHA-256 the caller computed as
  // `sha256` while writing it) a new committed blob with a new id; on success the file is gone
  // from `path`. kNotFound when there is no file, kInvalidArgument when it holds another size
  // (the file is then left where it is). The blob counts as written now (for `modified_before`
  // below), however old the file is.
  Result<BlobInfo> AdoptFile(const std::string& path, int64_t size, const std::string& sha256);
  // AdoptFile into the blob `id` (see IsBlobId; kInvalidArgument for another), replacing one
  // committed under it: for blobs named by what they belong to (a job run's result).
  // This default streams the file through NewWriterFor and checks the SHA-256 it computes against
  // `sha256` (kInternal when they differ, the blob then deleted), so every store can adopt; the
  // directory store renames a ScratchPath() file into place instead (no copy;
  // kFailedPrecondition for a file elsewhere) and records `sha256` as given.
  virtual Result<BlobInfo> AdoptFileAs(const std::string& id, const std::string& path, int64_t size,
                                       const std::string& sha256);
  // Removes a committed blob's bytes; OK when already gone.
  virtual Status Delete(const std::string& id) = 0;
  // Ids of every committed blob; with `modified_before` (Unix seconds), only of those last written
  // before then (a file's modification time; an object store's LastModified).
  virtual Result<std::vector<std::string>> List(
      std::optional<int64_t> modified_before = std::nullopt) = 0;
  // A fresh path on local disk for a scratch file among the store's local temporary files
  // (removed with them by RemoveTemporaryFiles at start-up). Never a blob: bytes become one
  // through NewWriter or AdoptFile.
  virtual std::string ScratchPath() = 0;
  // Removes temporary files of uploads that never committed, scratch files and materialised
  // copies: all of them when no upload can be running; with `modified_before` (Unix seconds),
  // only those last written before then, when other processes sharing the store may be uploading
  // (an object store: its incomplete multipart uploads started before then too).
  virtual Status RemoveTemporaryFiles(std::optional<int64_t> modified_before = std::nullopt) = 0;
};

// For writers given an exact size (BlobStore::NewWriter), none set meaning no check:
// kResourceExhausted when `exact` is over `max_size` (the upload is refused before a byte);
Status CheckExactSizeFits(std::optional<int64_t> exact, int64_t max_size);
// kInvalidArgument when `n` bytes more after `written` pass `exact`;
Status CheckAppendWithin(std::optional<int64_t> exact, int64_t written, size_t n);
// kInvalidArgument unless `written` is `exact` (at Commit).
Status CheckExactSize(std::optional<int64_t> exact, int64_t written);

// A reader of the regular file at `path` (its size taken when opened): for bytes that are files
// but not blobs, such as job result files, sent beside blobs. kNotFound when there is no file.
Result<std::unique_ptr<BlobReader>> OpenFileReader(const std::string& path);

// The SHA-256 (lowercase hex) and size of the file at `path`, or of what `reader` holds from its
// position on, read a piece at a time.
Result<std::pair<std::string, int64_t>> Sha256OfFile(const std::string& path);
Result<std::pair<std::string, int64_t>> Sha256Of(BlobReader& reader);

// Copies every byte of `reader` from its start into a new file at `path` (which must not exist),
// fsynced and closed. The file is removed again on failure.
Status CopyToFile(BlobReader& reader, const std::string& path);

// Blobs under `dir` (created if needed): `dir/tmp/` for uploads in progress, `dir/ab/<id>` when
// committed.
Result<std::unique_ptr<BlobStore>> NewFileBlobStore(const std::string& dir,
                                                    BlobWriteMode mode = BlobWriteMode::kDirect);

}  // namespace datasite::blob

#endif  // DATASITE_BLOB_BLOB_STORE_H_
