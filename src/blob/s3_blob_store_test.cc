// The S3 blob store against a real S3-compatible server: s3rver behind tests/s3/sigv4_proxy.py
// (which checks every signature and every signed body hash), named by
// DATASITE_TEST_S3_URL=http://HOST:PORT/BUCKET (`eval "$(bash tests/s3/servers.sh start DIR)"`;
// scripts/test-s3.sh's ensure_test_s3). Without it these tests are skipped and say so. Each test
// keeps its blobs under a prefix of its own.
#include "blob/s3_blob_store.h"
#include "net/s3_test_env.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <thread>

#include "core/clock.h"
#include "core/random.h"
#include "net/http_client.h"

namespace datasite::blob {
namespace {

namespace fs = std::filesystem;

// The SHA-256 the tests expect, computed in one go apart from the store's streaming hash.
std::string Sha256Of(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha256(), nullptr), 1);
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::string Random(size_t size, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(size, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Far enough from now that the server's clock and ours agree on which side a fresh object is.
constexpr int64_t kHour = 3600;

// The environment of the URL tests: holds only what they give it.
GetEnv FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const char* name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const std::map<std::string, std::string> kKeys = {{"AWS_ACCESS_KEY_ID", "AKIDFROMENV"},
                                                  {"AWS_SECRET_ACCESS_KEY", "s3cr3t/fr0m+env"}};

class S3BlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto());
    auto server = net::TestS3ClientOptions();
    if (!server) GTEST_SKIP() << net::kNoTestS3Server;
    ASSERT_TRUE(server->ok()) << server->status().message();
    options_.client = **server;
    static std::atomic<int> counter{0};
    options_.prefix = "s3blob/" + std::to_string(::getpid()) + "-" + std::to_string(counter++) +
                      "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::string tmpl = ::testing::TempDir() + "s3blobXXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    options_.scratch_dir = dir_ + "/scratch";
    auto store = NewS3BlobStore(options_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto client = net::S3Client::Create(options_.client);
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
  }
  void TearDown() override {
    store_.reset();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Writes `bytes` in appends of `piece` bytes and commits.
  Result<BlobInfo> Put(const std::string& bytes, size_t piece = 1 << 20) {
    ASSIGN_OR_RETURN(auto w, store_->NewWriter(int64_t{1} << 30));
    for (size_t at = 0; at < bytes.size(); at += piece) {
      RETURN_IF_ERROR(w->Append(std::string_view(bytes).substr(at, piece)));
    }
    return w->Commit();
  }

  std::string ReadAll(BlobReader& reader, size_t piece) {
    std::string out, buf(piece, '\0');
    while (static_cast<int64_t>(out.size()) <= reader.size()) {
      auto got = reader.Read(buf.data(), buf.size());
      EXPECT_TRUE(got.ok()) << got.status().ToString();
      if (!got.ok() || *got == 0) break;
      out.append(buf.data(), *got);
    }
    return out;
  }

  // Keys of the objects under the test's prefix, and its open multipart uploads.
  std::vector<std::string> Objects() {
    auto page = client_->ListObjects(options_.prefix + "/", "");
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    std::vector<std::string> keys;
    if (page.ok()) {
      for (const auto& o : page->objects) keys.push_back(o.key);
    }
    return keys;
  }
  std::vector<net::S3Upload> Uploads() {
    auto page = client_->ListMultipartUploads(options_.prefix + "/");
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    return page.ok() ? page->uploads : std::vector<net::S3Upload>{};
  }

  S3BlobStoreOptions options_;
  std::string dir_;
  std::unique_ptr<BlobStore> store_;
  std::unique_ptr<net::S3Client> client_;  // to look behind the store's back
};

TEST_F(S3BlobStoreTest, SmallBlobRoundTripsAsOneObject) {
  const std::string bytes = Random(100'000, 1);
  auto info = Put(bytes, 777);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_TRUE(IsUuid(info->id));
  EXPECT_EQ(info->size, static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(info->sha256, Sha256Of(bytes));
  EXPECT_EQ(Objects(), std::vector<std::string>{options_.prefix + "/" + info->id});
  auto reader = store_->Open(info->id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->size(), static_cast<int64_t>(bytes.size()));
  EXPECT_TRUE(ReadAll(**reader, 30'000) == bytes);
}

TEST_F(S3BlobStoreTest, AWriterForAnIdCommitsUnderItAndReplacesWhatWasThere) {
  const std::string id = NewUuid();
  for (const std::string& bytes : {std::string("first"), Random(100'000, 4)}) {
    auto w = store_->NewWriterFor(id, 1 << 20);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    ASSERT_TRUE((*w)->Append(bytes).ok());
    auto info = (*w)->Commit();
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->id, id);
    EXPECT_EQ(info->sha256, Sha256Of(bytes));
    auto reader = store_->Open(id);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_TRUE(ReadAll(**reader, 30'000) == bytes);
  }
  EXPECT_EQ(Objects(), std::vector<std::string>{options_.prefix + "/" + id});
  auto w = store_->NewWriterFor("../" + id, 10);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(S3BlobStoreTest, EmptyBlobRoundTrips) {
  auto info = Put("");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, 0);
  EXPECT_EQ(info->sha256, Sha256Of(""));
  auto reader = store_->Open(info->id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->size(), 0);
  char buf[4];
  EXPECT_EQ(*(*reader)->ReadAt(0, buf, sizeof buf), 0u);
}

// 20 MiB in odd-sized appends: three parts of 8, 8 and 4 MiB, none aligned with an append.
TEST_F(S3BlobStoreTest, LargeBlobRoundTripsAsAMultipartUpload) {
  const std::string bytes = Random((20 << 20) + 3, 2);
  auto info = Put(bytes, 999'983);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(info->sha256, Sha256Of(bytes));
  EXPECT_TRUE(Uploads().empty());
  auto reader = store_->Open(info->id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->size(), static_cast<int64_t>(bytes.size()));
  std::string back = ReadAll(**reader, 3 << 20);
  EXPECT_EQ(back.size(), bytes.size());
  EXPECT_EQ(Sha256Of(back), info->sha256);
  // Across the first parts' boundary.
  std::string buf(100, '\0');
  auto got = (*reader)->ReadAt((8 << 20) - 50, buf.data(), buf.size());
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(buf, bytes.substr((8 << 20) - 50, 100));
}

// A blob of exactly one part is still one PutObject: a full part goes only when more follows.
TEST_F(S3BlobStoreTest, BlobOfExactlyOnePartIsOneObjectWithoutAnUpload) {
  const std::string bytes = Random(static_cast<size_t>(options_.part_size), 3);
  auto w = store_->NewWriter(int64_t{1} << 30);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(bytes).ok());
  EXPECT_TRUE(Uploads().empty());
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->sha256, Sha256Of(bytes));
  auto reader = store_->Open(info->id);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->size(), static_cast<int64_t>(bytes.size()));
}

// A blob whose size is known before its first byte goes as one streamed PUT: no multipart upload.
TEST_F(S3BlobStoreTest, ABlobOfKnownSizeIsOnePutStreamedAsItComes) {
  const std::string bytes = Random((20 << 20) + 7, 12);
  auto w = store_->NewWriter(int64_t{1} << 30, static_cast<int64_t>(bytes.size()));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  const size_t piece = 999'983;
  for (size_t at = 0; at < bytes.size(); at += piece) {
    ASSERT_TRUE((*w)->Append(std::string_view(bytes).substr(at, piece)).ok());
    EXPECT_TRUE(Uploads().empty());
  }
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(info->sha256, Sha256Of(bytes));
  EXPECT_EQ(Objects(), std::vector<std::string>{options_.prefix + "/" + info->id});
  auto reader = store_->Open(info->id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_TRUE(ReadAll(**reader, 3 << 20) == bytes);
}

// The last byte waits for Commit: a writer given all its bytes and then destroyed (a SHA-256 that
// didn't match, an upload whose record failed) leaves no object, though the rest went.
TEST_F(S3BlobStoreTest, AStreamedBlobIsStoredOnlyAtCommit) {
  const std::string bytes = Random((12 << 20) + 1, 13);
  {
    auto w = store_->NewWriter(int64_t{1} << 30, static_cast<int64_t>(bytes.size()));
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(bytes).ok());
    // Time for a whole request to reach the server and be stored, were it sent whole.
    for (int i = 0; i < 20; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ASSERT_TRUE(Objects().empty()) << "stored before Commit";
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(Objects().empty());
  EXPECT_TRUE(Uploads().empty());
}

TEST_F(S3BlobStoreTest, AStreamedBlobOfAnotherSizeThanAnnouncedIsRefused) {
  const int64_t announced = (10 << 20) + 5;
  {
    auto w = store_->NewWriter(int64_t{1} << 30, announced);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Random(static_cast<size_t>(announced - 1), 14)).ok());
    auto info = (*w)->Commit();
    ASSERT_FALSE(info.ok());
    EXPECT_EQ(info.status().code(), StatusCode::kInvalidArgument);
  }
  {
    auto w = store_->NewWriter(int64_t{1} << 30, announced);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Random(static_cast<size_t>(announced), 15)).ok());
    EXPECT_EQ((*w)->Append("x").code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE((*w)->Commit().ok());
  }
  // Announced over the limit: refused before a byte.
  auto w = store_->NewWriter(1 << 20, announced);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), StatusCode::kResourceExhausted);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(Objects().empty());
}

// The PUT refused by the server (the test proxy fails a PUT of a key holding "fail-put") fails
// the Commit with the server's word, and stores nothing.
TEST_F(S3BlobStoreTest, AStreamedPutThatFailsFailsTheCommit) {
  S3BlobStoreOptions options = options_;
  options.prefix += "/fail-put";
  auto store = NewS3BlobStore(options);
  ASSERT_TRUE(store.ok());
  const std::string bytes = Random((9 << 20) + 3, 16);
  auto w = (*store)->NewWriter(int64_t{1} << 30, static_cast<int64_t>(bytes.size()));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(bytes).ok());
  auto info = (*w)->Commit();
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("This PUT fails"), std::string::npos)
      << info.status().ToString();
  EXPECT_TRUE(Objects().empty());
}

// A PUT that ends early (the test proxy refuses a PUT to a key holding "refuse-early" on its
// headers) stops the appends that follow instead of leaving them waiting for room in a ring
// nobody empties.
TEST_F(S3BlobStoreTest, AStreamedPutRefusedEarlyStopsTheAppends) {
  S3BlobStoreOptions options = options_;
  options.prefix += "/refuse-early";
  auto store = NewS3BlobStore(options);
  ASSERT_TRUE(store.ok());
  const size_t size = 64 << 20;
  auto w = (*store)->NewWriter(int64_t{1} << 30, static_cast<int64_t>(size));
  ASSERT_TRUE(w.ok());
  const std::string piece = Random(1 << 20, 17);
  Status appended = Status::Ok();
  for (size_t at = 0; at < size && appended.ok(); at += piece.size()) {
    appended = (*w)->Append(piece);
  }
  // Refused while the bytes were coming: an Append said so (the ring is a part, the blob 8 of
  // them).
  ASSERT_FALSE(appended.ok());
  EXPECT_EQ(appended.code(), StatusCode::kPermissionDenied) << appended.ToString();
  EXPECT_FALSE((*w)->Commit().ok());
  EXPECT_TRUE(Objects().empty());
}

// How many GET requests the test server forwarded for `key`: tests/s3/sigv4_proxy.py counts them;
// nullopt from any other S3 server.
std::optional<int> GetsOf(const net::S3ClientOptions& server, const std::string& key) {
  net::HttpClient http;
  net::HttpRequest req;
  req.url = server.endpoint + "/__datasite_test/gets?path=/" + server.bucket + "/" + key;
  auto res = http.Send(req);
  if (!res.ok() || res->status != 200) return std::nullopt;
  return std::atoi(res->body.c_str());
}

TEST_F(S3BlobStoreTest, ASequentialReaderInSmallPiecesMakesFewRequests) {
  const std::string bytes = Random(20 << 20, 11);
  auto info = Put(bytes);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  const std::string key = options_.prefix + "/" + info->id;
  auto before = GetsOf(options_.client, key);
  if (!before) GTEST_SKIP() << "the S3 server does not count its requests (not the test proxy)";
  auto reader = store_->Open(info->id);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  // As a download is answered: 64 KiB at a time, front to back (320 pieces).
  EXPECT_TRUE(ReadAll(**reader, 64 << 10) == bytes);
  // Windows of 256 KiB doubling to 8 MiB: 7 GETs for 20 MiB (one a piece would be 320).
  EXPECT_LE(*GetsOf(options_.client, key) - *before, 8);

  // A reader dropped while it fetches ahead (its window at 8 MiB, the next being fetched) waits
  // for that fetch: nothing writes into freed memory (AddressSanitizer's run would say).
  {
    auto r = store_->Open(info->id);
    ASSERT_TRUE(r.ok());
    std::string buf(64 << 10, '\0');
    for (int64_t at = 0; at < (int64_t{9} << 20); at += static_cast<int64_t>(buf.size())) {
      auto got = (*r)->ReadAt(at, buf.data(), buf.size());
      ASSERT_TRUE(got.ok());
      ASSERT_TRUE(std::string_view(buf.data(), *got) == std::string_view(bytes).substr(at, *got));
    }
  }

  // Pieces that don't divide the window, and pieces of 1 MiB (as Materialize copies): few too.
  for (size_t piece : {size_t{100} << 10, size_t{1} << 20}) {
    const int start = *GetsOf(options_.client, key);
    auto r = store_->Open(info->id);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(ReadAll(**r, piece) == bytes) << piece;
    // A piece across a window's end takes its rest from the window fetched ahead: 7 too (8 when it
    // was fetched again).
    EXPECT_LE(*GetsOf(options_.client, key) - start, 7) << piece;
  }

  // Reads here and there each fetch a small window, never the whole blob, and read right.
  auto scattered = store_->Open(info->id);
  ASSERT_TRUE(scattered.ok());
  for (int64_t at : {int64_t{15} << 20, int64_t{1} << 20, int64_t{19} << 20}) {
    std::string buf(1000, '\0');
    auto got = (*scattered)->ReadAt(at, buf.data(), buf.size());
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(*got, buf.size());
    EXPECT_TRUE(buf == bytes.substr(at, buf.size())) << at;
    // Within the window just fetched: no request.
    const int gets = *GetsOf(options_.client, key);
    auto again = (*scattered)->ReadAt(at + 1000, buf.data(), buf.size());
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(buf == bytes.substr(at + 1000, buf.size())) << at;
    EXPECT_EQ(*GetsOf(options_.client, key), gets) << at;
  }
  // A read larger than the window goes straight to the caller's buffer, whole.
  std::string big(9 << 20, '\0');
  auto got = (*scattered)->ReadAt(3 << 20, big.data(), big.size());
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(*got, big.size());
  EXPECT_TRUE(big == bytes.substr(3 << 20, big.size()));
}

TEST_F(S3BlobStoreTest, ReadWindowsStayWithinTheStoresBudget) {
  S3BlobStoreOptions options = options_;
  options.read_window_budget = 1 << 20;
  auto store = NewS3BlobStore(options);
  ASSERT_TRUE(store.ok());
  const std::string bytes = Random(2 << 20, 12);
  auto w = (*store)->NewWriter(int64_t{1} << 30);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(bytes).ok());
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.ok());
  const std::string key = options_.prefix + "/" + info->id;
  auto gets = [&] { return GetsOf(options_.client, key); };
  if (!gets()) GTEST_SKIP() << "the S3 server does not count its requests (not the test proxy)";
  auto read = [&](std::unique_ptr<BlobReader>& r) {
    const int before = *gets();
    EXPECT_TRUE(ReadAll(*r, 64 << 10) == bytes);
    return *gets() - before;
  };
  auto a = (*store)->Open(info->id);
  ASSERT_TRUE(a.ok());
  EXPECT_LE(read(*a), 4);  // windows of 256 KiB, 512 KiB, 1 MiB, then the rest: the whole budget
  auto b = (*store)->Open(info->id);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(read(*b), 32);  // nothing left in the budget: a GET per piece, still every byte
  a->reset();
  b->reset();
  auto c = (*store)->Open(info->id);
  ASSERT_TRUE(c.ok());
  EXPECT_LE(read(*c), 4);  // given back by the readers gone
}

TEST_F(S3BlobStoreTest, UploadsHoldNoMoreThanTheStoresBudget) {
  // Parts wait in memory until S3 has them: a crowd of slow uploads must not pile them up.
  S3BlobStoreOptions options = options_;
  options.upload_memory_budget = 12 << 20;
  auto store = NewS3BlobStore(options);
  ASSERT_TRUE(store.ok());
  auto a = (*store)->NewWriter(int64_t{1} << 30);
  auto b = (*store)->NewWriter(int64_t{1} << 30);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->Append(Random(8 << 20, 13)).ok());  // a whole part held
  Status refused = (*b)->Append(Random(5 << 20, 14));
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable) << refused.ToString();
  EXPECT_TRUE(refused.retry_after_seconds().has_value());
  EXPECT_FALSE((*b)->Commit().ok());  // its bytes are not all there: never stored
  auto committed = (*a)->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  a->reset();
  b->reset();
  auto c = (*store)->NewWriter(int64_t{1} << 30);  // the bytes held were given back
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Append(Random(10 << 20, 15)).ok());
  EXPECT_TRUE((*c)->Commit().ok());
}

TEST_F(S3BlobStoreTest, StreamedUploadsHoldNoMoreThanTheStoresBudget) {
  // A streamed upload's ring is one part's size, taken from the budget at its first byte.
  S3BlobStoreOptions options = options_;
  options.upload_memory_budget = 12 << 20;
  auto store = NewS3BlobStore(options);
  ASSERT_TRUE(store.ok());
  const std::string bytes = Random(10 << 20, 18);
  const int64_t size = static_cast<int64_t>(bytes.size());
  auto a = (*store)->NewWriter(int64_t{1} << 30, size);
  auto b = (*store)->NewWriter(int64_t{1} << 30, size);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->Append(std::string_view(bytes).substr(0, 1 << 20)).ok());
  Status refused = (*b)->Append(std::string_view(bytes).substr(0, 1 << 20));
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable) << refused.ToString();
  EXPECT_TRUE(refused.retry_after_seconds().has_value());
  EXPECT_FALSE((*b)->Commit().ok());
  ASSERT_TRUE((*a)->Append(std::string_view(bytes).substr(1 << 20)).ok());
  auto committed = (*a)->Commit();
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  // Committed, its ring is given back at once, though the writer lives on (an upload keeps it
  // while it checks and records the blob).
  auto d = (*store)->NewWriter(int64_t{1} << 30, size);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE((*d)->Append(std::string_view(bytes).substr(0, 1 << 20)).ok());
  d->reset();
  a->reset();
  b->reset();
  auto c = (*store)->NewWriter(int64_t{1} << 30, size);  // the ring was given back
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Append(bytes).ok());
  EXPECT_TRUE((*c)->Commit().ok());
}

TEST_F(S3BlobStoreTest, RangedReadsStopAtTheEnd) {
  auto info = Put("0123456789");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto reader = store_->Open(info->id);
  ASSERT_TRUE(reader.ok());
  char buf[16];
  auto got = (*reader)->ReadAt(0, buf, 3);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(std::string(buf, *got), "012");
  got = (*reader)->ReadAt(3, buf, 4);  // the middle
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::string(buf, *got), "3456");
  got = (*reader)->ReadAt(6, buf, 4);  // up to exactly the end
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::string(buf, *got), "6789");
  got = (*reader)->ReadAt(7, buf, sizeof buf);  // across the end: what is left
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(std::string(buf, *got), "789");
  EXPECT_EQ(*(*reader)->ReadAt(10, buf, sizeof buf), 0u);  // at the end
  EXPECT_EQ(*(*reader)->ReadAt(11, buf, sizeof buf), 0u);  // past it
  EXPECT_EQ(*(*reader)->ReadAt(0, buf, 0), 0u);
  EXPECT_EQ((*reader)->ReadAt(-1, buf, 1).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(S3BlobStoreTest, OpenOfAMissingBlobIsNotFound) {
  EXPECT_EQ(store_->Open(NewUuid()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Open("../not-an-id").status().code(), StatusCode::kNotFound);
}

TEST_F(S3BlobStoreTest, AppendPastMaxSizeIsRefused) {
  auto w = store_->NewWriter(10);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("0123456789").ok());
  EXPECT_EQ((*w)->Append("x").code(), StatusCode::kResourceExhausted);
  auto info = (*w)->Commit();  // what fitted is the blob
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->size, 10);
  EXPECT_EQ(info->sha256, Sha256Of("0123456789"));
}

// Destroying a writer before Commit leaves neither an object nor an open upload behind, whether
// its parts had begun to go (a multipart upload) or not.
TEST_F(S3BlobStoreTest, UncommittedWritersLeaveNothing) {
  {
    auto small = store_->NewWriter(int64_t{1} << 30);
    ASSERT_TRUE(small.ok());
    ASSERT_TRUE((*small)->Append("abandoned").ok());
    auto large = store_->NewWriter(int64_t{1} << 30);
    ASSERT_TRUE(large.ok());
    ASSERT_TRUE((*large)->Append(Random((17 << 20) + 1, 4)).ok());
    EXPECT_EQ(Uploads().size(), 1u);  // two parts sent, the third held
  }
  EXPECT_TRUE(Uploads().empty());
  EXPECT_TRUE(Objects().empty());
  EXPECT_TRUE(store_->List()->empty());
}

// A part refused on the way (here: signed at a skewed time) breaks the writer for good: the bytes
// that made it go are hashed but were never stored, so Commit must not store a shorter blob.
TEST_F(S3BlobStoreTest, AWriterWhosePartFailedNeverCommits) {
  FakeClock clock(SystemClock().NowMillis());
  options_.client.clock = &clock;
  auto store = NewS3BlobStore(options_);
  ASSERT_TRUE(store.ok());
  auto w = (*store)->NewWriter(int64_t{1} << 30);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Random(static_cast<size_t>(options_.part_size), 5)).ok());
  clock.AdvanceMillis(-kHour * 1000);
  EXPECT_EQ((*w)->Append("more").code(), StatusCode::kPermissionDenied);
  clock.AdvanceMillis(kHour * 1000);
  EXPECT_FALSE((*w)->Commit().ok());
  w->reset();
  EXPECT_TRUE(Objects().empty());
  EXPECT_TRUE(Uploads().empty());
}

TEST_F(S3BlobStoreTest, APartThatFailsInFlightFailsTheCommit) {
  // Parts are sent while the next one fills: a part refused then (the test proxy fails part 2 of
  // a key holding "fail-part-2", its upload living on) must still fail the blob, at the next part
  // or at Commit, and leave no object and no upload.
  S3BlobStoreOptions options = options_;
  options.prefix += "/fail-part-2";
  auto store = NewS3BlobStore(options);
  ASSERT_TRUE(store.ok());
  auto w = (*store)->NewWriter(int64_t{1} << 30);
  ASSERT_TRUE(w.ok());
  const size_t part = static_cast<size_t>(options.part_size);
  const std::string bytes = Random(3 * part + 10, 6);
  Status appended = Status::Ok();
  for (size_t at = 0; at < bytes.size() && appended.ok(); at += part / 4) {
    appended = (*w)->Append(std::string_view(bytes).substr(at, part / 4));
  }
  auto info = appended.ok() ? (*w)->Commit() : Result<BlobInfo>(appended);
  EXPECT_FALSE(info.ok());
  if (!info.ok()) {
    EXPECT_NE(info.status().message().find("This part fails"), std::string::npos);
  }
  w->reset();
  EXPECT_TRUE(Objects().empty());
  EXPECT_TRUE(Uploads().empty());
}

TEST_F(S3BlobStoreTest, DeleteIsIdempotent) {
  auto info = Put("to delete");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto other = Put("to keep");
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(store_->Delete(info->id).ok());
  EXPECT_EQ(store_->Open(info->id).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store_->Delete(info->id).ok());
  EXPECT_TRUE(store_->Delete(NewUuid()).ok());
  EXPECT_TRUE(store_->Delete("not-an-id").ok());
  EXPECT_EQ(store_->List().value(), std::vector<std::string>{other->id});
}

TEST_F(S3BlobStoreTest, ListGivesIdsByLastModified) {
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    auto info = Put("blob " + std::to_string(i));
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    ids.push_back(info->id);
  }
  // Not a blob: an object under the prefix whose name is no id, and one in a folder below it.
  ASSERT_TRUE(client_->PutObject(options_.prefix + "/notes.txt", "x").ok());
  ASSERT_TRUE(client_->PutObject(options_.prefix + "/sub/" + NewUuid(), "x").ok());
  std::sort(ids.begin(), ids.end());
  auto all = store_->List();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  std::sort(all->begin(), all->end());
  EXPECT_EQ(*all, ids);
  auto later = store_->List(NowSeconds() + kHour);
  ASSERT_TRUE(later.ok()) << later.status().ToString();
  std::sort(later->begin(), later->end());
  EXPECT_EQ(*later, ids);
  auto earlier = store_->List(NowSeconds() - kHour);
  ASSERT_TRUE(earlier.ok()) << earlier.status().ToString();
  EXPECT_TRUE(earlier->empty());
}

// Listing goes on past S3's first page of 1000 keys.
TEST_F(S3BlobStoreTest, ListFollowsContinuationTokens) {
  const std::string root = options_.prefix + "/";
  for (int i = 0; i < 1003; ++i) ASSERT_TRUE(client_->PutObject(root + NewUuid(), "").ok());
  auto all = store_->List();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), 1003u);
}

// An upload begun by a process that died: aborted once it is older than the bound, or always
// without one. Scratch files go by the same rule.
TEST_F(S3BlobStoreTest, RemoveTemporaryFilesAbortsOldUploads) {
  auto upload = client_->CreateMultipartUpload(options_.prefix + "/" + NewUuid());
  ASSERT_TRUE(upload.ok()) << upload.status().ToString();
  // Not the store's: left alone.
  auto foreign = client_->CreateMultipartUpload(options_.prefix + "/other/thing");
  ASSERT_TRUE(foreign.ok());
  std::string scratch = store_->ScratchPath();
  std::ofstream(scratch) << "scratch";
  ASSERT_TRUE(store_->RemoveTemporaryFiles(NowSeconds() - kHour).ok());
  EXPECT_EQ(Uploads().size(), 2u);
  EXPECT_TRUE(fs::exists(scratch));
  ASSERT_TRUE(store_->RemoveTemporaryFiles(NowSeconds() + kHour).ok());
  auto left = Uploads();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].upload_id, *foreign);
  EXPECT_FALSE(fs::exists(scratch));

  auto again = client_->CreateMultipartUpload(options_.prefix + "/" + NewUuid());
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE(store_->RemoveTemporaryFiles().ok());
  left = Uploads();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].upload_id, *foreign);
  ASSERT_TRUE(client_->AbortMultipartUpload(options_.prefix + "/other/thing", *foreign).ok());
}

TEST_F(S3BlobStoreTest, DefaultMaterializeCopiesIntoTheScratchDirectory) {
  const std::string bytes = Random((1 << 20) + 5, 9);
  auto info = Put(bytes);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  std::string path;
  {
    auto file = store_->Materialize(info->id);
    ASSERT_TRUE(file.ok()) << file.status().ToString();
    path = file->path();
    EXPECT_EQ(fs::path(path).parent_path(), fs::path(options_.scratch_dir));
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_TRUE(ss.str() == bytes);
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(store_->Materialize(NewUuid()).status().code(), StatusCode::kNotFound);
}

TEST_F(S3BlobStoreTest, DefaultAdoptFileStreamsTheFileAndChecksItsHash) {
  const std::string bytes = Random((9 << 20) + 7, 13);  // more than a part
  const std::string staged = store_->ScratchPath();
  std::ofstream(staged, std::ios::binary) << bytes;
  auto wrong = store_->AdoptFile(staged, static_cast<int64_t>(bytes.size()), std::string(64, '0'));
  EXPECT_EQ(wrong.status().code(), StatusCode::kInternal);
  EXPECT_TRUE(fs::exists(staged));
  EXPECT_TRUE(store_->List()->empty());
  auto info = store_->AdoptFile(staged, static_cast<int64_t>(bytes.size()), Sha256Of(bytes));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->sha256, Sha256Of(bytes));
  EXPECT_FALSE(fs::exists(staged));
  auto reader = store_->Open(info->id);
  ASSERT_TRUE(reader.ok());
  EXPECT_TRUE(ReadAll(**reader, 1 << 20) == bytes);
  EXPECT_TRUE(Uploads().empty());
}

// An object store can't keep a deleted blob's bytes for its readers: they get an error, never
// other bytes or a short blob.
TEST_F(S3BlobStoreTest, AReaderOfADeletedBlobFails) {
  auto info = Put("soon gone");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto reader = store_->Open(info->id);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(store_->Delete(info->id).ok());
  char buf[16];
  EXPECT_EQ((*reader)->ReadAt(0, buf, sizeof buf).status().code(), StatusCode::kInternal);
}

// An object cut short behind the store's back: the range answer is short, which is an error.
TEST_F(S3BlobStoreTest, AnObjectShorterThanWhenOpenedIsAnError) {
  auto info = Put("0123456789");
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  auto reader = store_->Open(info->id);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(client_->PutObject(options_.prefix + "/" + info->id, "0123").ok());
  char buf[16];
  EXPECT_EQ((*reader)->ReadAt(0, buf, sizeof buf).status().code(), StatusCode::kInternal);
}

// The URL the server's flag will take, naming the test server, gives a working store.
TEST_F(S3BlobStoreTest, AParsedUrlReachesTheServer) {
  const net::S3ClientOptions& c = options_.client;
  auto o = ParseS3BlobUrl("s3://" + c.bucket + "/" + options_.prefix + "?endpoint=" + c.endpoint +
                              "&region=" + c.region,
                          FakeEnv({{"AWS_ACCESS_KEY_ID", c.credentials.access_key_id},
                                   {"AWS_SECRET_ACCESS_KEY", c.credentials.secret_access_key}}));
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  o->scratch_dir = options_.scratch_dir;
  auto store = NewS3BlobStore(*o);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto w = (*store)->NewWriter(100);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append("via the URL").ok());
  auto info = (*w)->Commit();
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(store_->List().value(), std::vector<std::string>{info->id});
}

// Many threads at once: each call takes a client of its own from the store's pool.
TEST_F(S3BlobStoreTest, ConcurrentWritersAndReaders) {
  constexpr int kThreads = 6;
  std::vector<std::string> bytes(kThreads), seen(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    bytes[i] = Random(200'000 + 1000 * i, 20 + i);
    threads.emplace_back([&, i] {
      auto info = Put(bytes[i], 4096 + 7 * i);
      if (!info.ok()) return;
      auto reader = store_->Open(info->id);
      if (reader.ok()) seen[i] = ReadAll(**reader, 5000 + i);
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_TRUE(seen[i] == bytes[i]) << "thread " << i;
  EXPECT_EQ(store_->List()->size(), static_cast<size_t>(kThreads));
}

TEST(ParseS3BlobUrlTest, ReadsBucketPrefixEndpointRegionAndEnvironmentKeys) {
  auto o = ParseS3BlobUrl("s3://bkt/some/prefix?endpoint=http://127.0.0.1:9000&region=eu-west-3",
                          FakeEnv(kKeys));
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->client.bucket, "bkt");
  EXPECT_EQ(o->prefix, "some/prefix");
  EXPECT_EQ(o->client.endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(o->client.region, "eu-west-3");
  EXPECT_EQ(o->client.credentials.access_key_id, "AKIDFROMENV");
  EXPECT_EQ(o->client.credentials.secret_access_key, "s3cr3t/fr0m+env");
  EXPECT_EQ(o->client.credentials.session_token, "");
}

TEST(ParseS3BlobUrlTest, DefaultsToAwsOfTheRegionAndDecodesValues) {
  auto o = ParseS3BlobUrl("s3://bkt", FakeEnv(kKeys));
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->prefix, "");
  EXPECT_EQ(o->client.region, "us-east-1");
  EXPECT_EQ(o->client.endpoint, "https://s3.us-east-1.amazonaws.com");
  o = ParseS3BlobUrl("s3://bkt/p?region=eu-west-3", FakeEnv(kKeys));
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->client.endpoint, "https://s3.eu-west-3.amazonaws.com");
  auto vars = kKeys;
  vars["AWS_SESSION_TOKEN"] = "tok";
  o = ParseS3BlobUrl("s3://bkt/p?endpoint=https%3A%2F%2Fminio.lan%3A9000", FakeEnv(vars));
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->client.endpoint, "https://minio.lan:9000");
  EXPECT_EQ(o->client.credentials.session_token, "tok");
}

TEST(ParseS3BlobUrlTest, RefusesMalformedUrls) {
  for (const char* url : {"http://bkt/p", "s3://", "s3:///p", "s3://bkt?region", "s3://bkt?region=",
                          "s3://bkt?x=1", "s3://bkt?endpoint=%zz", "s3://bkt?endpoint=%4",
                          "s3://bkt?endpoint=ftp://h", "s3://bkt?endpoint=http://h/path"}) {
    auto o = ParseS3BlobUrl(url, FakeEnv(kKeys));
    EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument) << url;
    EXPECT_EQ(o.status().message().find("s3cr3t"), std::string::npos) << o.status().message();
  }
}

TEST(ParseS3BlobUrlTest, MissingCredentialsAreRefused) {
  for (const auto& missing : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}) {
    auto vars = kKeys;
    vars.erase(missing);
    auto o = ParseS3BlobUrl("s3://bkt/p", FakeEnv(vars));
    EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument) << missing;
    EXPECT_EQ(o.status().message().find("FROMENV"), std::string::npos);
    EXPECT_EQ(o.status().message().find("s3cr3t"), std::string::npos);
  }
  auto vars = kKeys;
  vars["AWS_SECRET_ACCESS_KEY"] = "";
  EXPECT_EQ(ParseS3BlobUrl("s3://bkt/p", FakeEnv(vars)).status().code(),
            StatusCode::kInvalidArgument);
}

// A credentials file (AWS's format) wins over the environment; only its [default] profile counts,
// and an error names the file but not what it holds.
TEST(ParseS3BlobUrlTest, ReadsACredentialsFile) {
  std::string tmpl = ::testing::TempDir() + "s3credsXXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  const std::string path = tmpl + "/credentials";
  std::ofstream(path) << "[other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = no\n"
                         "# a comment\n[default]\naws_access_key_id = AKIDFROMFILE\r\n"
                         "aws_secret_access_key=file/secret\naws_session_token = ftok\n";
  auto o = ParseS3BlobUrl("s3://bkt/p?credentials=" + path, FakeEnv(kKeys));
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->client.credentials.access_key_id, "AKIDFROMFILE");
  EXPECT_EQ(o->client.credentials.secret_access_key, "file/secret");
  EXPECT_EQ(o->client.credentials.session_token, "ftok");

  std::ofstream(path) << "[default]\naws_access_key_id = AKIDHALF\n[other]\n"
                         "aws_secret_access_key = other/secret\n";
  o = ParseS3BlobUrl("s3://bkt/p?credentials=" + path, FakeEnv(kKeys));
  EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(o.status().message().find(path), std::string::npos) << o.status().message();
  EXPECT_EQ(o.status().message().find("AKIDHALF"), std::string::npos);
  EXPECT_EQ(o.status().message().find("other/secret"), std::string::npos);
  EXPECT_EQ(
      ParseS3BlobUrl("s3://bkt/p?credentials=" + tmpl + "/none", FakeEnv(kKeys)).status().code(),
      StatusCode::kInvalidArgument);
  fs::remove_all(tmpl);
}

// A streamed upload abandoned while the bucket reads nothing (a listener that never accepts: the
// PUT's bytes fill the socket and curl waits to send more) ends within seconds: the writer cancels
// its request, which would otherwise wait out the 60 s stall timeout in the destructor.
TEST(S3StreamedWriterTest, AnAbandonedPutEndsAtOnceThoughTheBucketReadsNothing) {
  ASSERT_TRUE(InitCrypto());
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const int small = 4096;  // a window that fills at once: curl then waits to send, not for bytes
  ASSERT_EQ(::setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(listener, 8), 0);
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  S3BlobStoreOptions options;
  options.client.endpoint = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  options.client.bucket = "stalled";
  options.client.credentials.access_key_id = "AKID";
  options.client.credentials.secret_access_key = "secret";
  std::string tmpl = ::testing::TempDir() + "s3stallXXXXXX";
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  options.scratch_dir = tmpl + "/scratch";
  auto store = NewS3BlobStore(options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  {
    auto w = (*store)->NewWriter(int64_t{1} << 30, int64_t{64} << 20);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Append(Random(8 << 20, 19)).ok());
    // Past curl's wait for "100 Continue" (1 s): it sends until the socket is full, then waits.
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    const auto started = std::chrono::steady_clock::now();
    w->reset();
    EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  }
  ::close(listener);
  fs::remove_all(tmpl);
}

TEST(S3BlobStoreOptionsTest, PayloadsGoUnsignedOnlyOverHttpsOrLoopback) {
  for (const char* yes :
       {"https://s3.eu-west-3.amazonaws.com", "https://10.0.0.5:9000", "http://127.0.0.1:9000",
        "http://127.8.9.10", "http://localhost:9000", "http://[::1]:9000"}) {
    EXPECT_TRUE(ConnectionGuardsPayloads(yes)) << yes;
  }
  for (const char* no :
       {"http://datasite-object-store:9000", "http://10.0.0.5:9000", "http://127.example.org",
        "http://localhost.example.org", "http://[::2]:9000", "ftp://127.0.0.1", ""}) {
    EXPECT_FALSE(ConnectionGuardsPayloads(no)) << no;
  }
}

TEST(S3BlobStoreOptionsTest, RefusesBadOptions) {
  S3BlobStoreOptions o;
  o.client.endpoint = "http://127.0.0.1:1";
  o.client.bucket = "b";
  o.scratch_dir = ::testing::TempDir() + "s3blob-options";
  o.part_size = (5 << 20) - 1;
  EXPECT_EQ(NewS3BlobStore(o).status().code(), StatusCode::kInvalidArgument);
  o.part_size = 5 << 20;
  EXPECT_TRUE(NewS3BlobStore(o).ok());
  o.client.endpoint = "ftp://h";
  EXPECT_EQ(NewS3BlobStore(o).status().code(), StatusCode::kInvalidArgument);
  o.client.endpoint = "http://127.0.0.1:1";
  o.scratch_dir.clear();
  EXPECT_EQ(NewS3BlobStore(o).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace datasite::blob
