#include <fcntl.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "blob/blob_store.h"
#include "blob/o_direct_test_util.h"
#include "core/random.h"

namespace datasite::blob {
namespace {

namespace fs = std::filesystem;

class FileBlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto());
    std::string tmpl = ::testing::TempDir() + "blobXXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto store = NewFileBlobStore(dir_ + "/blobs");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  void TearDown() override { fs::remove_all(dir_); }

  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Every byte of blob `id`, read through a BlobReader.
  static std::string ReadBlob(BlobStore& store, const std::string& id) {
    auto reader = store.Open(id);
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    if (!reader.ok()) return "";
    std::string out(static_cast<size_t>((*reader)->size()), '\0');
    auto got = (*reader)->ReadAt(0, out.data(), out.size());
    EXPECT_TRUE(got.ok() && *got == out.size());
    return out;
  }
  // The files under `tmp` of the store at `root` (uploads in progress, scratch files).
  static std::vector<std::string> TempFiles(const std::string& root) {
    std::vector<std::string> out;
    for (const auto& f : fs::directory_iterator(root + "/tmp")) out.push_back(f.path().string());
    return out;
  }

  // Sets a file's modification time `seconds` before now.
  static void Age(const std::string& path, int64_t seconds) {
    struct timespec times[2];
    times[0].tv_sec = times[1].tv_sec = ::time(nullptr) - seconds;
    times[0].tv_nsec = times[1].tv_nsec = 0;
    ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0) << path;
  }
  // An hour ago, the bound a process sharing the store cleans up with.
  static int64_t AnHourAgo() { return ::time(nullptr) - 3600; }

  std::string dir_;
  std::unique_ptr<BlobStore> store_;
};

TEST_F(FileBlobStoreTest, CommitRecordsSizeAndSha256) {
  auto w = store_->NewWriter(1 << 20);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("hello ").ok());
  ASSERT_TRUE((*w)->Append("world").ok());
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, 11);
  // sha256("hello world")
  EXPECT_EQ(info->sha256, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
  EXPECT_EQ(ReadBlob(*store_, info->id), "hello world");
}

TEST_F(FileBlobStoreTest, EmptyBlobHasTheEmptyHash) {
  auto w = store_->NewWriter(10);
  ASSERT_TRUE(w.ok());
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->size, 0);
  EXPECT_EQ(info->sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_F(FileBlobStoreTest, AbandonedWriterLeavesNothing) {
  {
    auto w = store_->NewWriter(100);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append("secret").ok());
    ASSERT_EQ(TempFiles(dir_ + "/blobs").size(), 1u);
  }
  EXPECT_TRUE(TempFiles(dir_ + "/blobs").empty());
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(FileBlobStoreTest, AppendPastLimitIsResourceExhausted) {
  auto w = store_->NewWriter(5);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("12345").ok());
  EXPECT_EQ((*w)->Append("6").code(), StatusCode::kResourceExhausted);
}

TEST_F(FileBlobStoreTest, ListAndDelete) {
  auto w = store_->NewWriter(100);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("x").ok());
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.ok());
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0], info->id);
  ASSERT_TRUE(store_->Delete(info->id).ok());
  EXPECT_EQ(store_->Open(info->id).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Materialize(info->id).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->Delete(info->id).ok());  // idempotent
}

TEST_F(FileBlobStoreTest, OpenAndMaterializeRefuseNonUuidIds) {
  for (const std::string id : {"../../etc/passwd", ""}) {
    EXPECT_EQ(store_->Open(id).status().code(), StatusCode::kNotFound) << id;
    EXPECT_EQ(store_->Materialize(id).status().code(), StatusCode::kNotFound) << id;
  }
}

TEST_F(FileBlobStoreTest, RemoveTemporaryFilesClearsBrokenUploads) {
  std::ofstream(dir_ + "/blobs/tmp/left-over.part") << "half";
  ASSERT_TRUE(store_->RemoveTemporaryFiles().ok());
  EXPECT_FALSE(fs::exists(dir_ + "/blobs/tmp/left-over.part"));
}

// Another process sharing the store (a replica starting) must not remove an upload in flight.
TEST_F(FileBlobStoreTest, RemoveTemporaryFilesBeforeABoundKeepsRecentOnes) {
  auto w = store_->NewWriter(1 << 20);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("in flight").ok());
  auto in_flight = TempFiles(dir_ + "/blobs");
  ASSERT_EQ(in_flight.size(), 1u);
  std::string old = dir_ + "/blobs/tmp/left-over.part";
  std::ofstream(old) << "half";
  Age(old, 2 * 3600);
  ASSERT_TRUE(store_->RemoveTemporaryFiles(AnHourAgo()).ok());
  EXPECT_TRUE(fs::exists(in_flight[0]));
  EXPECT_FALSE(fs::exists(old));
  EXPECT_TRUE((*w)->Commit().ok());
}

// A blob committed by another process whose row is not written yet is not an orphan to remove.
TEST_F(FileBlobStoreTest, ListBeforeABoundLeavesOutRecentBlobs) {
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    auto w = store_->NewWriter(1 << 20);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append("blob").ok());
    auto info = (*w)->Commit();
    ASSERT_TRUE(info.ok());
    ids.push_back(info->id);
  }
  Age(store_->Materialize(ids[0])->path(), 2 * 3600);
  auto list = store_->List(AnHourAgo());
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, std::vector<std::string>{ids[0]});
  EXPECT_EQ(store_->List()->size(), 2u);
}

// A file staged long ago and adopted now is a fresh blob, until its row is written.
TEST_F(FileBlobStoreTest, AdoptedFileCountsAsWrittenNow) {
  std::string scratch = store_->ScratchPath();
  std::ofstream(scratch, std::ios::binary) << "abc";
  Age(scratch, 2 * 3600);
  auto info = store_->AdoptFile(scratch, 3, std::string(64, '0'));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(store_->List(AnHourAgo())->empty());
}

std::string Sha256Hex(const std::string& bytes) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(bytes.data(), bytes.size(), d, &n, EVP_sha256(), nullptr);
  return HexEncode(std::string_view(reinterpret_cast<char*>(d), n));
}

// Every size around the 4 KiB blocks and the 1 MiB staging buffer, appended in pieces of every
// shape, reads back byte for byte with the right hash, in both write modes.
class FileBlobWriteModeTest : public FileBlobStoreTest,
                              public ::testing::WithParamInterface<BlobWriteMode> {};

TEST_P(FileBlobWriteModeTest, EverySizeAndChunkingRoundTrips) {
  auto store = NewFileBlobStore(dir_ + "/modes", GetParam());
  ASSERT_TRUE(store.ok());
  std::mt19937 rng(7);
  const size_t kMiB = 1 << 20;
  for (size_t size : {size_t{1}, size_t{4095}, size_t{4096}, size_t{4097}, kMiB - 1, kMiB, kMiB + 1,
                      3 * kMiB + 4096, 3 * kMiB + 12345}) {
    std::string bytes(size, '\0');
    for (auto& c : bytes) c = static_cast<char>(rng());
    for (size_t piece : {size_t{1000}, size_t{65536}, kMiB, 3 * kMiB}) {
      auto w = (*store)->NewWriter(int64_t{1} << 30);
      ASSERT_TRUE(w.ok());
      for (size_t at = 0; at < size; at += piece) {
        ASSERT_TRUE((*w)->Append(std::string_view(bytes).substr(at, piece)).ok());
      }
      if (size >= kMiB) {
        EXPECT_EQ(OpenWithODirect(TempFiles(dir_ + "/modes").at(0)),
                  GetParam() == BlobWriteMode::kDirect)
            << "size " << size;
      }
      auto info = (*w)->Commit();
      ASSERT_TRUE(info.ok()) << info.status().ToString();
      EXPECT_EQ(info->size, static_cast<int64_t>(size));
      EXPECT_EQ(info->sha256, Sha256Hex(bytes)) << "size " << size << " piece " << piece;
      EXPECT_TRUE(ReadBlob(**store, info->id) == bytes) << "size " << size << " piece " << piece;
      ASSERT_TRUE((*store)->Delete(info->id).ok());
    }
  }
}

// A write that fails (here: past RLIMIT_FSIZE, as a full disk would) fails the upload, whether it
// happens in the caller or in the writer's thread, and leaves nothing behind.
TEST_P(FileBlobWriteModeTest, WriteErrorFailsTheUploadAndLeavesNothing) {
  auto store = NewFileBlobStore(dir_ + "/modes", GetParam());
  ASSERT_TRUE(store.ok());
  struct rlimit old_limit;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 2 << 20;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string temp;
  Status failed = Status::Ok();
  {
    auto w = (*store)->NewWriter(int64_t{1} << 30);
    ASSERT_TRUE(w.ok());
    temp = TempFiles(dir_ + "/modes").at(0);
    std::string block(1 << 20, 'x');
    for (int i = 0; i < 16 && failed.ok(); ++i) failed = (*w)->Append(block);
    if (failed.ok()) failed = (*w)->Commit().status();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("write"), std::string::npos) << failed.ToString();
  EXPECT_FALSE(fs::exists(temp));
  auto list = (*store)->List();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

INSTANTIATE_TEST_SUITE_P(Modes, FileBlobWriteModeTest,
                         ::testing::Values(BlobWriteMode::kDirect, BlobWriteMode::kPageCache));

TEST_F(FileBlobStoreTest, AdoptFileMovesAScratchFileIntoTheStore) {
  std::string scratch = store_->ScratchPath();
  std::ofstream(scratch, std::ios::binary) << "hello world";
  struct stat before;
  ASSERT_EQ(::stat(scratch.c_str(), &before), 0);
  const std::string sha = "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9";
  auto info = store_->AdoptFile(scratch, 11, sha);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(IsUuid(info->id));
  EXPECT_EQ(info->size, 11);
  EXPECT_EQ(info->sha256, sha);
  EXPECT_FALSE(fs::exists(scratch));
  EXPECT_EQ(ReadBlob(*store_, info->id), "hello world");
  // Renamed, not copied: the same inode.
  auto file = store_->Materialize(info->id);
  ASSERT_TRUE(file.ok());
  struct stat after;
  ASSERT_EQ(::stat(file->path().c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino);
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, std::vector<std::string>{info->id});
}

TEST_F(FileBlobStoreTest, AdoptFileOfTheWrongSizeLeavesTheFile) {
  std::string scratch = store_->ScratchPath();
  std::ofstream(scratch, std::ios::binary) << "abc";
  auto info = store_->AdoptFile(scratch, 4, std::string(64, '0'));
  EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(fs::exists(scratch));
  EXPECT_TRUE(store_->List()->empty());
}

TEST_F(FileBlobStoreTest, AdoptFileRefusesMissingFilesAndNonFiles) {
  EXPECT_EQ(store_->AdoptFile(dir_ + "/nothing", 0, std::string(64, '0')).status().code(),
            StatusCode::kNotFound);
  std::string link = store_->ScratchPath();
  std::string target = dir_ + "/target";
  std::ofstream(target) << "x";
  ASSERT_EQ(::symlink(target.c_str(), link.c_str()), 0);
  EXPECT_EQ(store_->AdoptFile(link, 1, std::string(64, '0')).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->AdoptFile(dir_, 0, std::string(64, '0')).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_TRUE(store_->List()->empty());
}

TEST_F(FileBlobStoreTest, AdoptFileFromAnotherFileSystemIsRefused) {
  struct stat shm, ours;
  if (::stat("/dev/shm", &shm) != 0 || ::stat(dir_.c_str(), &ours) != 0 ||
      shm.st_dev == ours.st_dev) {
    GTEST_SKIP() << "no second file system to adopt from";
  }
  std::string other = "/dev/shm/adopt-" + NewUuid();
  std::ofstream(other) << "x";
  auto info = store_->AdoptFile(other, 1, std::string(64, '0'));
  EXPECT_EQ(info.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(fs::exists(other));
  fs::remove(other);
}

}  // namespace
}  // namespace datasite::blob
