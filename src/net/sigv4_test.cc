#include "net/sigv4.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/sha256.h"

namespace datasite::net {
namespace {

// The example account of AWS's S3 SigV4 documentation ("Signature Calculations for the
// Authorization Header: Transferring Payload in a Single Chunk"): its four examples are signed at
// 2013-05-24T00:00:00Z in us-east-1, for the bucket examplebucket addressed by virtual host.
const AwsCredentials kExample{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                              ""};
constexpr int64_t kExampleTime = 1369353600;

SigV4Request ExampleRequest(std::string method, std::string path) {
  SigV4Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.headers = {{"Host", "examplebucket.s3.amazonaws.com"}};
  r.payload_sha256 = std::string(kEmptySha256);
  return r;
}

TEST(SigV4Test, AwsExampleGetObjectWithRange) {
  SigV4Request r = ExampleRequest("GET", "/test.txt");
  r.headers.emplace_back("Range", "bytes=0-9");
  SigV4Signature s = SignV4(r, kExample, "us-east-1", "s3", kExampleTime);
  EXPECT_EQ(
      s.canonical_request,
      "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
      "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
      "x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(s.headers[0].first, "Authorization");
  EXPECT_EQ(s.headers[0].second,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4Test, AwsExamplePutObject) {
  SigV4Request r = ExampleRequest("PUT", "/test$file.text");
  r.headers.emplace_back("Date", "Fri, 24 May 2013 00:00:00 GMT");
  r.headers.emplace_back("x-amz-storage-class", "REDUCED_REDUNDANCY");
  r.payload_sha256 = Sha256Hex("Welcome to Amazon S3.");
  EXPECT_EQ(r.payload_sha256, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  SigV4Signature s = SignV4(r, kExample, "us-east-1", "s3", kExampleTime);
  EXPECT_NE(s.canonical_request.find("PUT\n/test%24file.text\n\n"), std::string::npos);
  EXPECT_EQ(s.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4Test, AwsExampleGetBucketLifecycle) {
  SigV4Request r = ExampleRequest("GET", "/");
  r.query = {{"lifecycle", ""}};
  SigV4Signature s = SignV4(r, kExample, "us-east-1", "s3", kExampleTime);
  EXPECT_NE(s.canonical_request.find("GET\n/\nlifecycle=\n"), std::string::npos);
  EXPECT_EQ(s.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4Test, AwsExampleListObjects) {
  SigV4Request r = ExampleRequest("GET", "/");
  r.query = {{"prefix", "J"}, {"max-keys", "2"}};  // out of order: the signer sorts
  SigV4Signature s = SignV4(r, kExample, "us-east-1", "s3", kExampleTime);
  EXPECT_NE(s.canonical_request.find("GET\n/\nmax-keys=2&prefix=J\n"), std::string::npos);
  EXPECT_EQ(s.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4Test, EncodesEverythingButUnreservedAndSlashesInPaths) {
  EXPECT_EQ(SigV4Encode("a b+c~d/é", true), "a%20b%2Bc~d/%C3%A9");
  EXPECT_EQ(SigV4Encode("a b+c~d/é", false), "a%20b%2Bc~d%2F%C3%A9");
  EXPECT_EQ(SigV4CanonicalQuery({{"b", ""}, {"a", "2"}, {"a", "1"}, {"a b", "x=y"}}),
            "a=1&a=2&a%20b=x%3Dy&b=");
}

TEST(SigV4Test, SessionTokenIsSentAndSigned) {
  AwsCredentials temp = kExample;
  temp.session_token = "TOKEN";
  SigV4Signature s = SignV4(ExampleRequest("GET", "/k"), temp, "us-east-1", "s3", kExampleTime);
  EXPECT_NE(s.headers[0].second.find("x-amz-date;x-amz-security-token,"), std::string::npos);
  bool sent = false;
  for (const auto& [k, v] : s.headers) sent |= k == "x-amz-security-token" && v == "TOKEN";
  EXPECT_TRUE(sent);
}

TEST(SigV4Test, SecretAppearsInNoOutput) {
  SigV4Signature s = SignV4(ExampleRequest("GET", "/k"), kExample, "us-east-1", "s3", kExampleTime);
  for (const std::string& text : {s.canonical_request, s.string_to_sign, s.signature}) {
    EXPECT_EQ(text.find(kExample.secret_access_key), std::string::npos);
  }
  for (const auto& [k, v] : s.headers) {
    EXPECT_EQ(v.find(kExample.secret_access_key), std::string::npos);
  }
}

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

struct PipeCloser {
  void operator()(FILE* f) const { pclose(f); }
};

// Every request botocore's S3 signer signs (tests/s3/botocore_sigv4_vectors.py: generated odd
// keys, query parameters and headers) gets the same Authorization header from ours.
TEST(SigV4Test, AgreesWithBotocore) {
  std::string command =
      "/usr/bin/python3 " DATASITE_SOURCE_DIR "/tests/s3/botocore_sigv4_vectors.py 500 2>&1";
  std::unique_ptr<FILE, PipeCloser> pipe(popen(command.c_str(), "r"));
  ASSERT_TRUE(pipe);
  std::string output;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe.get())) > 0) output.append(buf, n);
  int rc = pclose(pipe.release());
  ASSERT_EQ(rc, 0) << "the botocore script failed (is python3-botocore installed? "
                      "bash scripts/deps.sh): "
                   << output;
  int checked = 0;
  size_t pos = 0;
  while (pos < output.size()) {
    size_t end = output.find('\n', pos);
    if (end == std::string::npos) end = output.size();
    auto v = nlohmann::json::parse(output.substr(pos, end - pos));
    pos = end + 1;
    SigV4Request r;
    r.method = v["method"];
    r.path = v["path"];
    for (const auto& q : v["query"]) r.query.emplace_back(q[0], q[1]);
    for (const auto& h : v["headers"]) r.headers.emplace_back(h[0], h[1]);
    r.payload_sha256 = v["unsigned_payload"].get<bool>()
                           ? std::string(kUnsignedPayload)
                           : Sha256Hex(FromHex(v["body_hex"].get<std::string>()));
    AwsCredentials c{v["access_key_id"], v["secret_access_key"], v["session_token"]};
    SigV4Signature s = SignV4(r, c, v["region"].get<std::string>(), "s3", v["unix_seconds"]);
    ASSERT_EQ(s.headers[0].second, v["authorization"].get<std::string>())
        << "vector " << checked << ": " << v.dump() << "\ncanonical request:\n"
        << s.canonical_request;
    EXPECT_EQ(s.headers[1].second, v["x_amz_date"].get<std::string>());
    EXPECT_EQ(s.headers[2].second, v["x_amz_content_sha256"].get<std::string>());
    ++checked;
  }
  EXPECT_EQ(checked, 500);
}

}  // namespace
}  // namespace datasite::net
