#include "auth/password.h"

#include <gtest/gtest.h>

#include <string>

#include "core/random.h"

namespace datasite::auth {
namespace {

// Each hash costs ~100 ms: hash once per test, and share the hash where a test only reads it.
class PasswordTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(InitCrypto()); }
};

constexpr char kGood[] = "Corr3ct-Horse";

// A hash of kGood, made once per process for the tests that only read it.
const std::string& GoodHash() {
  static const std::string hash = [] {
    Result<std::string> h = HashPassword(kGood);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? *h : std::string();
  }();
  return hash;
}

TEST_F(PasswordTest, VerifyAcceptsTheHashedPassword) {
  Result<std::string> hash = HashPassword(kGood);
  ASSERT_TRUE(hash.ok()) << hash.status().ToString();
  EXPECT_TRUE(VerifyPassword(*hash, kGood));
}

TEST_F(PasswordTest, VerifyRefusesWrongPassword) {
  EXPECT_FALSE(VerifyPassword(GoodHash(), "Wr0ng-Horse"));
}

TEST_F(PasswordTest, VerifyRefusesPasswordWithTrailingSpace) {
  EXPECT_FALSE(VerifyPassword(GoodHash(), "Corr3ct-Horse "));
}

TEST_F(PasswordTest, EncodedHashIsArgon2id) {
  EXPECT_EQ(GoodHash().rfind("$argon2id$", 0), 0u) << GoodHash();
  EXPECT_EQ(GoodHash().find(kGood), std::string::npos);
}

TEST_F(PasswordTest, HashesAreSalted) {
  Result<std::string> a = HashPassword(kGood);
  Result<std::string> b = HashPassword(kGood);
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  EXPECT_NE(*a, *b);
}

TEST_F(PasswordTest, AMarkedDevelopmentHashStillVerifies) {
  std::string marked = MarkDevelopmentHash(GoodHash());
  EXPECT_TRUE(IsDevelopmentHash(marked));
  EXPECT_FALSE(IsDevelopmentHash(GoodHash()));
  EXPECT_EQ(MarkDevelopmentHash(marked), marked);
  EXPECT_TRUE(VerifyPassword(marked, kGood));
  EXPECT_FALSE(VerifyPassword(marked, "Wr0ng-Horse"));
}

TEST_F(PasswordTest, VerifyRefusesGarbageHash) {
  EXPECT_FALSE(VerifyPassword("", kGood));
  EXPECT_FALSE(VerifyPassword("not a hash", kGood));
  EXPECT_FALSE(VerifyPassword("$argon2id$v=19$m=65536,t=2,p=1$AAAA$AAAA", kGood));
}

TEST_F(PasswordTest, StrengthAcceptsGoodPassword) {
  EXPECT_TRUE(CheckPasswordStrength("Abcdefz1", "").ok());
  EXPECT_TRUE(CheckPasswordStrength(kGood, "jane@example.org").ok());
}

TEST_F(PasswordTest, StrengthRefusesTooShort) {
  Status s = CheckPasswordStrength("Abcdefz", "");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("at least 8"), std::string::npos) << s.message();
}

TEST_F(PasswordTest, StrengthAcceptsMaximumLength) {
  std::string p = "Aa1" + std::string(kMaxPasswordLength - 3, 'x');
  ASSERT_EQ(p.size(), 128u);
  EXPECT_TRUE(CheckPasswordStrength(p, "").ok());
}

TEST_F(PasswordTest, StrengthRefusesTooLong) {
  std::string p = "Aa1" + std::string(126, 'x');
  ASSERT_EQ(p.size(), 129u);
  Status s = CheckPasswordStrength(p, "");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("at most 128"), std::string::npos) << s.message();
}

// Regression (issue 12): composition rules refused "verysecurepassword" for lacking an upper-case
// letter and a digit; NIST SP 800-63B asks for none.
TEST_F(PasswordTest, StrengthAsksForNoComposition) {
  EXPECT_TRUE(CheckPasswordStrength("verysecurepassword", "").ok());
  EXPECT_TRUE(CheckPasswordStrength("abcdefgz", "").ok());
  EXPECT_TRUE(CheckPasswordStrength("ABCDEFGZ", "").ok());
  EXPECT_TRUE(CheckPasswordStrength("correct horse battery staple", "").ok());
}

TEST_F(PasswordTest, StrengthRefusesCommonPasswords) {
  for (const char* p : {"password123", "qwertyuiop", "12345678", "iloveyou", "trustno1"}) {
    Status s = CheckPasswordStrength(p, "");
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << p;
    EXPECT_NE(s.message().find("most common passwords"), std::string::npos) << s.message();
  }
}

TEST_F(PasswordTest, CommonPasswordsAreMatchedWithoutLetterCase) {
  EXPECT_TRUE(IsCommonPassword("PassWord123"));
  EXPECT_TRUE(IsCommonPassword("QWERTYUIOP"));
  EXPECT_EQ(CheckPasswordStrength("Password123", "").code(), StatusCode::kInvalidArgument);
}

TEST_F(PasswordTest, TheListHoldsShortCommonPasswordsToo) {
  EXPECT_TRUE(IsCommonPassword("abc123"));
  EXPECT_TRUE(IsCommonPassword("123456"));
  EXPECT_FALSE(IsCommonPassword("verysecurepassword"));
  EXPECT_FALSE(IsCommonPassword(""));
  EXPECT_FALSE(IsCommonPassword("password1234567890-not-on-any-list"));
}

TEST_F(PasswordTest, StrengthRefusesOneRepeatedCharacter) {
  Status s = CheckPasswordStrength("zzzzzzzzzzzz", "");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("repeated"), std::string::npos) << s.message();
}

TEST_F(PasswordTest, MinimumLengthCountsCharactersNotBytes) {
  // Four two-byte characters: eight bytes, but four characters.
  EXPECT_EQ(CheckPasswordStrength("\xc3\xa4\xc3\xb6\xc3\xbc\xc3\x9f", "").code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(CheckPasswordStrength("gr\xc3\xbc\xc3\x9f gott!", "").ok());
}

TEST_F(PasswordTest, EmptyPasswordIsRefusedUnderEveryRule) {
  for (PasswordRules rules : {PasswordRules::kStandard, PasswordRules::kDevelopment}) {
    auto r = CheckNewPassword("", "", rules);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST_F(PasswordTest, DevelopmentRulesAcceptShortAndCommonWithAWarning) {
  for (const char* p : {"abc123", "pw", "123", "password123", "qwertyuiop", "aaaaaaaaa"}) {
    auto r = CheckNewPassword(p, "", PasswordRules::kDevelopment);
    ASSERT_TRUE(r.ok()) << p << ": " << r.status().ToString();
    EXPECT_NE(r->find("development server"), std::string::npos) << *r;
    EXPECT_EQ(CheckNewPassword(p, "", PasswordRules::kStandard).status().code(),
              StatusCode::kInvalidArgument)
        << p;
  }
}

TEST_F(PasswordTest, DevelopmentRulesGiveNoWarningForAGoodPassword) {
  auto r = CheckNewPassword("verysecurepassword", "", PasswordRules::kDevelopment);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty()) << *r;
}

TEST_F(PasswordTest, DevelopmentRulesStillRefuseTooLongAndTheEmail) {
  EXPECT_EQ(
      CheckNewPassword(std::string(kMaxPasswordLength + 1, 'x'), "", PasswordRules::kDevelopment)
          .status()
          .code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckNewPassword("a@b.org", "A@b.org", PasswordRules::kDevelopment).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(PasswordTest, StrengthRefusesPasswordEqualToEmail) {
  Status s = CheckPasswordStrength("Jane1@example.org", "Jane1@example.org");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("email"), std::string::npos) << s.message();
}

TEST_F(PasswordTest, StrengthAcceptsPasswordContainingButNotEqualToEmail) {
  EXPECT_TRUE(CheckPasswordStrength("Jane1@example.org!", "Jane1@example.org").ok());
}

}  // namespace
}  // namespace datasite::auth

namespace datasite::auth {
namespace {

// Regression: a password equal to the email up to letter case used to be accepted.
TEST(PasswordStrengthTest, EmailInOtherCaseIsRefused) {
  EXPECT_EQ(CheckPasswordStrength("Jane1@Example.org", "jane1@example.org").code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace datasite::auth
