#include "core/random.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace datasite {
namespace {

class RandomTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(InitCrypto()); }
};

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

TEST_F(RandomTest, InitCryptoIsIdempotent) {
  EXPECT_TRUE(InitCrypto());
  EXPECT_TRUE(InitCrypto());
}

TEST_F(RandomTest, NewUuidHasCanonicalLayout) {
  std::string id = NewUuid();
  ASSERT_EQ(id.size(), 36u);
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      EXPECT_EQ(id[i], '-') << id;
    } else {
      EXPECT_TRUE(IsLowerHex(id[i])) << id << " at " << i;
    }
  }
}

TEST_F(RandomTest, NewUuidIsVersion4Variant1) {
  for (int i = 0; i < 100; ++i) {
    std::string id = NewUuid();
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
  }
}

TEST_F(RandomTest, NewUuidPassesIsUuid) {
  for (int i = 0; i < 100; ++i) {
    std::string id = NewUuid();
    EXPECT_TRUE(IsUuid(id)) << id;
  }
}

TEST_F(RandomTest, NewUuidIsUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(NewUuid());
  EXPECT_EQ(seen.size(), 1000u);
}

TEST_F(RandomTest, IsUuidAcceptsCanonicalLowercase) {
  EXPECT_TRUE(IsUuid("123e4567-e89b-42d3-a456-426614174000"));
  EXPECT_TRUE(IsUuid("00000000-0000-0000-0000-000000000000"));
}

TEST_F(RandomTest, IsUuidRefusesUppercase) {
  EXPECT_FALSE(IsUuid("123E4567-E89B-42D3-A456-426614174000"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-42d3-a456-42661417400A"));
}

TEST_F(RandomTest, IsUuidRefusesMisplacedDashes) {
  EXPECT_FALSE(IsUuid("123e4567e-89b-42d3-a456-426614174000"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-42d3-a4564-26614174000"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-42d3-a456-4266141740-0"));
  EXPECT_FALSE(IsUuid("123e4567_e89b_42d3_a456_426614174000"));
}

TEST_F(RandomTest, IsUuidRefusesMissingDashes) {
  EXPECT_FALSE(IsUuid("123e4567e89b42d3a456426614174000"));
  EXPECT_FALSE(IsUuid("123e4567e89b42d3a456426614174000abcd"));  // 36 hex digits, no dash
}

TEST_F(RandomTest, IsUuidRefusesWrongLength) {
  EXPECT_FALSE(IsUuid(""));
  EXPECT_FALSE(IsUuid("123e4567-e89b-42d3-a456-42661417400"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-42d3-a456-4266141740000"));
  EXPECT_FALSE(IsUuid("{123e4567-e89b-42d3-a456-426614174000}"));
}

TEST_F(RandomTest, IsUuidRefusesNonHex) {
  EXPECT_FALSE(IsUuid("123e4567-e89b-42d3-a456-42661417400g"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-42d3-a456-42661417400 "));
  EXPECT_FALSE(IsUuid(std::string("123e4567-e89b-42d3-a456-42661417400\0", 36)));
}

TEST_F(RandomTest, RandomBytesHasRequestedLength) {
  EXPECT_EQ(RandomBytes(0).size(), 0u);
  EXPECT_EQ(RandomBytes(1).size(), 1u);
  EXPECT_EQ(RandomBytes(64).size(), 64u);
}

TEST_F(RandomTest, RandomBytesDiffer) { EXPECT_NE(RandomBytes(32), RandomBytes(32)); }

TEST_F(RandomTest, HexEncodeKnownBytes) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\x01\x0f\x10\xab\xff", 6)), "00010f10abff");
  EXPECT_EQ(HexEncode("Hi"), "4869");
}

TEST_F(RandomTest, HexEncodeIsLowercaseAndDoubleLength) {
  std::string bytes = RandomBytes(100);
  std::string hex = HexEncode(bytes);
  ASSERT_EQ(hex.size(), 200u);
  for (char c : hex) EXPECT_TRUE(IsLowerHex(c)) << hex;
}

TEST_F(RandomTest, Base64UrlEncodeKnownVectors) {
  // RFC 4648 test vectors, without padding.
  EXPECT_EQ(Base64UrlEncode(""), "");
  EXPECT_EQ(Base64UrlEncode("f"), "Zg");
  EXPECT_EQ(Base64UrlEncode("fo"), "Zm8");
  EXPECT_EQ(Base64UrlEncode("foo"), "Zm9v");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("fooba"), "Zm9vYmE");
  EXPECT_EQ(Base64UrlEncode("foobar"), "Zm9vYmFy");
}

TEST_F(RandomTest, Base64UrlEncodeIsUrlSafe) {
  // Standard base64 of these bytes is "+/8=" and "++++".
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(Base64UrlEncode("\xfb\xef\xbe"), "----");
  EXPECT_EQ(Base64UrlEncode("\xff\xff\xff"), "____");
}

TEST_F(RandomTest, Base64UrlEncodeHasNoPaddingOrUnsafeCharacters) {
  for (size_t n = 0; n < 40; ++n) {
    std::string out = Base64UrlEncode(RandomBytes(n));
    EXPECT_EQ(out.size(), (n * 4 + 2) / 3) << n;
    EXPECT_EQ(out.find_first_of("=+/"), std::string::npos) << out;
  }
}

TEST_F(RandomTest, Base64UrlEncodeKeepsEmbeddedZeros) {
  EXPECT_EQ(Base64UrlEncode(std::string(3, '\0')), "AAAA");
  EXPECT_EQ(Base64UrlEncode(std::string(32, '\0')).size(), 43u);
}

}  // namespace
}  // namespace datasite
