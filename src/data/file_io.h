// Buffered reading and writing of files through fixed-size buffers, so that every parser of this
// module runs in constant memory whatever the size of the file.
#ifndef DATASITE_DATA_FILE_IO_H_
#define DATASITE_DATA_FILE_IO_H_

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace datasite::data::internal {

inline constexpr size_t kIoBufferSize = 64 * 1024;

// A file open for reading through one kIoBufferSize buffer. A read error is sticky: the byte
// accessors then answer kEof and status() tells why, so parsers check status() at the end of the
// input. Not thread-safe.
class InputFile {
 public:
  static constexpr int kEof = -1;

  // kNotFound when nothing is at `path`.
  static Result<InputFile> Open(const std::string& path);

  InputFile(InputFile&& other) noexcept;
  InputFile& operator=(InputFile&& other) noexcept;
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile();

  // The size of the file when it was opened.
  uint64_t size() const { return size_; }
  const Status& status() const { return status_; }

  // The next byte (0-255) and moves past it, or kEof.
  int Get() {
    if (pos_ == len_ && !Refill()) return kEof;
    return static_cast<unsigned char>(buf_[pos_++]);
  }
  // The next byte without moving past it, or kEof.
  int Peek() {
    if (pos_ == len_ && !Refill()) return kEof;
    return static_cast<unsigned char>(buf_[pos_]);
  }
  // The bytes already buffered (refilling first when none are); empty only at the end of the file.
  std::string_view Buffered() {
    if (pos_ == len_) Refill();
    return {buf_.get() + pos_, len_ - pos_};
  }
  // Moves past `n` <= Buffered().size() bytes.
  void Skip(size_t n) { pos_ += n; }
  // Reads exactly `n` bytes into `out`; false (and status() still OK) when the file ends first.
  bool ReadExactly(char* out, size_t n);

 private:
  InputFile(int fd, uint64_t size);
  bool Refill();

  int fd_ = -1;
  uint64_t size_ = 0;
  std::unique_ptr<char[]> buf_;
  size_t pos_ = 0;
  size_t len_ = 0;
  Status status_;
};

// An input iterator over the bytes of an InputFile, for parsers that take iterators
// (nlohmann::json::sax_parse). A default-constructed iterator is the end.
class InputFileIterator {
 public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = char;

  InputFileIterator() = default;
  explicit InputFileIterator(InputFile& file) : file_(&file) {}

  char operator*() const { return static_cast<char>(file_->Peek()); }
  InputFileIterator& operator++() {
    file_->Get();
    return *this;
  }
  InputFileIterator operator++(int) {
    InputFileIterator before = *this;
    file_->Get();
    return before;
  }
  bool operator==(const InputFileIterator& other) const { return AtEnd() == other.AtEnd(); }
  bool operator!=(const InputFileIterator& other) const { return !(*this == other); }

 private:
  bool AtEnd() const { return file_ == nullptr || file_->Peek() == InputFile::kEof; }

  InputFile* file_ = nullptr;
};

// A file created (or truncated) for writing, mode 0600, through one kIoBufferSize buffer. A write
// error is sticky: later writes do nothing and status() tells why. Close() must be called for the
// file to be complete. Not thread-safe.
class OutputFile {
 public:
  static Result<OutputFile> Create(const std::string& path);

  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&& other) noexcept;
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;
  ~OutputFile();

  void Write(std::string_view bytes) {
    if (bytes.size() <= kIoBufferSize - len_) {
      bytes.copy(buf_.get() + len_, bytes.size());
      len_ += bytes.size();
      return;
    }
    WriteSlow(bytes);
  }
  void Put(char c) {
    if (len_ == kIoBufferSize) Flush();
    buf_[len_++] = c;
  }
  const Status& status() const { return status_; }
  // Writes what is buffered and closes the file.
  Status Close();

 private:
  OutputFile(int fd, std::string path);
  void WriteSlow(std::string_view bytes);
  void Flush();

  int fd_ = -1;
  std::string path_;
  std::unique_ptr<char[]> buf_;
  size_t len_ = 0;
  Status status_;
};

}  // namespace datasite::data::internal

#endif  // DATASITE_DATA_FILE_IO_H_
