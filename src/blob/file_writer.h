// FileWriter: writes one new file front to back, for the blob store's uploads and the sync bundle's
// staged blobs alike.
//
// Where the file system allows, the bytes go to disk with O_DIRECT: Append copies them into an
// aligned 1 MiB block, and a thread of the writer's own writes full blocks in order while the
// caller fills the next. No copy into the page cache (on this project's machines that copy was
// half the server's CPU on a large upload, and it slows down under memory pressure), the disk busy
// while the caller hashes, and nothing left for the fsync at Sync but the tail. Elsewhere (a file
// system without O_DIRECT, or kPageCache) it writes through the page cache and starts write-back of
// every full window early, so that dirty pages stay bounded. Small files, which never fill a block,
// start no thread.
#ifndef DATASITE_BLOB_FILE_WRITER_H_
#define DATASITE_BLOB_FILE_WRITER_H_

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/status.h"

namespace datasite::blob {

// How a file is written. kDirect writes with O_DIRECT from an aligned buffer where the file system
// supports it (and through the page cache where it does not); kPageCache always writes through the
// page cache.
enum class BlobWriteMode { kDirect, kPageCache };

// The Status of a failed system call on `what` (errno): kResourceExhausted "disk full: ..." for
// ENOSPC/EDQUOT, kUnavailable for a read-only or forbidden file system, kInternal otherwise.
Status FileErrno(const std::string& what);

// Not thread-safe (one caller); the thread it starts is its own business. The first error is for
// good: every later call returns it, so that a file one of whose writes failed is never reported
// whole. Destroying it closes the file (after the write in progress; blocks still queued are
// dropped) and leaves it where it is: removing an unfinished file is the owner's call.
class FileWriter {
 public:
  // Creates `path`, which must not exist yet, with `permissions` (less the umask).
  static Result<std::unique_ptr<FileWriter>> Create(const std::string& path, BlobWriteMode mode,
                                                    int permissions = 0600);
  ~FileWriter();
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  Status Append(std::string_view bytes);
  // Hands every appended byte to the file, so that it may be read there; Append may follow.
  Status Flush();
  // Flush, then fsync: every appended byte is durable. Append may follow.
  Status Sync();
  // Sync, then close. Nothing may follow.
  Status Close();

  const std::string& path() const { return path_; }
  // Bytes appended so far.
  int64_t size() const { return size_; }

 private:
  FileWriter(int fd, std::string path, BlobWriteMode mode);

  Status FlushStaged();
  // The first error so far (the writer thread's included); records `st` as it when it is the
  // first, and returns the first.
  Status FirstError();
  Status Failed(Status st);
  Status WriteAt(const char* data, size_t n, int64_t offset);
  Result<char*> TakeBlock();
  void ReturnBlock(char* b);
  void Submit(char* block);
  Status Drain();
  void WriteQueued();
  void StopThread();
  Status AppendBuffered(std::string_view bytes);

  static constexpr size_t kAlign = 4096;        // safe for every logical block size in use
  static constexpr size_t kBlock = 1 << 20;     // one direct write
  static constexpr size_t kBlocks = 3;          // one filling, up to two queued or being written
  static constexpr int64_t kWindow = 32 << 20;  // write-behind window without O_DIRECT

  int fd_;
  const std::string path_;
  bool direct_ = false;    // the file is open with O_DIRECT
  int64_t size_ = 0;       // bytes appended
  int64_t flushed_ = 0;    // bytes whose write-back has been started (page-cache mode)
  char* stage_ = nullptr;  // the block being filled (direct mode), and how much of it is
  size_t staged_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<char*> blocks_;  // every block allocated (direct mode)
  std::vector<char*> free_;    // GUARDED_BY(mu_)
  std::deque<char*> queue_;    // GUARDED_BY(mu_): full blocks to write, the front one being written
  int64_t written_ = 0;        // GUARDED_BY(mu_) while the thread runs: bytes in the file
  Status error_;               // GUARDED_BY(mu_): the first error, for good
  bool stop_ = false;          // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace datasite::blob

#endif  // DATASITE_BLOB_FILE_WRITER_H_
