#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // sync_file_range
#endif
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

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

// Writes an upload to its temporary file while hashing it. Where the file system allows, the bytes
// go to disk with O_DIRECT: the caller hashes each piece and copies it into an aligned 1 MiB block,
// and a thread of the writer's own writes full blocks in order while the caller fills the next.
// No copy into the page cache (which was half the server's CPU on a large upload), the disk busy
// while the CPU hashes, and nothing left for the fsync at Commit but the tail and the metadata.
// Elsewhere (a file system without O_DIRECT) it writes through the page cache and starts write-back
// of every full window early, so that dirty pages stay bounded. Small uploads, which never fill a
// block, start no thread.
class FileBlobWriter : public BlobWriter {
 public:
  FileBlobWriter(std::string root, std::string id, int fd, std::string temp, int64_t max_size,
                 BlobWriteMode mode)
      : root_(std::move(root)),
        id_(std::move(id)),
        fd_(fd),
        temp_(std::move(temp)),
        max_size_(max_size) {
    ctx_ = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr);
    int flags = ::fcntl(fd_, F_GETFL);
    direct_ = mode == BlobWriteMode::kDirect && flags >= 0 &&
              ::fcntl(fd_, F_SETFL, flags | O_DIRECT) == 0;
  }

  ~FileBlobWriter() override {
    StopThread();
    for (char* b : blocks_) std::free(b);
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
    size_ += static_cast<int64_t>(bytes.size());
    if (!direct_) return AppendBuffered(bytes);
    while (!bytes.empty()) {
      if (stage_ == nullptr) {
        ASSIGN_OR_RETURN(stage_, TakeBlock());
      }
      size_t n = std::min(bytes.size(), kBlock - staged_);
      std::memcpy(stage_ + staged_, bytes.data(), n);
      staged_ += n;
      bytes.remove_prefix(n);
      if (staged_ == kBlock) {
        Submit(stage_);
        stage_ = nullptr;
        staged_ = 0;
      }
    }
    return Status::Ok();
  }

  Status Flush() override {
    if (fd_ < 0) return FailedPreconditionError("blob writer is closed");
    if (!direct_) return Status::Ok();
    RETURN_IF_ERROR(Drain());
    if (staged_ == 0) return Status::Ok();
    // The writer thread is idle. The aligned part of the partial block goes direct; its last
    // partial 4 KiB can't, so from here on the file is written through the page cache.
    size_t aligned = staged_ / kAlign * kAlign;
    size_t rest = staged_ - aligned;
    RETURN_IF_ERROR(WriteAt(stage_, aligned, written_));
    written_ += static_cast<int64_t>(aligned);
    if (rest > 0) {
      StopThread();
      int flags = ::fcntl(fd_, F_GETFL);
      if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0) {
        return Errno("fcntl " + temp_);
      }
      direct_ = false;
      RETURN_IF_ERROR(WriteAt(stage_ + aligned, rest, written_));
      written_ += static_cast<int64_t>(rest);
      flushed_ = written_;
    }
    ReturnBlock(stage_);
    stage_ = nullptr;
    staged_ = 0;
    return Status::Ok();
  }

  Result<BlobInfo> Commit() override {
    RETURN_IF_ERROR(Flush());
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
  Status WriteAt(const char* data, size_t n, int64_t offset) {
    size_t done = 0;
    while (done < n) {
      ssize_t w = ::pwrite(fd_, data + done, n - done, offset + static_cast<int64_t>(done));
      if (w < 0) {
        if (errno == EINTR) continue;
        return Errno("write " + temp_);
      }
      if (w == 0) return InternalError("write " + temp_ + " made no progress");
      done += static_cast<size_t>(w);
    }
    return Status::Ok();
  }

  // A block to fill: a new one while fewer than kBlocks exist, else one the thread has written.
  Result<char*> TakeBlock() {
    std::unique_lock<std::mutex> lock(mu_);
    if (free_.empty() && blocks_.size() < kBlocks) {
      void* p = nullptr;
      if (::posix_memalign(&p, kAlign, kBlock) != 0) return InternalError("out of memory");
      blocks_.push_back(static_cast<char*>(p));
      return blocks_.back();
    }
    cv_.wait(lock, [&] { return !free_.empty() || !error_.ok(); });
    if (!error_.ok()) return error_;
    char* b = free_.back();
    free_.pop_back();
    return b;
  }

  void ReturnBlock(char* b) {
    std::lock_guard<std::mutex> lock(mu_);
    free_.push_back(b);
  }

  // Queues a full block for writing after those queued before it.
  void Submit(char* block) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(block);
    if (!thread_.joinable()) thread_ = std::thread([this] { WriteQueued(); });
    cv_.notify_all();
  }

  // Waits until every queued block is on disk; the first write error, if any.
  Status Drain() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return queue_.empty(); });
    return error_;
  }

  // The writer thread. After an error it drops what is queued; the caller sees the error.
  void WriteQueued() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      char* block = queue_.front();
      Status st = Status::Ok();
      if (error_.ok()) {
        int64_t offset = written_;
        lock.unlock();
        st = WriteAt(block, kBlock, offset);
        lock.lock();
        if (st.ok()) written_ += static_cast<int64_t>(kBlock);
      }
      if (!st.ok()) error_ = st;
      queue_.pop_front();
      free_.push_back(block);
      cv_.notify_all();
    }
  }

  // Ends the writer thread after the write in progress; blocks still queued are not written.
  void StopThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (char* b : queue_) free_.push_back(b);
    queue_.clear();
    stop_ = false;
  }

  Status AppendBuffered(std::string_view bytes) {
    RETURN_IF_ERROR(WriteAt(bytes.data(), bytes.size(), written_));
    written_ += static_cast<int64_t>(bytes.size());
    // Write-behind: start writing each full window to disk now, and wait for the window before it,
    // so that the fsync at Commit has little left to do and dirty pages stay bounded.
    while (written_ - flushed_ >= kWindow) {
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

  static constexpr size_t kAlign = 4096;        // safe for every logical block size in use
  static constexpr size_t kBlock = 1 << 20;     // one direct write
  static constexpr size_t kBlocks = 3;          // one filling, up to two queued or being written
  static constexpr int64_t kWindow = 32 << 20;  // write-behind window without O_DIRECT
  const std::string root_;
  const std::string id_;
  int fd_;
  const std::string temp_;
  const int64_t max_size_;
  bool direct_ = false;    // the file is open with O_DIRECT
  int64_t size_ = 0;       // bytes appended
  int64_t flushed_ = 0;    // bytes whose write-back has been started (page-cache mode)
  char* stage_ = nullptr;  // the block being filled (direct mode), and how much of it is
  size_t staged_ = 0;
  bool committed_ = false;
  EVP_MD_CTX* ctx_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<char*> blocks_;  // every block allocated (direct mode)
  std::vector<char*> free_;    // GUARDED_BY(mu_)
  std::deque<char*> queue_;    // GUARDED_BY(mu_): full blocks to write, the front one being written
  int64_t written_ = 0;        // GUARDED_BY(mu_) while the thread runs: bytes in the file
  Status error_;               // GUARDED_BY(mu_): the first write error
  bool stop_ = false;          // GUARDED_BY(mu_)
  std::thread thread_;
};

class FileBlobStore : public BlobStore {
 public:
  FileBlobStore(std::string root, BlobWriteMode mode) : root_(std::move(root)), mode_(mode) {}

  Result<std::unique_ptr<BlobWriter>> NewWriter(int64_t max_size) override {
    std::string id = NewUuid();
    std::string temp = root_ + "/tmp/" + id + ".part";
    int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return Errno("create " + temp);
    return std::unique_ptr<BlobWriter>(new FileBlobWriter(root_, id, fd, temp, max_size, mode_));
  }

  Result<std::string> LocalPath(const std::string& id) override {
    if (!IsUuid(id)) return NotFoundError("no blob with id " + id.substr(0, 64));
    std::string path = root_ + "/" + id.substr(0, 2) + "/" + id;
    if (::access(path.c_str(), R_OK) != 0)
      return NotFoundError("the bytes of blob " + id + " are missing");
    return path;
  }

  Result<BlobInfo> AdoptFile(const std::string& path, int64_t size,
                             const std::string& sha256) override {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return NotFoundError("no file to adopt at " + path);
      return Errno("stat " + path);
    }
    if (!S_ISREG(st.st_mode)) return FailedPreconditionError(path + " is not a regular file");
    if (st.st_size != size) {
      return InvalidArgumentError(path + " holds " + std::to_string(st.st_size) +
                                  " bytes, not the " + std::to_string(size) + " expected");
    }
    std::string id = NewUuid();
    std::string dir = root_ + "/" + id.substr(0, 2);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Errno("mkdir " + dir);
    std::string final_path = dir + "/" + id;
    if (::rename(path.c_str(), final_path.c_str()) != 0) {
      if (errno == EXDEV) {
        return FailedPreconditionError(path + " is not on the blob store's file system");
      }
      return Errno("rename to " + final_path);
    }
    RETURN_IF_ERROR(FsyncDir(dir));
    RETURN_IF_ERROR(FsyncDir(root_));
    return BlobInfo{id, size, sha256};
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
