#include "obs/request_id.h"

#include <gtest/gtest.h>

namespace datasite::obs {
namespace {

TEST(RequestIdTest, SafeIdsAreKept) {
  EXPECT_TRUE(IsSafeRequestId("abc-DEF_0.9"));
  EXPECT_TRUE(IsSafeRequestId(std::string(64, 'a')));
}

TEST(RequestIdTest, UnsafeIdsAreRefused) {
  EXPECT_FALSE(IsSafeRequestId(""));
  EXPECT_FALSE(IsSafeRequestId(std::string(65, 'a')));
  EXPECT_FALSE(IsSafeRequestId("a b"));
  EXPECT_FALSE(IsSafeRequestId("a\"b"));
  EXPECT_FALSE(IsSafeRequestId("a\nb"));
  EXPECT_FALSE(IsSafeRequestId("caf\xc3\xa9"));
}

TEST(RequestIdTest, NewIdsAreSafeAndDiffer) {
  const std::string a = NewRequestId(), b = NewRequestId();
  EXPECT_TRUE(IsSafeRequestId(a));
  EXPECT_EQ(a.size(), 16u);
  EXPECT_NE(a, b);
}

TEST(RequestIdTest, ScopeSetsAndRestores) {
  EXPECT_EQ(CurrentRequestId(), "");
  {
    ScopedRequestId outer("outer");
    EXPECT_EQ(CurrentRequestId(), "outer");
    {
      ScopedRequestId inner("inner");
      EXPECT_EQ(CurrentRequestId(), "inner");
    }
    EXPECT_EQ(CurrentRequestId(), "outer");
  }
  EXPECT_EQ(CurrentRequestId(), "");
}

}  // namespace
}  // namespace datasite::obs
