// S3Client: error mapping and argument checks here; the requests themselves against a real
// S3-compatible server (s3rver behind tests/s3/sigv4_proxy.py, which checks every signature), named
// by DATASITE_TEST_S3_URL=http://HOST:PORT/BUCKET (tests/s3/servers.sh start prints it;
// scripts/test.sh starts one). Without it those tests are skipped and say so.
#include "net/s3_client.h"
#include "core/sha256.h"
#include "net/s3_test_env.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

namespace datasite::net {
namespace {

TEST(S3ErrorStatusTest, MapsS3CodesToStatusCodes) {
  auto err = [](const char* code) {
    return "<Error><Code>" + std::string(code) + "</Code><Message>m &amp; n</Message></Error>";
  };
  EXPECT_EQ(S3ErrorStatus(404, err("NoSuchKey"), "GET k").code(), StatusCode::kNotFound);
  EXPECT_EQ(S3ErrorStatus(404, err("NoSuchUpload"), "x").code(), StatusCode::kNotFound);
  EXPECT_EQ(S3ErrorStatus(404, "", "HEAD k").code(), StatusCode::kNotFound);
  EXPECT_EQ(S3ErrorStatus(403, err("SignatureDoesNotMatch"), "x").code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(S3ErrorStatus(403, err("AccessDenied"), "x").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(S3ErrorStatus(403, "", "HEAD k").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(S3ErrorStatus(503, err("SlowDown"), "x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(S3ErrorStatus(500, err("InternalError"), "x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(S3ErrorStatus(412, err("PreconditionFailed"), "x").code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(S3ErrorStatus(400, err("InvalidArgument"), "x").code(), StatusCode::kInvalidArgument);
}

TEST(S3ErrorStatusTest, MessageCarriesS3sCodeAndMessage) {
  Status st = S3ErrorStatus(
      403,
      "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>No &lt;way&gt;</Message>"
      "<AWSAccessKeyId>AKIDSECRETISH</AWSAccessKeyId></Error>",
      "GET s3://b/k");
  EXPECT_EQ(st.message(), "GET s3://b/k: S3 answered 403 AccessDenied: No <way>");
}

TEST(S3ClientCreateTest, RefusesBadEndpointsAndBuckets) {
  for (const char* e : {"ftp://h", "127.0.0.1:9000", "http://", "http://h/path", "http://u@h"}) {
    S3ClientOptions o;
    o.endpoint = e;
    o.bucket = "b";
    EXPECT_EQ(S3Client::Create(o).status().code(), StatusCode::kInvalidArgument) << e;
  }
  S3ClientOptions o;
  o.endpoint = "http://127.0.0.1:9000/";
  EXPECT_EQ(S3Client::Create(o).status().code(), StatusCode::kInvalidArgument);  // no bucket
  o.bucket = "b";
  EXPECT_TRUE(S3Client::Create(o).ok());
}

// A transport failure is kUnavailable and names neither credential.
TEST(S3ClientCreateTest, UnreachableServerIsUnavailableWithoutCredentials) {
  S3ClientOptions o;
  o.endpoint = "http://127.0.0.1:1";
  o.bucket = "b";
  o.credentials = {"AKIDNEVERSHOWN", "secretneversh0wn", ""};
  auto client = S3Client::Create(o);
  ASSERT_TRUE(client.ok());
  Status st = (*client)->PutObject("k", "data");
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_EQ(st.message().find("AKIDNEVERSHOWN"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("secretneversh0wn"), std::string::npos) << st.message();
}

// The tests against a server: each in its own key prefix.
class S3ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = TestS3ClientOptions();
    if (!server) GTEST_SKIP() << kNoTestS3Server;
    ASSERT_TRUE(server->ok()) << server->status().message();
    options_ = **server;
    static std::atomic<int> counter{0};
    prefix_ = "t" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/";
    auto c = S3Client::Create(options_);
    ASSERT_TRUE(c.ok()) << c.status().message();
    client_ = std::move(*c);
  }

  std::string Get(const std::string& key, std::optional<S3Client::ByteRange> range = {}) {
    std::string out;
    auto res = client_->GetObject(key, range, [&](std::string_view b) {
      out.append(b);
      return Status::Ok();
    });
    EXPECT_TRUE(res.ok()) << res.status().message();
    return out;
  }

  S3ClientOptions options_;
  std::string prefix_;
  std::unique_ptr<S3Client> client_;
};

// Bytes [offset, offset + n) of a pattern that does not repeat within a part.
std::string Pattern(uint64_t offset, size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    uint64_t x = offset + i;
    out[i] = static_cast<char>((x * 7 + x / 4093) % 251);
  }
  return out;
}

TEST_F(S3ServerTest, PutGetHeadDeleteWithAnOddKey) {
  std::string key = prefix_ + "a b+c~d/é 日本 (1)&=.txt";
  std::string data = Pattern(0, 100'000);
  ASSERT_TRUE(client_->PutObject(key, data).ok());
  EXPECT_EQ(Get(key), data);
  auto head = client_->HeadObject(key);
  ASSERT_TRUE(head.ok()) << head.status().message();
  EXPECT_EQ(head->size, data.size());
  EXPECT_FALSE(head->etag.empty());
  ASSERT_TRUE(client_->DeleteObject(key).ok());
  EXPECT_EQ(client_->HeadObject(key).status().code(), StatusCode::kNotFound);
  std::string ignored;
  auto gone = client_->GetObject(key, {}, [&](std::string_view b) {
    ignored.append(b);
    return Status::Ok();
  });
  EXPECT_EQ(gone.status().code(), StatusCode::kNotFound);
  EXPECT_NE(gone.status().message().find("NoSuchKey"), std::string::npos)
      << gone.status().message();
  EXPECT_TRUE(ignored.empty());
}

TEST_F(S3ServerTest, GetOfARangeReturnsThoseBytes) {
  std::string key = prefix_ + "r";
  std::string data = Pattern(0, 10'000);
  ASSERT_TRUE(client_->PutObject(key, data).ok());
  EXPECT_EQ(Get(key, S3Client::ByteRange{5, 14}), data.substr(5, 10));
  EXPECT_EQ(Get(key, S3Client::ByteRange{9'990, 9'999}), data.substr(9'990));
}

TEST_F(S3ServerTest, ListPaginatesWithContinuationAndStartAfter) {
  std::set<std::string> keys;
  for (int i = 0; i < 7; ++i) {
    std::string key = prefix_ + "k" + std::to_string(i) + (i % 2 ? " odd+" : "");
    ASSERT_TRUE(client_->PutObject(key, std::string(i, 'x')).ok());
    keys.insert(key);
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    auto page = client_->ListObjects(prefix_, token, "", 3);
    ASSERT_TRUE(page.ok()) << page.status().message();
    EXPECT_LE(page->objects.size(), 3u);
    for (const auto& o : page->objects) {
      seen.push_back(o.key);
      EXPECT_EQ(o.size, static_cast<uint64_t>(o.key[prefix_.size() + 1] - '0'));
    }
    token = page->next_continuation_token;
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), keys);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  auto after = client_->ListObjects(prefix_, "", *std::next(keys.begin(), 4), 1000);
  ASSERT_TRUE(after.ok()) << after.status().message();
  ASSERT_EQ(after->objects.size(), 2u);
  EXPECT_EQ(after->objects[0].key, *std::next(keys.begin(), 5));
}

TEST_F(S3ServerTest, MultipartUploadOfThreeFiveMiBParts) {
  constexpr uint64_t kPart = 5 << 20;
  std::string key = prefix_ + "big object";
  auto id = client_->CreateMultipartUpload(key);
  ASSERT_TRUE(id.ok()) << id.status().message();
  std::vector<S3CompletedPart> parts;
  for (int n = 1; n <= 3; ++n) {
    // Pulled 64 KiB at a time: the part is never whole in memory.
    uint64_t offset = (n - 1) * kPart, sent = 0;
    BodyReader reader = [&](char* buffer, size_t size) -> Result<size_t> {
      size_t k = std::min<uint64_t>({size, 65536, kPart - sent});
      std::string bytes = Pattern(offset + sent, k);
      std::memcpy(buffer, bytes.data(), k);
      sent += k;
      return k;
    };
    // Part 2's SHA-256 is signed (the proxy checks the body against it); the others go unsigned.
    std::string sha = n == 2 ? Sha256Hex(Pattern(offset, kPart)) : "";
    auto etag = client_->UploadPart(key, *id, n, kPart, reader, sha);
    ASSERT_TRUE(etag.ok()) << etag.status().message();
    parts.push_back({n, *etag});
  }
  ASSERT_TRUE(client_->CompleteMultipartUpload(key, *id, parts).ok());
  auto head = client_->HeadObject(key);
  ASSERT_TRUE(head.ok()) << head.status().message();
  EXPECT_EQ(head->size, 3 * kPart);
  // Across the boundary of parts 1 and 2, and the whole object's hash.
  EXPECT_EQ(Get(key, S3Client::ByteRange{kPart - 10, kPart + 9}), Pattern(kPart - 10, 20));
  EXPECT_EQ(Sha256Hex(Get(key)), Sha256Hex(Pattern(0, 3 * kPart)));
  // A completed upload is no longer listed.
  auto open = client_->ListMultipartUploads(prefix_);
  ASSERT_TRUE(open.ok()) << open.status().message();
  EXPECT_TRUE(open->uploads.empty());
}

TEST_F(S3ServerTest, AbortedUploadIsGoneFromTheListAndRefusesParts) {
  auto a = client_->CreateMultipartUpload(prefix_ + "a");
  auto b = client_->CreateMultipartUpload(prefix_ + "b");
  ASSERT_TRUE(a.ok() && b.ok());
  auto open = client_->ListMultipartUploads(prefix_);
  ASSERT_TRUE(open.ok()) << open.status().message();
  ASSERT_EQ(open->uploads.size(), 2u);
  EXPECT_EQ(open->uploads[0].key, prefix_ + "a");
  EXPECT_EQ(open->uploads[0].upload_id, *a);
  EXPECT_FALSE(open->uploads[0].initiated.empty());
  ASSERT_TRUE(client_->AbortMultipartUpload(prefix_ + "a", *a).ok());
  open = client_->ListMultipartUploads(prefix_);
  ASSERT_TRUE(open.ok());
  ASSERT_EQ(open->uploads.size(), 1u);
  EXPECT_EQ(open->uploads[0].upload_id, *b);
  std::string data = "late part";
  size_t pos = 0;
  auto late = client_->UploadPart(
      prefix_ + "a", *a, 1, data.size(),
      [&](char* buf, size_t size) -> Result<size_t> {
        size_t k = std::min(size, data.size() - pos);
        std::memcpy(buf, data.data() + pos, k);
        pos += k;
        return k;
      },
      Sha256Hex(data));
  EXPECT_EQ(late.status().code(), StatusCode::kNotFound) << late.status().message();
  EXPECT_EQ(client_->AbortMultipartUpload(prefix_ + "a", *a).code(), StatusCode::kNotFound);
  ASSERT_TRUE(client_->AbortMultipartUpload(prefix_ + "b", *b).ok());
}

// Proves the proxy checks signatures: the same request signed with another secret is refused, and
// the refusal names neither credential.
TEST_F(S3ServerTest, WrongSecretIsRefused) {
  S3ClientOptions bad = options_;
  bad.credentials.secret_access_key += "x";
  auto c = S3Client::Create(bad);
  ASSERT_TRUE(c.ok());
  Status st = (*c)->PutObject(prefix_ + "k", "data");
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("SignatureDoesNotMatch"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find(bad.credentials.secret_access_key), std::string::npos);
  EXPECT_EQ(st.message().find(options_.credentials.secret_access_key), std::string::npos);
  EXPECT_EQ(st.message().find(bad.credentials.access_key_id), std::string::npos);
  // Nothing was stored.
  EXPECT_EQ(client_->HeadObject(prefix_ + "k").status().code(), StatusCode::kNotFound);
}

// The proxy hashes the body too: a part whose bytes are not the SHA-256 signed for it is refused.
TEST_F(S3ServerTest, PartNotMatchingItsSignedSha256IsRefused) {
  auto id = client_->CreateMultipartUpload(prefix_ + "p");
  ASSERT_TRUE(id.ok()) << id.status().message();
  std::string data = "the part", other = "another!";
  size_t pos = 0;
  auto res = client_->UploadPart(
      prefix_ + "p", *id, 1, data.size(),
      [&](char* buf, size_t size) -> Result<size_t> {
        size_t k = std::min(size, data.size() - pos);
        std::memcpy(buf, data.data() + pos, k);
        pos += k;
        return k;
      },
      Sha256Hex(other));
  EXPECT_EQ(res.status().code(), StatusCode::kPermissionDenied) << res.status().message();
  ASSERT_TRUE(client_->AbortMultipartUpload(prefix_ + "p", *id).ok());
}

TEST_F(S3ServerTest, UnknownAccessKeyIsRefused) {
  S3ClientOptions bad = options_;
  bad.credentials.access_key_id = "AKIDSOMEONEELSE";
  auto c = S3Client::Create(bad);
  ASSERT_TRUE(c.ok());
  Status st = (*c)->DeleteObject(prefix_ + "k");
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(st.message().find("InvalidAccessKeyId"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("AKIDSOMEONEELSE"), std::string::npos) << st.message();
}

TEST_F(S3ServerTest, StaleSignatureIsRefused) {
  FakeClock hour_ago(SystemClock().NowMillis() - 3'600'000);
  S3ClientOptions stale = options_;
  stale.clock = &hour_ago;
  auto c = S3Client::Create(stale);
  ASSERT_TRUE(c.ok());
  Status st = (*c)->HeadObject(prefix_ + "k").status();
  EXPECT_EQ(st.code(), StatusCode::kPermissionDenied);
  st = (*c)->PutObject(prefix_ + "k", "data");
  EXPECT_NE(st.message().find("RequestTimeTooSkewed"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace datasite::net
