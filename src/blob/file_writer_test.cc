#include "blob/file_writer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <filesystem>
#include <string>

#include "core/random.h"

namespace datasite::blob {
namespace {

namespace fs = std::filesystem;

// Lowers RLIMIT_FSIZE for the test's lifetime (a write past it fails with EFBIG, as on a full
// disk) and ignores the SIGXFSZ it raises.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &old_);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = old_;
    small.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &small);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  struct rlimit old_;
  sighandler_t old_handler_;
};

class FileWriterTest : public ::testing::TestWithParam<BlobWriteMode> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("filewriter-" + NewUuid());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// A failed write is for good: no later Flush, Sync or Close reports the file whole, whether the
// write failed in Append (page cache), in the writer's thread or in the tail of a Flush (direct).
TEST_P(FileWriterTest, TheFirstErrorIsReturnedByEveryLaterCall) {
  const size_t kMiB = 1 << 20;
  for (size_t size : {kMiB + 4196, 3 * kMiB, 5 * kMiB + 7}) {
    std::string path = (dir_ / ("f" + std::to_string(size))).string();
    auto w = FileWriter::Create(path, GetParam());
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    Status first = Status::Ok();
    {
      FileSizeLimit limit(kMiB + 4096);
      std::string bytes(size, 'x');
      for (size_t at = 0; at < size && first.ok(); at += 65536) {
        first = (*w)->Append(std::string_view(bytes).substr(at, 65536));
      }
      if (first.ok()) first = (*w)->Flush();
    }
    ASSERT_FALSE(first.ok()) << "size " << size;
    EXPECT_FALSE((*w)->Flush().ok()) << "size " << size;
    EXPECT_FALSE((*w)->Append("more").ok()) << "size " << size;
    EXPECT_FALSE((*w)->Sync().ok()) << "size " << size;
    EXPECT_FALSE((*w)->Close().ok()) << "size " << size;
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, FileWriterTest,
                         ::testing::Values(BlobWriteMode::kDirect, BlobWriteMode::kPageCache));

}  // namespace
}  // namespace datasite::blob
