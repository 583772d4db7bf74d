#include "sync/bundle.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sodium.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "blob/o_direct_test_util.h"
#include "core/random.h"

namespace datasite::sync {
namespace {

namespace fs = std::filesystem;

struct KeyPair {
  std::string public_key, secret_key;
};

KeyPair NewKeys() {
  KeyPair k;
  k.public_key.resize(crypto_sign_PUBLICKEYBYTES);
  k.secret_key.resize(crypto_sign_SECRETKEYBYTES);
  crypto_sign_keypair(reinterpret_cast<unsigned char*>(k.public_key.data()),
                      reinterpret_cast<unsigned char*>(k.secret_key.data()));
  return k;
}

std::string Sha256Hex(std::string_view bytes) {
  unsigned char d[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(d, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  return HexEncode(std::string_view(reinterpret_cast<char*>(d), sizeof(d)));
}

class BundleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(InitCrypto());
    std::string tmpl = ::testing::TempDir() + "bundleXXXXXX";
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/staging");
    source_keys_ = NewKeys();
    destination_keys_ = NewKeys();
  }
  void TearDown() override { fs::remove_all(dir_); }

  BundleHeader Header() const {
    BundleHeader h;
    h.source = {"low", HexEncode(source_keys_.public_key), NewUuid(), "low"};
    h.destination_verify_key = HexEncode(destination_keys_.public_key);
    h.seq = 3;
    h.peer_seq_seen = 2;
    h.created_at = 1767225600000;
    return h;
  }

  // A file with `bytes`, as a blob to send (`name` is its path).
  OutgoingBlob Blob(const std::string& bytes) {
    std::string path = dir_ + "/blob" + std::to_string(blob_count_++);
    std::ofstream(path, std::ios::binary) << bytes;
    return {[path] { return blob::OpenFileReader(path); }, static_cast<int64_t>(bytes.size()),
            Sha256Hex(bytes), path};
  }

  // The whole bundle, read through BundleSource with reads of `step` bytes.
  std::string Write(const std::string& objects, const std::vector<std::string>& blobs,
                    size_t step = 1 << 20) {
    std::vector<OutgoingBlob> files;
    for (const auto& b : blobs) files.push_back(Blob(b));
    auto source = BundleSource::Create(Header(), objects, files, source_keys_.secret_key);
    EXPECT_TRUE(source.ok()) << source.status().ToString();
    if (!source.ok()) return "";
    return ReadAll(**source, step);
  }

  static std::string ReadAll(BundleSource& source, size_t step) {
    std::string out;
    std::vector<char> buf(step);
    while (true) {
      auto n = source.Read(buf.data(), buf.size());
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      if (!n.ok() || *n == 0) break;
      out.append(buf.data(), *n);
    }
    EXPECT_EQ(static_cast<int64_t>(out.size()), source.size());
    return out;
  }

  BundleVerifier NewVerifier(BundleVerifier::HeaderCheck check = nullptr,
                             int64_t max_objects = kDefaultMaxObjectsSize) {
    return BundleVerifier(
        std::move(check), [this] { return dir_ + "/staging/" + NewUuid() + ".part"; }, max_objects);
  }

  // Feeds `bundle` in chunks of `chunk` bytes; the first error, or Finish's answer.
  Result<VerifiedBundle> Verify(std::string_view bundle, size_t chunk,
                                BundleVerifier::HeaderCheck check = nullptr) {
    BundleVerifier v = NewVerifier(std::move(check));
    for (size_t at = 0; at < bundle.size(); at += chunk) {
      RETURN_IF_ERROR(v.Write(bundle.substr(at, chunk)));
    }
    return v.Finish();
  }

  size_t StagingFiles() const {
    return static_cast<size_t>(
        std::distance(fs::directory_iterator(dir_ + "/staging"), fs::directory_iterator()));
  }

  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // Offsets of the sections of a bundle written by Write.
  struct Layout {
    size_t header, signature, objects, blobs;
  };
  static Layout LayoutOf(const std::string& bundle, size_t objects_size) {
    uint32_t len = 0;
    for (int i = 8; i < 12; ++i) len = (len << 8) | static_cast<unsigned char>(bundle[i]);
    Layout l;
    l.header = 12;
    l.signature = 12 + len;
    l.objects = l.signature + 64;
    l.blobs = l.objects + objects_size;
    return l;
  }

  void ExpectRefused(const Result<VerifiedBundle>& r, std::string_view reason,
                     StatusCode code = StatusCode::kInvalidArgument) {
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(RefusalReason(r.status()), reason) << r.status().ToString();
    EXPECT_EQ(r.status().code(), code) << r.status().ToString();
    EXPECT_EQ(StagingFiles(), 0u);
  }

  std::string dir_;
  KeyPair source_keys_, destination_keys_;
  int blob_count_ = 0;
};

const std::string kObjects = R"({"objects":[],"deleted":[],"inventory":[]})";

TEST_F(BundleTest, RoundTripWithEveryChunkSize) {
  std::string big(300000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + (i >> 9));
  const std::vector<std::vector<std::string>> blob_sets = {
      {}, {"one blob"}, {"first", "", big, "last"}, {""}};
  for (const auto& blobs : blob_sets) {
    std::string bundle = Write(kObjects, blobs, 4096);
    for (size_t chunk : {size_t{1}, size_t{7}, size_t{64 << 10}, bundle.size()}) {
      if (chunk == 1 && bundle.size() > 100000) chunk = 997;  // keeps the test quick
      auto r = Verify(bundle, chunk);
      ASSERT_TRUE(r.ok()) << r.status().ToString() << " chunk " << chunk;
      EXPECT_EQ(r->objects_json, kObjects);
      EXPECT_EQ(r->header.seq, 3);
      EXPECT_EQ(r->header.peer_seq_seen, 2);
      EXPECT_EQ(r->header.source.side, "low");
      ASSERT_EQ(r->blobs.size(), blobs.size());
      for (size_t i = 0; i < blobs.size(); ++i) {
        EXPECT_EQ(r->blobs[i].size, static_cast<int64_t>(blobs[i].size()));
        EXPECT_EQ(r->blobs[i].sha256, Sha256Hex(blobs[i]));
        EXPECT_EQ(ReadFile(r->blobs[i].path), blobs[i]);
      }
      RemoveStagedFiles(*r);
      EXPECT_EQ(StagingFiles(), 0u);
    }
  }
}

// Staged blobs are written as the blob store writes uploads: with O_DIRECT from the first full
// MiB where the file system allows (kDirect), through the page cache otherwise; byte for byte
// either way, whatever the sizes around the 4 KiB and 1 MiB boundaries.
TEST_F(BundleTest, StagedBlobsAreWrittenInTheBlobStoresWriteMode) {
  std::mt19937 rng(11);
  const size_t kMiB = 1 << 20;
  std::vector<std::string> blobs;
  for (size_t size : {3 * kMiB + 12345, size_t{4097}, kMiB, size_t{1}}) {
    std::string b(size, '\0');
    for (auto& c : b) c = static_cast<char>(rng());
    blobs.push_back(std::move(b));
  }
  std::string bundle = Write(kObjects, blobs);
  size_t in_first_blob = LayoutOf(bundle, kObjects.size()).blobs + 2 * kMiB;
  for (blob::BlobWriteMode mode : {blob::BlobWriteMode::kDirect, blob::BlobWriteMode::kPageCache}) {
    BundleVerifier v(
        nullptr, [this] { return dir_ + "/staging/" + NewUuid() + ".part"; },
        kDefaultMaxObjectsSize, mode);
    ASSERT_TRUE(v.Write(std::string_view(bundle).substr(0, in_first_blob)).ok());
    ASSERT_EQ(StagingFiles(), 1u);
    std::string staging = fs::directory_iterator(dir_ + "/staging")->path().string();
    EXPECT_EQ(blob::OpenWithODirect(staging), mode == blob::BlobWriteMode::kDirect);
    for (size_t at = in_first_blob; at < bundle.size(); at += 65536) {
      ASSERT_TRUE(v.Write(std::string_view(bundle).substr(at, 65536)).ok());
    }
    auto r = v.Finish();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->blobs.size(), blobs.size());
    for (size_t i = 0; i < blobs.size(); ++i) {
      EXPECT_TRUE(ReadFile(r->blobs[i].path) == blobs[i]) << "blob " << i;
    }
    RemoveStagedFiles(*r);
  }
}

TEST_F(BundleTest, SourceSizeIsKnownUpFrontAndReadsAreBounded) {
  std::string big(3 << 20, 'x');
  auto source =
      BundleSource::Create(Header(), kObjects, {Blob(big), Blob("tail")}, source_keys_.secret_key);
  ASSERT_TRUE(source.ok());
  int64_t expected = (*source)->size();
  std::vector<char> buf(8 << 20);
  int64_t total = 0;
  while (true) {
    auto n = (*source)->Read(buf.data(), buf.size());
    ASSERT_TRUE(n.ok());
    if (*n == 0) break;
    EXPECT_LE(*n, size_t{1} << 20);
    total += static_cast<int64_t>(*n);
  }
  EXPECT_EQ(total, expected);
  EXPECT_GT(expected, int64_t{3} << 20);
}

TEST_F(BundleTest, HeaderRoundTripsThroughJson) {
  BundleHeader h = Header();
  h.objects_size = 10;
  h.objects_sha256 = std::string(64, 'a');
  h.blobs = {{std::string(64, 'b'), 0}, {std::string(64, 'c'), 5}};
  auto parsed = BundleHeader::Parse(h.ToJson());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->ToJson(), h.ToJson());
}

TEST_F(BundleTest, HeaderParseIsStrict) {
  BundleHeader h = Header();
  h.objects_sha256 = std::string(64, 'a');
  nlohmann::json good = nlohmann::json::parse(h.ToJson());
  ASSERT_TRUE(BundleHeader::Parse(good.dump()).ok());
  auto refused = [](const nlohmann::json& j) {
    auto r = BundleHeader::Parse(j.dump());
    return !r.ok() && RefusalReason(r.status()) == "tampered" &&
           r.status().code() == StatusCode::kInvalidArgument;
  };
  auto with = [&](auto edit) {
    nlohmann::json j = good;
    edit(j);
    return j;
  };
  EXPECT_TRUE(refused(with([](auto& j) { j["extra"] = 1; })));
  EXPECT_TRUE(refused(with([](auto& j) { j.erase("seq"); })));
  EXPECT_TRUE(refused(with([](auto& j) { j["format"] = 2; })));
  EXPECT_TRUE(refused(with([](auto& j) { j["seq"] = 0; })));
  EXPECT_TRUE(refused(with([](auto& j) { j["seq"] = "3"; })));
  EXPECT_TRUE(refused(with([](auto& j) { j["seq"] = 3.5; })));
  EXPECT_TRUE(refused(with([](auto& j) { j["seq"] = uint64_t{1} << 63; })));
  EXPECT_TRUE(refused(with([](auto& j) { j["peer_seq_seen"] = -1; })));
  EXPECT_TRUE(refused(with([](auto& j) { j["source"]["side"] = "middle"; })));
  EXPECT_TRUE(refused(with([](auto& j) { j["source"]["role"] = "admin"; })));
  EXPECT_TRUE(refused(with([](auto& j) { j["source"]["verify_key"] = std::string(64, 'A'); })));
  EXPECT_TRUE(refused(with([](auto& j) { j["destination"]["verify_key"] = "abc"; })));
  EXPECT_TRUE(refused(with([](auto& j) { j["objects"]["size"] = -1; })));
  EXPECT_TRUE(refused(with([](auto& j) { j["objects"]["size"] = kMaxBlobSize + 1; })));
  EXPECT_TRUE(refused(with([](auto& j) { j["blobs"] = nlohmann::json::object(); })));
  EXPECT_TRUE(refused(with([](auto& j) { j["blobs"].push_back({{"sha256", "x"}, {"size", 1}}); })));
  EXPECT_TRUE(refused(with([](auto& j) {
    j["blobs"].push_back({{"sha256", std::string(64, 'a')}, {"size", 1}, {"path", "/etc"}});
  })));
  EXPECT_TRUE(refused(nlohmann::json::array()));
  EXPECT_FALSE(BundleHeader::Parse("{not json").ok());
  // A duplicated field: two readers could see two different headers in the same signed bytes.
  std::string dup = good.dump();
  dup.insert(1, R"("seq":99,)");
  auto r = BundleHeader::Parse(dup);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(RefusalReason(r.status()), "tampered");
}

TEST_F(BundleTest, FlippedByteInAnySectionIsTampered) {
  std::string bundle = Write(kObjects, {"blob zero", "blob one!"});
  Layout l = LayoutOf(bundle, kObjects.size());
  size_t blob1 = l.blobs + 9;
  struct Case {
    const char* name;
    size_t offset;
  };
  for (Case c : {Case{"magic", 0}, Case{"magic end", 7}, Case{"header length", 11},
                 Case{"header", l.header + 20}, Case{"header end", l.signature - 2},
                 Case{"signature", l.signature}, Case{"signature end", l.objects - 1},
                 Case{"objects", l.objects + 3}, Case{"blob 0", l.blobs}, Case{"blob 1", blob1 + 4},
                 Case{"last byte", bundle.size() - 1}}) {
    std::string bad = bundle;
    bad[c.offset] ^= 0x01;
    for (size_t chunk : {size_t{1}, bundle.size()}) {
      SCOPED_TRACE(std::string(c.name) + " chunk " + std::to_string(chunk));
      // The header length's last byte one higher reads one byte of signature as header: the
      // bundle then ends early or its header is not JSON; either is a refusal.
      auto r = Verify(bad, chunk);
      ASSERT_FALSE(r.ok());
      if (c.offset == 11) {
        EXPECT_TRUE(RefusalReason(r.status()) == "tampered" ||
                    RefusalReason(r.status()) == "truncated");
        EXPECT_EQ(StagingFiles(), 0u);
      } else {
        ExpectRefused(r, "tampered");
      }
    }
  }
}

TEST_F(BundleTest, AppendedByteIsTampered) {
  std::string bundle = Write(kObjects, {"abc"});
  ExpectRefused(Verify(bundle + "x", bundle.size() + 1), "tampered");
  ExpectRefused(Verify(bundle + "x", 1), "tampered");
  // Also when the extra byte comes in a chunk of its own after the last blob is staged.
  BundleVerifier v = NewVerifier();
  ASSERT_TRUE(v.Write(bundle).ok());
  EXPECT_EQ(StagingFiles(), 1u);
  Status st = v.Write("x");
  EXPECT_EQ(RefusalReason(st), "tampered");
  EXPECT_EQ(StagingFiles(), 0u);
  EXPECT_FALSE(v.Finish().ok());
}

// Every truncation says "truncated": no section is judged before all its bytes are in, so a
// bundle cut short never looks tampered (the magic is judged byte by byte, but a prefix of it is
// still right).
TEST_F(BundleTest, TruncationAtAnyOffsetIsTruncated) {
  std::string bundle = Write(kObjects, {"blob zero", "", "blob two"});
  for (size_t cut = 0; cut < bundle.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    ExpectRefused(Verify(bundle.substr(0, cut), 5), "truncated");
  }
}

TEST_F(BundleTest, WrongKeyIsTampered) {
  // Signed by another key than the one the header names.
  KeyPair other = NewKeys();
  BundleHeader h = Header();
  h.source.verify_key = HexEncode(other.public_key);
  auto source = BundleSource::Create(h, kObjects, {}, other.secret_key);
  ASSERT_TRUE(source.ok());
  std::string bundle = ReadAll(**source, 4096);
  // Swap in the real source's key: the signature no longer verifies.
  std::string good_key = HexEncode(source_keys_.public_key);
  std::string other_key = HexEncode(other.public_key);
  size_t at = bundle.find(other_key);
  ASSERT_NE(at, std::string::npos);
  bundle.replace(at, other_key.size(), good_key);
  bool called = false;
  auto r = Verify(bundle, bundle.size(), [&](const BundleHeader&) {
    called = true;
    return Status::Ok();
  });
  ExpectRefused(r, "tampered");
  EXPECT_FALSE(called) << "the header check ran before the signature was verified";
}

TEST_F(BundleTest, SourceRefusesAKeyThatIsNotTheHeaders) {
  KeyPair other = NewKeys();
  auto source = BundleSource::Create(Header(), kObjects, {}, other.secret_key);
  EXPECT_EQ(source.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(BundleSource::Create(Header(), kObjects, {}, "short").ok());
}

TEST_F(BundleTest, HeaderCheckRefusalPassesThroughUnchanged) {
  std::string bundle = Write(kObjects, {"abc", "def"});
  Status refusal = Refuse(Refusal::kRevokedKey, "peer 'low' was revoked");
  BundleHeader seen;
  auto r = Verify(bundle, 7, [&](const BundleHeader& h) {
    seen = h;
    return refusal;
  });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(r.status().message(), refusal.message());
  EXPECT_EQ(seen.source.verify_key, HexEncode(source_keys_.public_key));
  EXPECT_EQ(seen.destination_verify_key, HexEncode(destination_keys_.public_key));
  EXPECT_EQ(StagingFiles(), 0u);
}

TEST_F(BundleTest, HeaderCheckRunsBeforeAnyBytePastTheSignature) {
  std::string bundle = Write(kObjects, {"abc"});
  Layout l = LayoutOf(bundle, kObjects.size());
  int calls = 0;
  BundleVerifier v = NewVerifier([&](const BundleHeader&) {
    ++calls;
    return Status::Ok();
  });
  ASSERT_TRUE(v.Write(std::string_view(bundle).substr(0, l.objects - 1)).ok());
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(v.Write(std::string_view(bundle).substr(l.objects - 1, 1)).ok());
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(v.Write(std::string_view(bundle).substr(l.objects)).ok());
  auto r = v.Finish();
  ASSERT_TRUE(r.ok());
  RemoveStagedFiles(*r);
}

TEST_F(BundleTest, ObjectsOverTheLimitAreRefused) {
  std::string bundle = Write(kObjects, {});
  BundleVerifier v = NewVerifier(nullptr, 10);
  Status st = v.Write(bundle);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(RefusalReason(st), "too large");
}

TEST_F(BundleTest, HugeHeaderLengthIsRefusedAtOnce) {
  std::string bytes(kBundleMagic);
  bytes += std::string({'\x00', '\x10', '\x00', '\x01'});  // 1 MiB + 1
  BundleVerifier v = NewVerifier();
  EXPECT_EQ(RefusalReason(v.Write(bytes)), "tampered");
}

TEST_F(BundleTest, AbandonedVerifierRemovesItsStagingFiles) {
  std::string big(2 << 20, 'z');
  std::string bundle = Write(kObjects, {"small", big});
  Layout l = LayoutOf(bundle, kObjects.size());
  {
    BundleVerifier v = NewVerifier();
    ASSERT_TRUE(v.Write(std::string_view(bundle).substr(0, l.blobs + 5 + (3 << 19))).ok());
    EXPECT_EQ(StagingFiles(), 2u);
  }
  EXPECT_EQ(StagingFiles(), 0u);
}

TEST_F(BundleTest, BlobFileOfTheWrongSizeIsAnError) {
  OutgoingBlob f = Blob("twelve bytes");
  f.size = 13;
  EXPECT_FALSE(BundleSource::Create(Header(), kObjects, {f}, source_keys_.secret_key).ok());
  // A file that shrinks after Create: the read fails instead of sending a short bundle.
  OutgoingBlob g = Blob("twelve bytes");
  auto source = BundleSource::Create(Header(), kObjects, {g}, source_keys_.secret_key);
  ASSERT_TRUE(source.ok());
  ::truncate(g.name.c_str(), 4);
  std::vector<char> buf(1 << 16);
  Status last;
  int64_t total = 0;
  for (int i = 0; i < 100; ++i) {
    auto n = (*source)->Read(buf.data(), buf.size());
    if (!n.ok()) {
      last = n.status();
      break;
    }
    ASSERT_NE(*n, 0u) << "the bundle ended without an error after " << total << " bytes";
    total += static_cast<int64_t>(*n);
  }
  EXPECT_FALSE(last.ok());
}

TEST_F(BundleTest, RefusalReasonReadsOnlyRefusals) {
  EXPECT_EQ(RefusalReason(Refuse(Refusal::kWrongDestination, "x")), "wrong destination");
  EXPECT_EQ(Refuse(Refusal::kWrongDestination, "x").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(Refuse(Refusal::kReplayed, "x").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Refuse(Refusal::kOutOfSequence, "x").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Refuse(Refusal::kUnknownKey, "x").message(), "bundle refused (unknown key): x");
  EXPECT_EQ(RefusalReason(InvalidArgumentError("tampered")), "");
  EXPECT_EQ(RefusalReason(Status::Ok()), "");
}

}  // namespace
}  // namespace datasite::sync
