#include "data/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace datasite::data::internal {
namespace {

Status WriteError(const std::string& path, int err) {
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
    return ResourceExhaustedError("no space left to write the file: " + std::string(strerror(err)));
  }
  return InternalError("writing " + path + ": " + strerror(err));
}

}  // namespace

Result<InputFile> InputFile::Open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) return NotFoundError("the file to read does not exist");
    return InternalError("opening " + path + ": " + strerror(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return InternalError("reading " + path + ": " + strerror(err));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return InternalError("reading " + path + ": it is a directory");
  }
  return InputFile(fd, static_cast<uint64_t>(st.st_size));
}

InputFile::InputFile(int fd, uint64_t size)
    : fd_(fd), size_(size), buf_(std::make_unique<char[]>(kIoBufferSize)) {}

InputFile::InputFile(InputFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      size_(other.size_),
      buf_(std::move(other.buf_)),
      pos_(std::exchange(other.pos_, 0)),
      len_(std::exchange(other.len_, 0)),
      status_(std::move(other.status_)) {}

InputFile& InputFile::operator=(InputFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    buf_ = std::move(other.buf_);
    pos_ = std::exchange(other.pos_, 0);
    len_ = std::exchange(other.len_, 0);
    status_ = std::move(other.status_);
  }
  return *this;
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

bool InputFile::Refill() {
  pos_ = 0;
  len_ = 0;
  if (fd_ < 0 || !status_.ok()) return false;
  for (;;) {
    ssize_t n = ::read(fd_, buf_.get(), kIoBufferSize);
    if (n > 0) {
      len_ = static_cast<size_t>(n);
      return true;
    }
    if (n == 0) return false;
    if (errno == EINTR) continue;
    status_ = InternalError(std::string("reading a file: ") + strerror(errno));
    return false;
  }
}

bool InputFile::ReadExactly(char* out, size_t n) {
  while (n > 0) {
    std::string_view have = Buffered();
    if (have.empty()) return false;
    size_t take = std::min(n, have.size());
    have.copy(out, take);
    Skip(take);
    out += take;
    n -= take;
  }
  return true;
}

Result<OutputFile> OutputFile::Create(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    return InternalError("creating " + path + ": " + strerror(err));
  }
  return OutputFile(fd, path);
}

OutputFile::OutputFile(int fd, std::string path)
    : fd_(fd), path_(std::move(path)), buf_(std::make_unique<char[]>(kIoBufferSize)) {}

OutputFile::OutputFile(OutputFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      buf_(std::move(other.buf_)),
      len_(std::exchange(other.len_, 0)),
      status_(std::move(other.status_)) {}

OutputFile& OutputFile::operator=(OutputFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    buf_ = std::move(other.buf_);
    len_ = std::exchange(other.len_, 0);
    status_ = std::move(other.status_);
  }
  return *this;
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void OutputFile::Flush() {
  size_t done = 0;
  while (status_.ok() && done < len_) {
    ssize_t n = ::write(fd_, buf_.get() + done, len_ - done);
    if (n >= 0) {
      done += static_cast<size_t>(n);
    } else if (errno != EINTR) {
      status_ = WriteError(path_, errno);
    }
  }
  len_ = 0;
}

void OutputFile::WriteSlow(std::string_view bytes) {
  while (!bytes.empty()) {
    if (len_ == kIoBufferSize) Flush();
    size_t take = std::min(bytes.size(), kIoBufferSize - len_);
    bytes.copy(buf_.get() + len_, take);
    len_ += take;
    bytes.remove_prefix(take);
  }
}

Status OutputFile::Close() {
  if (fd_ < 0) return status_.ok() ? InternalError("closing " + path_ + " twice") : status_;
  Flush();
  if (::close(std::exchange(fd_, -1)) != 0 && status_.ok()) status_ = WriteError(path_, errno);
  return status_;
}

}  // namespace datasite::data::internal
