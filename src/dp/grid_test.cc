#include "dp/grid.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "dp/random_for_test.h"

namespace datasite::dp {
namespace {

TEST(GridTest, RoundsToTheNearestStep) {
  EXPECT_EQ(*ToGrid(1.0, 0), 1);
  EXPECT_EQ(*ToGrid(2.4, 0), 2);
  EXPECT_EQ(*ToGrid(2.6, 0), 3);
  EXPECT_EQ(*ToGrid(-2.6, 0), -3);
  EXPECT_EQ(*ToGrid(0.3, -2), 1);      // 0.3 / 0.25 = 1.2
  EXPECT_EQ(*ToGrid(1000.0, 3), 125);  // 1000 / 8
  EXPECT_EQ(*ToGrid(0.0, 5), 0);
  EXPECT_EQ(*ToGrid(-0.0, 5), 0);
}

TEST(GridTest, HalvesGoAwayFromZero) {
  EXPECT_EQ(*ToGrid(2.5, 0), 3);
  EXPECT_EQ(*ToGrid(-2.5, 0), -3);
  EXPECT_EQ(*ToGrid(0.375, -2), 2);  // 1.5 steps of 0.25
}

TEST(GridTest, ExactForValuesFarFromTheStep) {
  // 0.1 is not a multiple of 2^-60, but its exact quotient is known: 0.1 as a double is
  // 3602879701896397 * 2^-55.
  EXPECT_EQ(*ToGrid(0.1, -60), 3602879701896397LL * 32);
  // Below half a step: 0.
  EXPECT_EQ(*ToGrid(std::ldexp(1.0, -40), -38), 0);
  EXPECT_EQ(*ToGrid(std::ldexp(1.0, -39), -38), 1);  // exactly half a step
  // Subnormal input.
  EXPECT_EQ(*ToGrid(std::numeric_limits<double>::denorm_min(), -1074), 1);
}

TEST(GridTest, SaturatesInsteadOfOverflowing) {
  EXPECT_EQ(*ToGrid(1e300, 0), INT64_MAX);
  EXPECT_EQ(*ToGrid(-1e300, 0), -INT64_MAX);
  EXPECT_EQ(*ToGrid(std::ldexp(1.0, 62), 0), int64_t{1} << 62);
  EXPECT_EQ(*ToGrid(std::ldexp(1.0, 63), 0), INT64_MAX);
  EXPECT_EQ(*ToGrid(std::ldexp(1.0, 100), 40), int64_t{1} << 60);
}

TEST(GridTest, RefusesNonFiniteValuesAndBadExponents) {
  EXPECT_EQ(ToGrid(std::nan(""), 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ToGrid(HUGE_VAL, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ToGrid(-HUGE_VAL, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ToGrid(1.0, 1024).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ToGrid(1.0, -1075).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(FromGrid(1, 2000).status().code(), StatusCode::kInvalidArgument);
}

TEST(GridTest, RoundTripIsWithinHalfAStep) {
  SeededRandomForTest random(1);
  for (int i = 0; i < 100000; ++i) {
    const double x = std::ldexp(static_cast<double>(random.Next() >> 11), -40) *
                     (random.Next() % 2 ? 1 : -1);  // |x| < 2^13
    const int k = static_cast<int>(random.Next() % 40) - 30;
    const int64_t n = *ToGrid(x, k);
    const double back = *FromGrid(n, k);
    EXPECT_LE(std::fabs(back - x), std::ldexp(1.0, k - 1)) << x << " k=" << k;
  }
}

TEST(GridTest, FromGridIsExactForGridValues) {
  EXPECT_EQ(*FromGrid(3, -2), 0.75);
  EXPECT_EQ(*FromGrid(-125, 3), -1000.0);
  EXPECT_EQ(*FromGrid((int64_t{1} << 53) - 1, -53), 1.0 - std::ldexp(1.0, -53));
}

TEST(GridTest, GridBoundsKeepTheSensitivityExact) {
  // Clamp bounds on the grid: every clamped value rounds into [lo, hi] / 2^k.
  const int k = -3;
  const double lo = -2.5;  // -20 steps
  const double hi = 4.0;   // 32 steps
  SeededRandomForTest random(2);
  for (int i = 0; i < 10000; ++i) {
    const double x = lo + (hi - lo) * (static_cast<double>(random.Next() >> 11) / 0x1p53);
    const int64_t n = *ToGrid(x, k);
    EXPECT_GE(n, -20);
    EXPECT_LE(n, 32);
  }
}

}  // namespace
}  // namespace datasite::dp
