#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // sync_file_range
#endif
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "blob/blob_store.h"
#include "core/random.h"

namespace datasite::blob {
namespace {

namespace fs = std::filesystem;

Status Errno(const std::string& what) {
  int e = errno;
  std::string msg = what + ": " + std::strerror(e);
  if (e == ENOSPC || e == EDQUOT) return ResourceExhaustedError("disk full: " + msg);
  if (e == EROFS || e == EACCES || e == EPERM)
    return UnavailableError("storage is not writable: " + msg);
  return InternalError(msg);
}

Status FsyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open " + dir);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("fsync " + dir);
  return Status::Ok();
}

class FileBlobWriter : public BlobWriter {
 public:
  FileBlobWriter(std::string root, std::string id, int fd, std::string temp, int64_t max_size)
      : root_(std::move(root)),
        id_(std::move(id)),
        fd_(fd),
        temp_(std::move(temp)),
        max_size_(max_size) {
    ctx_ = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
  }

  ~FileBlobWriter() override {
    EVP_MD_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(temp_.c_str());
  }

  Status Append(std::string_view bytes) override {
    if (fd_ < 0) return FailedPreconditionError("blob writer is closed");
    if (size_ + static_cast<int64_t>(bytes.size()) > max_size_) {
      return ResourceExhaustedError("the upload is larger than the limit of " +
                                    std::to_string(max_size_) + " bytes");
    }
    EVP_DigestUpdate(ctx_, bytes.data(), bytes.size());
    while (!bytes.empty()) {
      ssize_t n = ::write(fd_, bytes.data(), bytes.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("write " + temp_);
      }
      bytes.remove_prefix(static_cast<size_t>(n));
      size_ += n;
    }
    // Write-behind: start writing each full window to disk now, and wait for the window before it,
    // so that the fsync at Commit has little left to do and dirty pages stay bounded.
    while (size_ - flushed_ >= kWindow) {
      ::sync_file_range(fd_, flushed_, kWindow, SYNC_FILE_RANGE_WRITE);
      if (flushed_ >= kWindow) {
        ::sync_file_range(
            fd_, flushed_ - kWindow, kWindow,
            SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
      }
      flushed_ += kWindow;
    }
    return Status::Ok();
  }

  Result<BlobInfo> Commit() override {
    if (fd_ < 0) return FailedPreconditionError("blob writer is closed");
    if (::fsync(fd_) != 0) return Errno("fsync " + temp_);
    ::close(fd_);
    fd_ = -1;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, digest, &len);
    std::string dir = root_ + "/" + id_.substr(0, 2);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Errno("mkdir " + dir);
    std::string final_path = dir + "/" + id_;
    if (::rename(temp_.c_str(), final_path.c_str()) != 0) return Errno("rename to " + final_path);
    committed_ = true;
    RETURN_IF_ERROR(FsyncDir(dir));
    RETURN_IF_ERROR(FsyncDir(root_));
    return BlobInfo{id_, size_, HexEncode(std::string_view(reinterpret_cast<char*>(digest), len))};
  }

  const std::string& temp_path() const override { return temp_; }

 private:
  const std::string root_;
  const std::string id_;
  int fd_;
  const std::string temp_;
  const int64_t max_size_;
  static constexpr int64_t kWindow = 32 << 20;
  int64_t size_ = 0;
  int64_t flushed_ = 0;  // bytes whose write-back has been started
  bool committed_ = false;
  EVP_MD_CTX* ctx_;
};

class FileBlobStore : public BlobStore {
 public:
  explicit FileBlobStore(std::string root) : root_(std::move(root)) {}

  Result<std::unique_ptr<BlobWriter>> NewWriter(int64_t max_size) override {
    std::string id = NewUuid();
    std::string temp = root_ + "/tmp/" + id + ".part";
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Errno("create " + temp);
    return std::unique_ptr<BlobWriter>(new FileBlobWriter(root_, id, fd, temp, max_size));
  }

  Result<std::string> LocalPath(const std::string& id) override {
    if (!IsUuid(id)) return NotFoundError("no blob with id " + id.substr(0, 64));
    std::string path = root_ + "/" + id.substr(0, 2) + "/" + id;
    if (::access(path.c_str(), R_OK) != 0)
      return NotFoundError("the bytes of blob " + id + " are missing");
    return path;
  }

  Status Delete(const std::string& id) override {
    if (!IsUuid(id)) return Status::Ok();
    std::string path = root_ + "/" + id.substr(0, 2) + "/" + id;
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("unlink " + path);
    return Status::Ok();
  }

  Result<std::vector<std::string>> List() override {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& sub : fs::directory_iterator(root_, ec)) {
      if (!sub.is_directory() || sub.path().filename() == "tmp") continue;
      for (const auto& f : fs::directory_iterator(sub.path(), ec)) {
        std::string name = f.path().filename().string();
        if (IsUuid(name)) out.push_back(name);
      }
    }
    if (ec) return InternalError("listing blobs: " + ec.message());
    return out;
  }

  std::string ScratchPath() override { return root_ + "/tmp/" + NewUuid() + ".scratch"; }

  Status RemoveTemporaryFiles() override {
    std::error_code ec;
    for (const auto& f : fs::directory_iterator(root_ + "/tmp", ec)) fs::remove(f.path(), ec);
    if (ec) return InternalError("cleaning " + root_ + "/tmp: " + ec.message());
    return Status::Ok();
  }

 private:
  const std::string root_;
};

}  // namespace

Result<std::unique_ptr<BlobStore>> NewFileBlobStore(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir + "/tmp", ec);
  if (ec) return UnavailableError("cannot create blob directory " + dir + ": " + ec.message());
  return std::unique_ptr<BlobStore>(new FileBlobStore(dir));
}

}  // namespace datasite::blob
