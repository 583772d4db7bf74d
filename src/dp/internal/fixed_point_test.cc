#include "dp/internal/fixed_point.h"

#include <gtest/gtest.h>

#include <cmath>

#include "dp/random_for_test.h"

namespace datasite::dp::internal {
namespace {

uint128 Make(uint64_t hi, uint64_t lo) { return (static_cast<uint128>(hi) << 64) | lo; }

uint128 Random128(SeededRandomForTest& random) { return Make(random.Next(), random.Next()); }

TEST(FixedPointTest, MulOfTheLargestValues) {
  const uint128 max = ~uint128{0};
  const U256 p = Mul(max, max);  // (2^128 - 1)^2 = 2^256 - 2^129 + 1
  EXPECT_TRUE(p.hi == max - 1);
  EXPECT_TRUE(p.lo == 1);
}

TEST(FixedPointTest, DivideInvertsMul) {
  SeededRandomForTest random(1);
  for (int i = 0; i < 2000; ++i) {
    const uint128 a = Random128(random);
    uint128 d = Random128(random) >> (random.Next() % 128);
    if (d == 0) d = 1;
    const uint128 r = Random128(random) % d;
    // n = a * d + r, which fits in 256 bits.
    U256 n = Mul(a, d);
    const uint128 lo = n.lo + r;
    n.hi += lo < n.lo ? 1 : 0;
    n.lo = lo;
    const Quotient q = Divide(n, d);
    EXPECT_TRUE(q.quotient.hi == 0 && q.quotient.lo == a) << i;
    EXPECT_TRUE(q.remainder == r) << i;
  }
}

TEST(FixedPointTest, DivideByADivisorAboveTwoToThe127) {
  // The remainder's doubling carries out of 128 bits here.
  const uint128 d = ~uint128{0} - 12345;
  const U256 n = Mul(d, 77);
  const Quotient q = Divide(U256{n.hi, n.lo + 5}, d);
  EXPECT_TRUE(q.quotient.lo == 77 && q.quotient.hi == 0);
  EXPECT_TRUE(q.remainder == 5);
}

TEST(FixedPointTest, MulWithSmallFactorFlagsOverflow) {
  bool overflow = false;
  const U256 a{uint128{1} << 120, 0};
  Mul(a, 255, &overflow);
  EXPECT_FALSE(overflow);
  Mul(a, 256, &overflow);
  EXPECT_TRUE(overflow);
}

TEST(FixedPointTest, MulShiftRightTakesTheRightBits) {
  SeededRandomForTest random(2);
  for (int i = 0; i < 500; ++i) {
    const U256 a{Random128(random) >> 64, Random128(random)};  // a < 2^192
    const uint128 r = Random128(random) >> 64;                 // r < 2^64
    // The product is < 2^256, so Mul(U256, uint64) gives it whole.
    bool overflow = false;
    const U256 p = Mul(a, static_cast<uint64_t>(r), &overflow);
    ASSERT_FALSE(overflow);
    for (int s : {0, 1, 63, 64, 65, 100, 127, 128, 129, 191, 200, 256}) {
      // Bits [s, s + 128) of p.
      uint128 expected;
      if (s == 0) {
        expected = p.lo;
      } else if (s < 128) {
        expected = (p.lo >> s) | (p.hi << (128 - s));
      } else if (s < 256) {
        expected = p.hi >> (s - 128);
      } else {
        expected = 0;
      }
      EXPECT_TRUE(MulShiftRight(a, r, s) == expected) << "s=" << s;
    }
  }
}

TEST(FixedPointTest, ExpNegMatchesHighPrecisionValues) {
  // floor(2^127 exp(-X / 2^116)), computed with Python's decimal module at 120 digits.
  struct Case {
    uint128 x;
    uint128 floor;
  };
  const Case cases[] = {
      {uint128{1} << 116, Make(0x2f16ac6c59de6f8dULL, 0x5d6f63c1482a7c86ULL)},   // exp(-1)
      {uint128{1} << 115, Make(0x4da2cbf1be5827f9ULL, 0xeb3ad1aa9866ebb3ULL)},   // exp(-1/2)
      {uint128{10} << 116, Make(0x00017cd79b5647c9ULL, 0xa9c5b24755098872ULL)},  // exp(-10)
      {Make(0x000123456789abcdULL, 0xef0123456789abcdULL),
       Make(0x7736c08af6274a71ULL, 0xd24fc1b8ff145208ULL)},
      {3, Make(0x7fffffffffffffffULL, 0xffffffffffffe800ULL)},
      {uint128{100} << 116, 0},
      {kExpInputMax, 0},
  };
  for (const Case& c : cases) {
    const Bounds b = ExpNegBoundsForTest(c.x);
    EXPECT_TRUE(b.lower <= c.floor) << static_cast<double>(c.x);
    EXPECT_TRUE(b.upper >= c.floor) << static_cast<double>(c.x);
    // Within kExpError = 2^-108, i.e. 2^19 units of 2^-127.
    EXPECT_TRUE(c.floor - b.lower <= (uint128{1} << 19)) << static_cast<double>(c.x);
  }
}

TEST(FixedPointTest, ExpNegBoundsAreNarrowAndMatchLongDouble) {
  SeededRandomForTest random(3);
  uint128 widest = 0;
  for (int i = 0; i < 20000; ++i) {
    // x spread over [0, 128) on a log-like scale.
    const uint128 x = Random128(random) >> (5 + random.Next() % 120);
    ASSERT_TRUE(x <= kExpInputMax);
    const Bounds b = ExpNegBoundsForTest(x);
    ASSERT_TRUE(b.lower <= b.upper);
    widest = std::max(widest, b.upper - b.lower);
    const long double xl = std::ldexp(static_cast<long double>(x), -116);
    const long double lower = std::ldexp(static_cast<long double>(b.lower), -127);
    const long double exact = std::exp(-xl);
    EXPECT_NEAR(static_cast<double>(lower), static_cast<double>(exact),
                std::max(1e-18, 1e-15 * static_cast<double>(exact)))
        << static_cast<double>(xl);
  }
  // The proven gap is 2^17.3 units; the bounds' width is about twice it at most.
  EXPECT_TRUE(widest <= (uint128{1} << 19)) << static_cast<double>(widest);
}

TEST(FixedPointTest, ExpNegAtZeroIsJustBelowOne) {
  const Bounds b = ExpNegBoundsForTest(0);
  EXPECT_TRUE(b.lower < kOneQ127);
  EXPECT_TRUE(kOneQ127 - b.lower <= (uint128{1} << 19));
  EXPECT_TRUE(b.upper >= kOneQ127);
}

}  // namespace
}  // namespace datasite::dp::internal
