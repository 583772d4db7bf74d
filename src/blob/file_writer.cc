#ifndef _GNU_SOURCE
#define _GNU_SOURCE  // sync_file_range, O_DIRECT
#endif
#include "blob/file_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace datasite::blob {

Status FileErrno(const std::string& what) {
  int e = errno;
  std::string msg = what + ": " + std::strerror(e);
  if (e == ENOSPC || e == EDQUOT) return ResourceExhaustedError("disk full: " + msg);
  if (e == EROFS || e == EACCES || e == EPERM)
    return UnavailableError("storage is not writable: " + msg);
  return InternalError(msg);
}

Result<std::unique_ptr<FileWriter>> FileWriter::Create(const std::string& path, BlobWriteMode mode,
                                                       int permissions) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  static_cast<mode_t>(permissions));
  if (fd < 0) return FileErrno("create " + path);
  return std::unique_ptr<FileWriter>(new FileWriter(fd, path, mode));
}

FileWriter::FileWriter(int fd, std::string path, BlobWriteMode mode)
    : fd_(fd), path_(std::move(path)) {
  int flags = ::fcntl(fd_, F_GETFL);
  direct_ =
      mode == BlobWriteMode::kDirect && flags >= 0 && ::fcntl(fd_, F_SETFL, flags | O_DIRECT) == 0;
}

FileWriter::~FileWriter() {
  StopThread();
  for (char* b : blocks_) std::free(b);
  if (fd_ >= 0) ::close(fd_);
}

Status FileWriter::Append(std::string_view bytes) {
  if (fd_ < 0) return FailedPreconditionError("file writer is closed");
  RETURN_IF_ERROR(FirstError());
  size_ += static_cast<int64_t>(bytes.size());
  if (!direct_) return Failed(AppendBuffered(bytes));
  while (!bytes.empty()) {
    if (stage_ == nullptr) {
      auto block = TakeBlock();
      if (!block.ok()) return Failed(block.status());
      stage_ = *block;
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

Status FileWriter::Flush() {
  if (fd_ < 0) return FailedPreconditionError("file writer is closed");
  RETURN_IF_ERROR(FirstError());
  return Failed(FlushStaged());
}

Status FileWriter::FlushStaged() {
  if (!direct_) return Status::Ok();
  RETURN_IF_ERROR(Drain());
  if (staged_ == 0) return Status::Ok();
  // The writer thread is idle. The aligned part of the partial block goes direct; its last partial
  // 4 KiB can't, so from here on the file is written through the page cache.
  size_t aligned = staged_ / kAlign * kAlign;
  size_t rest = staged_ - aligned;
  RETURN_IF_ERROR(WriteAt(stage_, aligned, written_));
  written_ += static_cast<int64_t>(aligned);
  if (rest > 0) {
    StopThread();
    int flags = ::fcntl(fd_, F_GETFL);
    if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0) {
      return FileErrno("fcntl " + path_);
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

Status FileWriter::Sync() {
  RETURN_IF_ERROR(Flush());
  if (::fsync(fd_) != 0) return Failed(FileErrno("fsync " + path_));
  return Status::Ok();
}

Status FileWriter::FirstError() {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

Status FileWriter::Failed(Status st) {
  if (st.ok()) return st;
  std::lock_guard<std::mutex> lock(mu_);
  if (error_.ok()) error_ = std::move(st);
  return error_;
}

Status FileWriter::Close() {
  RETURN_IF_ERROR(Sync());
  StopThread();
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return FileErrno("close " + path_);
  return Status::Ok();
}

Status FileWriter::WriteAt(const char* data, size_t n, int64_t offset) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = ::pwrite(fd_, data + done, n - done, offset + static_cast<int64_t>(done));
    if (w < 0) {
      if (errno == EINTR) continue;
      return FileErrno("write " + path_);
    }
    if (w == 0) return InternalError("write " + path_ + " made no progress");
    done += static_cast<size_t>(w);
  }
  return Status::Ok();
}

// A block to fill: a new one while fewer than kBlocks exist, else one the thread has written.
Result<char*> FileWriter::TakeBlock() {
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

void FileWriter::ReturnBlock(char* b) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(b);
}

// Queues a full block for writing after those queued before it.
void FileWriter::Submit(char* block) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_.push_back(block);
  if (!thread_.joinable()) thread_ = std::thread([this] { WriteQueued(); });
  cv_.notify_all();
}

// Waits until every queued block is on disk; the first write error, if any.
Status FileWriter::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return queue_.empty(); });
  return error_;
}

// The writer thread. After an error it drops what is queued; the caller sees the error.
void FileWriter::WriteQueued() {
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
void FileWriter::StopThread() {
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

Status FileWriter::AppendBuffered(std::string_view bytes) {
  RETURN_IF_ERROR(WriteAt(bytes.data(), bytes.size(), written_));
  written_ += static_cast<int64_t>(bytes.size());
  // Write-behind: start writing each full window to disk now, and wait for the window before it,
  // so that the fsync at Sync has little left to do and dirty pages stay bounded.
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

}  // namespace datasite::blob
