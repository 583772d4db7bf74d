// The reader, materialised files and adoption, through the directory store and through the
// defaults every other store inherits (called as BlobStore::Materialize / BlobStore::AdoptFile).
#include "blob/blob_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "core/random.h"

namespace datasite::blob {
namespace {

namespace fs = std::filesystem;

class BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto());
    std::string tmpl = ::testing::TempDir() + "blobrdXXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto store = NewFileBlobStore(dir_ + "/blobs");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Put(const std::string& bytes) {
    auto w = store_->NewWriter(int64_t{1} << 30);
    EXPECT_TRUE(w.ok());
    EXPECT_TRUE((*w)->Append(bytes).ok());
    auto info = (*w)->Commit();
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? info->id : "";
  }

  static std::string Random(size_t size, uint32_t seed) {
    std::mt19937 rng(seed);
    std::string s(size, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  }

  // Reads `reader` front to back with Read, `piece` bytes at most per call (and never much more
  // than its size, whatever the reader does).
  static std::string ReadAll(BlobReader& reader, size_t piece) {
    std::string out, buf(piece, '\0');
    while (static_cast<int64_t>(out.size()) <= reader.size()) {
      auto got = reader.Read(buf.data(), buf.size());
      EXPECT_TRUE(got.ok()) << got.status().ToString();
      if (!got.ok() || *got == 0) break;
      out.append(buf.data(), *got);
    }
    return out;
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string dir_;
  std::unique_ptr<BlobStore> store_;
};

TEST_F(BlobStoreTest, AWriterForAnIdCommitsUnderItAndReplacesWhatWasThere) {
  const std::string id = NewUuid();
  for (const std::string& bytes : {std::string("first"), Random(70'000, 3)}) {
    auto w = store_->NewWriterFor(id, 1 << 20);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE((*w)->Append(bytes).ok());
    auto info = (*w)->Commit();
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->id, id);
    auto reader = store_->Open(id);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_TRUE(ReadAll(**reader, 4096) == bytes);
  }
  auto listed = store_->List();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(*listed, std::vector<std::string>{id});
  for (const std::string& bad : {std::string("../x"), std::string(""), id + "/"}) {
    auto w = store_->NewWriterFor(bad, 10);
    ASSERT_FALSE(w.ok()) << bad;
    EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST_F(BlobStoreTest, AWriterGivenAnExactSizeHoldsItToIt) {
  auto fewer = store_->NewWriter(1 << 20, 10);
  ASSERT_TRUE(fewer.ok());
  ASSERT_TRUE((*fewer)->Append("123456789").ok());
  EXPECT_EQ((*fewer)->Commit().status().code(), StatusCode::kInvalidArgument);
  auto more = store_->NewWriter(1 << 20, 10);
  ASSERT_TRUE(more.ok());
  EXPECT_EQ((*more)->Append("12345678901").code(), StatusCode::kInvalidArgument);
  auto exact = store_->NewWriter(1 << 20, 10);
  ASSERT_TRUE(exact.ok());
  ASSERT_TRUE((*exact)->Append("1234567890").ok());
  EXPECT_TRUE((*exact)->Commit().ok());
  EXPECT_EQ(store_->NewWriter(5, 10).status().code(), StatusCode::kResourceExhausted);
  fewer->reset();
  more->reset();
  auto listed = store_->List();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
}

TEST_F(BlobStoreTest, OpenOfAMissingBlobIsNotFound) {
  EXPECT_EQ(store_->Open(NewUuid()).status().code(), StatusCode::kNotFound);
}

TEST_F(BlobStoreTest, EmptyBlobReadsNothingAnywhere) {
  auto reader = store_->Open(Put(""));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->size(), 0);
  char buf[8];
  EXPECT_EQ(*(*reader)->ReadAt(0, buf, sizeof buf), 0u);
  EXPECT_EQ(*(*reader)->ReadAt(100, buf, sizeof buf), 0u);
  EXPECT_EQ(*(*reader)->Read(buf, sizeof buf), 0u);
}

TEST_F(BlobStoreTest, RangedReadsStopAtTheEnd) {
  auto reader = store_->Open(Put("0123456789"));
  ASSERT_TRUE(reader.ok());
  char buf[16];
  auto got = (*reader)->ReadAt(3, buf, 4);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::string(buf, *got), "3456");
  got = (*reader)->ReadAt(7, buf, sizeof buf);  // across the end: what is left
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::string(buf, *got), "789");
  got = (*reader)->ReadAt(6, buf, 4);  // up to exactly the end
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::string(buf, *got), "6789");
  EXPECT_EQ(*(*reader)->ReadAt(10, buf, sizeof buf), 0u);  // at the end
  EXPECT_EQ(*(*reader)->ReadAt(11, buf, sizeof buf), 0u);  // past it
  EXPECT_EQ(*(*reader)->ReadAt(0, buf, 0), 0u);
  EXPECT_EQ((*reader)->ReadAt(-1, buf, 1).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(BlobStoreTest, SequentialReadsFollowEachOther) {
  auto reader = store_->Open(Put("abcdefg"));
  ASSERT_TRUE(reader.ok());
  char buf[3];
  EXPECT_EQ(std::string(buf, *(*reader)->Read(buf, 3)), "abc");
  EXPECT_EQ(std::string(buf, *(*reader)->ReadAt(0, buf, 1)), "a");  // ranged reads move nothing
  EXPECT_EQ(std::string(buf, *(*reader)->Read(buf, 3)), "def");
  EXPECT_EQ(std::string(buf, *(*reader)->Read(buf, 3)), "g");
  EXPECT_EQ((*reader)->position(), 7);
  EXPECT_EQ(*(*reader)->Read(buf, 3), 0u);
}

// Around the 4 KiB blocks and the 1 MiB pieces the store writes and copies in.
TEST_F(BlobStoreTest, LargeBlobReadsBackWholeInEveryBufferSize) {
  const std::string bytes = Random((3 << 20) + 12345, 11);
  const std::string id = Put(bytes);
  for (size_t piece : {size_t{4095}, size_t{4096}, size_t{65537}, size_t{1} << 20,
                       (size_t{1} << 20) + 1, size_t{8} << 20}) {
    auto reader = store_->Open(id);
    ASSERT_TRUE(reader.ok());
    EXPECT_EQ((*reader)->size(), static_cast<int64_t>(bytes.size()));
    EXPECT_TRUE(ReadAll(**reader, piece) == bytes) << "piece " << piece;
  }
  auto reader = store_->Open(id);
  ASSERT_TRUE(reader.ok());
  std::mt19937 rng(3);
  std::string buf(300000, '\0');
  for (int i = 0; i < 50; ++i) {
    int64_t at = rng() % (bytes.size() + 10);
    auto got = (*reader)->ReadAt(at, buf.data(), buf.size());
    ASSERT_TRUE(got.ok());
    size_t expect = at >= static_cast<int64_t>(bytes.size())
                        ? 0
                        : std::min(buf.size(), bytes.size() - static_cast<size_t>(at));
    ASSERT_EQ(*got, expect) << "at " << at;
    EXPECT_TRUE(std::string_view(buf.data(), *got) == std::string_view(bytes).substr(at, expect))
        << "at " << at;
  }
}

TEST_F(BlobStoreTest, ConcurrentReadersEachReadTheWholeBlob) {
  const std::string bytes = Random((2 << 20) + 777, 5);
  const std::string id = Put(bytes);
  constexpr int kReaders = 8;
  std::vector<std::string> seen(kReaders);
  std::vector<std::thread> threads;
  for (int i = 0; i < kReaders; ++i) {
    threads.emplace_back([&, i] {
      auto reader = store_->Open(id);
      if (reader.ok()) seen[i] = ReadAll(**reader, 10000 + 4096 * i);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kReaders; ++i) EXPECT_TRUE(seen[i] == bytes) << "reader " << i;
}

TEST_F(BlobStoreTest, AReaderKeepsItsBytesWhenTheBlobIsDeleted) {
  const std::string id = Put("still here");
  auto reader = store_->Open(id);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(store_->Delete(id).ok());
  EXPECT_EQ(ReadAll(**reader, 4), "still here");
  EXPECT_EQ(store_->Open(id).status().code(), StatusCode::kNotFound);
}

// A file cut short behind the store's back is an error, never a short blob.
TEST_F(BlobStoreTest, AFileShorterThanWhenOpenedIsAnError) {
  const std::string id = Put("0123456789");
  auto reader = store_->Open(id);
  ASSERT_TRUE(reader.ok());
  auto file = store_->Materialize(id);
  ASSERT_TRUE(file.ok());
  ASSERT_EQ(::truncate(file->path().c_str(), 4), 0);
  char buf[16];
  EXPECT_EQ((*reader)->ReadAt(0, buf, sizeof buf).status().code(), StatusCode::kInternal);
}

// The directory store: the committed file itself, read-only for its holder, left in place.
TEST_F(BlobStoreTest, DirectoryStoreMaterializesTheCommittedFile) {
  const std::string id = Put("private rows");
  std::string path;
  {
    auto file = store_->Materialize(id);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    path = file->path();
    EXPECT_EQ(path, dir_ + "/blobs/" + id.substr(0, 2) + "/" + id);
    EXPECT_EQ(ReadFile(path), "private rows");
  }
  EXPECT_TRUE(fs::exists(path));  // released: still the blob
  EXPECT_EQ(store_->Materialize(NewUuid()).status().code(), StatusCode::kNotFound);
}

// The default, for stores without local files: a temporary copy, gone when released.
TEST_F(BlobStoreTest, DefaultMaterializeIsACopyRemovedOnRelease) {
  const std::string bytes = Random((1 << 20) + 5, 9);
  const std::string id = Put(bytes);
  std::string path;
  {
    auto file = store_->BlobStore::Materialize(id);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    path = file->path();
    EXPECT_EQ(fs::path(path).parent_path(), fs::path(dir_ + "/blobs/tmp"));
    EXPECT_TRUE(ReadFile(path) == bytes);
    LocalFile moved = std::move(*file);  // the moved-from one removes nothing
    file = Result<LocalFile>(LocalFile());
    EXPECT_TRUE(fs::exists(path));
    EXPECT_EQ(moved.path(), path);
  }
  EXPECT_FALSE(fs::exists(path));
  auto reader = store_->Open(id);  // the blob itself is untouched
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->size(), static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(store_->BlobStore::Materialize(NewUuid()).status().code(), StatusCode::kNotFound);
}

// A copy left by a crash is a temporary file like any other: start-up removes it.
TEST_F(BlobStoreTest, ACopyLeftBehindIsRemovedWithTheTemporaryFiles) {
  auto file = store_->BlobStore::Materialize(Put("abc"));
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE(store_->RemoveTemporaryFiles().ok());
  EXPECT_FALSE(fs::exists(file->path()));
}

// The default any store can adopt with: the file streamed through a writer, its hash checked.
TEST_F(BlobStoreTest, DefaultAdoptFileStreamsTheFileAndChecksItsHash) {
  const std::string bytes = Random((2 << 20) + 3, 13);
  const std::string staged = dir_ + "/staged";
  std::ofstream(staged, std::ios::binary) << bytes;
  auto w = store_->NewWriter(int64_t{1} << 30);  // only to learn the hash
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(bytes).ok());
  auto hashed = (*w)->Commit();
  ASSERT_TRUE(hashed.ok());
  ASSERT_TRUE(store_->Delete(hashed->id).ok());

  auto wrong = store_->BlobStore::AdoptFileAs(NewUuid(), staged, static_cast<int64_t>(bytes.size()),
                                              std::string(64, '0'));
  EXPECT_EQ(wrong.status().code(), StatusCode::kInternal);
  EXPECT_TRUE(fs::exists(staged));
  EXPECT_TRUE(store_->List()->empty());
  EXPECT_EQ(store_->BlobStore::AdoptFileAs(NewUuid(), staged, 5, hashed->sha256).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      store_->BlobStore::AdoptFileAs(NewUuid(), dir_ + "/none", 0, hashed->sha256).status().code(),
      StatusCode::kNotFound);

  // Into a name of its own (a job run's result), as the directory store's default would.
  const std::string name = NewUuid() + ".3";
  auto info = store_->BlobStore::AdoptFileAs(name, staged, static_cast<int64_t>(bytes.size()),
                                             hashed->sha256);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->id, name);
  EXPECT_EQ(info->sha256, hashed->sha256);
  EXPECT_EQ(info->size, static_cast<int64_t>(bytes.size()));
  EXPECT_FALSE(fs::exists(staged));
  auto reader = store_->Open(info->id);
  ASSERT_TRUE(reader.ok());
  EXPECT_TRUE(ReadAll(**reader, 1 << 20) == bytes);
  EXPECT_EQ(store_->BlobStore::AdoptFileAs("../" + name, staged, 1, hashed->sha256).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(IsBlobIdTest, TakesAUuidAndARunOfOne) {
  const std::string id = NewUuid();
  EXPECT_TRUE(IsBlobId(id));
  EXPECT_TRUE(IsBlobId(id + ".0"));
  EXPECT_TRUE(IsBlobId(id + ".123456789"));
  for (const std::string& bad : {id + ".", id + ".1234567890", id + ".-1", id + ".1a", id + "/1",
                                 "../" + id, id.substr(1), std::string(""), id + ".1.2"}) {
    EXPECT_FALSE(IsBlobId(bad)) << bad;
  }
}

TEST_F(BlobStoreTest, CopyToFileWritesEveryByteAndRemovesAFailedCopy) {
  const std::string bytes = Random(70000, 17);
  auto reader = store_->Open(Put(bytes));
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(CopyToFile(**reader, dir_ + "/copy").ok());
  EXPECT_TRUE(ReadFile(dir_ + "/copy") == bytes);
  // A target that exists already is refused and left alone.
  EXPECT_FALSE(CopyToFile(**reader, dir_ + "/copy").ok());
  EXPECT_TRUE(ReadFile(dir_ + "/copy") == bytes);
}

TEST_F(BlobStoreTest, OpenFileReaderReadsAPlainFile) {
  std::ofstream(dir_ + "/result", std::ios::binary) << "result bytes";
  auto reader = OpenFileReader(dir_ + "/result");
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(ReadAll(**reader, 5), "result bytes");
  EXPECT_EQ(OpenFileReader(dir_ + "/none").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(OpenFileReader(dir_).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace datasite::blob
