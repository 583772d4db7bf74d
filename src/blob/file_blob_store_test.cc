#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "blob/blob_store.h"
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
  auto path = store_->LocalPath(info->id);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(Read(*path), "hello world");
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
  std::string temp;
  {
    auto w = store_->NewWriter(100);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append("secret").ok());
    temp = (*w)->temp_path();
    EXPECT_TRUE(fs::exists(temp));
  }
  EXPECT_FALSE(fs::exists(temp));
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
  EXPECT_EQ(store_->LocalPath(info->id).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->Delete(info->id).ok());  // idempotent
}

TEST_F(FileBlobStoreTest, LocalPathRefusesNonUuidIds) {
  EXPECT_EQ(store_->LocalPath("../../etc/passwd").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->LocalPath("").status().code(), StatusCode::kNotFound);
}

TEST_F(FileBlobStoreTest, RemoveTemporaryFilesClearsBrokenUploads) {
  std::ofstream(dir_ + "/blobs/tmp/left-over.part") << "half";
  ASSERT_TRUE(store_->RemoveTemporaryFiles().ok());
  EXPECT_FALSE(fs::exists(dir_ + "/blobs/tmp/left-over.part"));
}

}  // namespace
}  // namespace datasite::blob
