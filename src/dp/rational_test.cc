#include "dp/rational.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace datasite::dp {
namespace {

TEST(RationalTest, ReducedDividesByTheGcd) {
  const Rational r = Reduced({84, 36});
  EXPECT_EQ(r.num, 7);
  EXPECT_EQ(r.den, 3);
  EXPECT_EQ(Reduced({0, 5}).den, 1);
}

TEST(RationalTest, AtLeastIsExactForDyadicDoubles) {
  // 0.1 as a double is 3602879701896397 / 2^55 exactly.
  const Rational tenth = *RationalAtLeast(0.1);
  EXPECT_EQ(tenth.num, 3602879701896397);
  EXPECT_EQ(tenth.den, int64_t{1} << 55);
  const Rational big = *RationalAtLeast(1e12);
  EXPECT_EQ(big.num, 1000000000000);
  EXPECT_EQ(big.den, 1);
  const Rational half = *RationalAtLeast(0.5);
  EXPECT_EQ(half.num, 1);
  EXPECT_EQ(half.den, 2);
}

TEST(RationalTest, AtLeastRoundsTinyValuesUp) {
  for (double x : {1e-30, 3e-19, std::numeric_limits<double>::denorm_min()}) {
    const Rational r = *RationalAtLeast(x);
    EXPECT_GE(static_cast<long double>(r.num) / r.den, static_cast<long double>(x)) << x;
    EXPECT_GE(r.num, 1);
    EXPECT_LE(r.den, int64_t{1} << 62);
  }
  // Just above 2^-63: the least m / 2^62 above it is 1 / 2^62.
  const Rational r = *RationalAtLeast(std::ldexp(1.0 + std::ldexp(1.0, -52), -63));
  EXPECT_EQ(r.num, 1);
  EXPECT_EQ(r.den, int64_t{1} << 62);
}

TEST(RationalTest, AtLeastRefusesWhatIsNotAPositiveFiniteNumber) {
  for (double bad : {0.0, -1.0, std::nan(""), HUGE_VAL, 0x1p62, 1e300}) {
    EXPECT_EQ(RationalAtLeast(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace datasite::dp
