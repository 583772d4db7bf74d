#include "blob/blob_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "core/random.h"

namespace datasite::blob {
namespace {

constexpr size_t kCopyPiece = 1 << 20;  // bytes per read when copying
constexpr off_t kReadAhead = 8 << 20;   // bytes asked of the disk ahead of a sequential reader

// A regular file read with pread. A blob written with O_DIRECT is not in the page cache, so a
// reader going front to back asks the disk for the next pieces while its caller uses this one.
class FileReader : public BlobReader {
 public:
  FileReader(int fd, std::string path, int64_t size)
      : fd_(fd), path_(std::move(path)), size_(size) {}
  ~FileReader() override { ::close(fd_); }

  int64_t size() const override { return size_; }

  Result<size_t> ReadAt(int64_t offset, char* buf, size_t n) override {
    if (offset < 0) return InvalidArgumentError("a negative offset into blob " + path_);
    if (offset >= size_) return size_t{0};
    size_t want = static_cast<size_t>(std::min<int64_t>(size_ - offset, static_cast<int64_t>(n)));
    size_t done = 0;
    while (done < want) {
      ssize_t got = ::pread(fd_, buf + done, want - done, offset + static_cast<int64_t>(done));
      if (got < 0) {
        if (errno == EINTR) continue;
        return FileErrno("read " + path_);
      }
      if (got == 0) return InternalError("the file " + path_ + " ended before its recorded size");
      done += static_cast<size_t>(got);
    }
    int64_t end = offset + static_cast<int64_t>(done);
    if (end < size_) (void)::posix_fadvise(fd_, end, kReadAhead, POSIX_FADV_WILLNEED);
    return done;
  }

 private:
  const int fd_;
  const std::string path_;
  const int64_t size_;
};

}  // namespace

Result<size_t> BlobReader::Read(char* buf, size_t n) {
  ASSIGN_OR_RETURN(size_t got, ReadAt(position_, buf, n));
  position_ += static_cast<int64_t>(got);
  return got;
}

LocalFile::~LocalFile() { Release(); }

LocalFile::LocalFile(LocalFile&& other) noexcept
    : path_(std::move(other.path_)), remove_(other.remove_) {
  other.path_.clear();
  other.remove_ = false;
}

LocalFile& LocalFile::operator=(LocalFile&& other) noexcept {
  if (this != &other) {
    Release();
    path_ = std::move(other.path_);
    remove_ = other.remove_;
    other.path_.clear();
    other.remove_ = false;
  }
  return *this;
}

void LocalFile::Release() {
  if (remove_ && !path_.empty()) ::unlink(path_.c_str());
  path_.clear();
  remove_ = false;
}

Result<std::unique_ptr<BlobReader>> OpenFileReader(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFoundError("no file at " + path);
    return FileErrno("open " + path);
  }
  struct stat st;
  Status bad = ::fstat(fd, &st) != 0  ? FileErrno("stat " + path)
               : !S_ISREG(st.st_mode) ? FailedPreconditionError(path + " is not a regular file")
                                      : Status::Ok();
  if (!bad.ok()) {
    ::close(fd);
    return bad;
  }
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::unique_ptr<BlobReader>(new FileReader(fd, path, st.st_size));
}

Status CopyToFile(BlobReader& reader, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<FileWriter> file,
                   FileWriter::Create(path, BlobWriteMode::kPageCache));
  auto copy = [&]() -> Status {
    std::vector<char> buf(kCopyPiece);
    for (int64_t at = 0; at < reader.size();) {
      ASSIGN_OR_RETURN(size_t got, reader.ReadAt(at, buf.data(), buf.size()));
      if (got == 0) return InternalError("blob ended early while copied to " + path);
      RETURN_IF_ERROR(file->Append(std::string_view(buf.data(), got)));
      at += static_cast<int64_t>(got);
    }
    return file->Close();
  };
  Status st = copy();
  if (!st.ok()) {
    file.reset();  // closed before it is removed
    ::unlink(path.c_str());
  }
  return st;
}

Result<std::unique_ptr<BlobWriter>> BlobStore::NewWriter(int64_t max_size,
                                                         std::optional<int64_t> exact_size) {
  return NewWriterFor(NewUuid(), max_size, exact_size);
}

bool IsBlobId(std::string_view id) {
  if (id.size() == 36) return IsUuid(id);
  if (id.size() < 38 || id.size() > 46 || id[36] != '.' || !IsUuid(id.substr(0, 36))) return false;
  return id.substr(37).find_first_not_of("0123456789") == std::string_view::npos;
}

Result<std::pair<std::string, int64_t>> Sha256OfFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<BlobReader> reader, OpenFileReader(path));
  return Sha256Of(*reader);
}

Result<std::pair<std::string, int64_t>> Sha256Of(BlobReader& reader) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return InternalError("no SHA-256 context");
  }
  std::vector<char> buf(kCopyPiece);
  for (;;) {
    ASSIGN_OR_RETURN(size_t got, reader.Read(buf.data(), buf.size()));
    if (got == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), got);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return std::make_pair(HexEncode(std::string_view(reinterpret_cast<char*>(digest), len)),
                        reader.size());
}

Status CheckExactSizeFits(std::optional<int64_t> exact, int64_t max_size) {
  if (!exact || *exact <= max_size) return Status::Ok();
  return ResourceExhaustedError("the upload is larger than the limit of " +
                                std::to_string(max_size) + " bytes");
}

Status CheckAppendWithin(std::optional<int64_t> exact, int64_t written, size_t n) {
  if (!exact || written + static_cast<int64_t>(n) <= *exact) return Status::Ok();
  return InvalidArgumentError("the upload is larger than the " + std::to_string(*exact) +
                              " bytes it announced");
}

Status CheckExactSize(std::optional<int64_t> exact, int64_t written) {
  if (!exact || *exact == written) return Status::Ok();
  return InvalidArgumentError("the upload announced " + std::to_string(*exact) +
                              " bytes and sent " + std::to_string(written));
}

Result<LocalFile> BlobStore::Materialize(const std::string& id) {
  ASSIGN_OR_RETURN(std::unique_ptr<BlobReader> reader, Open(id));
  std::string path = ScratchPath();
  RETURN_IF_ERROR(CopyToFile(*reader, path));
  return LocalFile(std::move(path), /*remove=*/true);
}

Result<BlobInfo> BlobStore::AdoptFile(const std::string& path, int64_t size,
                                      const std::string& sha256) {
  return AdoptFileAs(NewUuid(), path, size, sha256);
}

Result<BlobInfo> BlobStore::AdoptFileAs(const std::string& id, const std::string& path,
                                        int64_t size, const std::string& sha256) {
  if (!IsBlobId(id)) return InvalidArgumentError("a blob id must be a UUID, or one and .N");
  ASSIGN_OR_RETURN(std::unique_ptr<BlobReader> reader, OpenFileReader(path));
  if (reader->size() != size) {
    return InvalidArgumentError(path + " holds " + std::to_string(reader->size()) +
                                " bytes, not the " + std::to_string(size) + " expected");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<BlobWriter> writer, NewWriterFor(id, size, size));
  std::vector<char> buf(kCopyPiece);
  for (int64_t at = 0; at < size;) {
    ASSIGN_OR_RETURN(size_t got, reader->ReadAt(at, buf.data(), buf.size()));
    RETURN_IF_ERROR(writer->Append(std::string_view(buf.data(), got)));
    at += static_cast<int64_t>(got);
  }
  ASSIGN_OR_RETURN(BlobInfo info, writer->Commit());
  // The bytes are checked here, once more, on their way into the store.
  if (info.sha256 != sha256) {
    (void)Delete(info.id);
    return InternalError("the file " + path + " no longer has the SHA-256 " + sha256);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    Status st = FileErrno("unlink " + path);
    (void)Delete(info.id);  // the file stays the one copy: adopting it again must be possible
    return st;
  }
  return info;
}

}  // namespace datasite::blob
