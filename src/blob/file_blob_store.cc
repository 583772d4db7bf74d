#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "blob/blob_store.h"
#include "blob/file_writer.h"
#include "core/random.h"

namespace datasite::blob {
namespace {

namespace fs = std::filesystem;

// Whether the file at `path` was last modified before `bound` (Unix seconds; none: every file).
// A file that can't be read is not: it is left alone.
bool ModifiedBefore(const fs::path& path, std::optional<int64_t> bound) {
  if (!bound) return true;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return false;
  return st.st_mtim.tv_sec < *bound;
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return FileErrno("open " + dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return FileErrno("fsync " + dir);
  return Status::Ok();
}

// An upload: its bytes hashed as they come and written by a FileWriter to a temporary file, which
// Commit renames into place.
class FileBlobWriter : public BlobWriter {
 public:
  FileBlobWriter(std::string root, std::string id, std::unique_ptr<FileWriter> file,
                 int64_t max_size, std::optional<int64_t> exact_size)
      : root_(std::move(root)),
        id_(std::move(id)),
        file_(std::move(file)),
        max_size_(max_size),
        exact_size_(exact_size) {
    ctx_ = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }

  ~FileBlobWriter() override {
    EVP_MD_CTX_free(ctx_);
    std::string temp = file_->path();
    file_.reset();  // closed before it is removed
    if (!committed_) ::unlink(temp.c_str());
  }

  Status Append(std::string_view bytes) override {
    if (closed_) return FailedPreconditionError("blob writer is closed");
    RETURN_IF_ERROR(CheckAppendWithin(exact_size_, file_->size(), bytes.size()));
    if (file_->size() + static_cast<int64_t>(bytes.size()) > max_size_) {
      return ResourceExhaustedError("the upload is larger than the limit of " +
                                    std::to_string(max_size_) + " bytes");
    }
    EVP_DigestUpdate(ctx_, bytes.data(), bytes.size());
    return file_->Append(bytes);
  }

  Result<BlobInfo> Commit() override {
    if (closed_) return FailedPreconditionError("blob writer is closed");
    closed_ = true;
    RETURN_IF_ERROR(CheckExactSize(exact_size_, file_->size()));
    RETURN_IF_ERROR(file_->Close());
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, digest, &len);
    std::string dir = root_ + "/" + id_.substr(0, 2);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return FileErrno("mkdir " + dir);
    std::string final_path = dir + "/" + id_;
    if (::rename(file_->path().c_str(), final_path.c_str()) != 0) {
      return FileErrno("rename to " + final_path);
    }
    committed_ = true;
    RETURN_IF_ERROR(FsyncDir(dir));
    RETURN_IF_ERROR(FsyncDir(root_));
    return BlobInfo{id_, file_->size(),
                    HexEncode(std::string_view(reinterpret_cast<char*>(digest), len))};
  }

 private:
  const std::string root_;
  const std::string id_;
  std::unique_ptr<FileWriter> file_;
  const int64_t max_size_;
  const std::optional<int64_t> exact_size_;
  bool closed_ = false;
  bool committed_ = false;
  EVP_MD_CTX* ctx_;
};

class FileBlobStore : public BlobStore {
 public:
  FileBlobStore(std::string root, BlobWriteMode mode) : root_(std::move(root)), mode_(mode) {}

  Result<std::unique_ptr<BlobWriter>> NewWriterFor(const std::string& id, int64_t max_size,
                                                   std::optional<int64_t> exact_size) override {
    if (!IsBlobId(id)) return InvalidArgumentError("a blob id must be a UUID, or one and .N");
    RETURN_IF_ERROR(CheckExactSizeFits(exact_size, max_size));
    std::string temp = root_ + "/tmp/" + id + ".part";
    ASSIGN_OR_RETURN(std::unique_ptr<FileWriter> file, FileWriter::Create(temp, mode_));
    return std::unique_ptr<BlobWriter>(
        new FileBlobWriter(root_, id, std::move(file), max_size, exact_size));
  }

  Result<std::unique_ptr<BlobReader>> Open(const std::string& id) override {
    ASSIGN_OR_RETURN(std::string path, CommittedPath(id));
    auto reader = OpenFileReader(path);
    if (!reader.ok() && reader.status().code() == StatusCode::kNotFound) {
      return NotFoundError("the bytes of blob " + id + " are missing");
    }
    return reader;
  }

  // The committed file itself: no copy, nothing to remove.
  Result<LocalFile> Materialize(const std::string& id) override {
    ASSIGN_OR_RETURN(std::string path, CommittedPath(id));
    if (::access(path.c_str(), R_OK) != 0)
      return NotFoundError("the bytes of blob " + id + " are missing");
    return LocalFile(std::move(path), /*remove=*/false);
  }

  // Renames the file into place: no copy, and `sha256` recorded as given.
  Result<BlobInfo> AdoptFileAs(const std::string& id, const std::string& path, int64_t size,
                               const std::string& sha256) override {
    if (!IsBlobId(id)) return InvalidArgumentError("a blob id must be a UUID, or one and .N");
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return NotFoundError("no file to adopt at " + path);
      return FileErrno("stat " + path);
    }
    if (!S_ISREG(st.st_mode)) return FailedPreconditionError(path + " is not a regular file");
    if (st.st_size != size) {
      return InvalidArgumentError(path + " holds " + std::to_string(st.st_size) +
                                  " bytes, not the " + std::to_string(size) + " expected");
    }
    // A staged file may be old: from now on it is a fresh blob, which clean-ups by age on other
    // processes leave alone until its row is written.
    if (::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) != 0) return FileErrno("touch " + path);
    std::string dir = root_ + "/" + id.substr(0, 2);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return FileErrno("mkdir " + dir);
    std::string final_path = dir + "/" + id;
    if (::rename(path.c_str(), final_path.c_str()) != 0) {
      if (errno == EXDEV) {
        return FailedPreconditionError(path + " is not on the blob store's file system");
      }
      return FileErrno("rename to " + final_path);
    }
    RETURN_IF_ERROR(FsyncDir(dir));
    RETURN_IF_ERROR(FsyncDir(root_));
    return BlobInfo{id, size, sha256};
  }

  Status Delete(const std::string& id) override {
    if (!IsBlobId(id)) return Status::Ok();
    std::string path = root_ + "/" + id.substr(0, 2) + "/" + id;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return FileErrno("unlink " + path);
    return Status::Ok();
  }

  Result<std::vector<std::string>> List(std::optional<int64_t> modified_before) override {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& sub : fs::directory_iterator(root_, ec)) {
      // Blobs are in the two-character directories only (not tmp/, nor a neighbour's files).
      if (!sub.is_directory() || sub.path().filename().string().size() != 2) continue;
      for (const auto& f : fs::directory_iterator(sub.path(), ec)) {
        std::string name = f.path().filename().string();
        if (IsBlobId(name) && ModifiedBefore(f.path(), modified_before)) out.push_back(name);
      }
    }
    if (ec) return InternalError("listing blobs: " + ec.message());
    return out;
  }

  std::string ScratchPath() override { return root_ + "/tmp/" + NewUuid() + ".scratch"; }

  Status RemoveTemporaryFiles(std::optional<int64_t> modified_before) override {
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(root_ + "/tmp", ec)) {
      if (ModifiedBefore(f.path(), modified_before)) fs::remove(f.path(), ec);
    }
    if (ec) return InternalError("cleaning " + root_ + "/tmp: " + ec.message());
    return Status::Ok();
  }

 private:
  Result<std::string> CommittedPath(const std::string& id) const {
    if (!IsBlobId(id)) return NotFoundError("no blob with id " + id.substr(0, 64));
    return root_ + "/" + id.substr(0, 2) + "/" + id;
  }

  const std::string root_;
  const BlobWriteMode mode_;
};

}  // namespace

Result<std::unique_ptr<BlobStore>> NewFileBlobStore(const std::string& dir, BlobWriteMode mode) {
  std::error_code ec;
  fs::create_directories(dir + "/tmp", ec);
  if (ec) return UnavailableError("cannot create blob directory " + dir + ": " + ec.message());
  return std::unique_ptr<BlobStore>(new FileBlobStore(dir, mode));
}

}  // namespace datasite::blob
