#include "dp/grid.h"

#include <cmath>
#include <cstdlib>

namespace datasite::dp {

Result<int64_t> ToGrid(double x, int k) {
  if (k < kMinGridExponent || k > kMaxGridExponent) {
    return InvalidArgumentError("grid exponent out of range");
  }
  if (!std::isfinite(x)) return InvalidArgumentError("value is not a finite number");
  if (x == 0) return int64_t{0};
  // x = mantissa * 2^(exponent - 53) with 2^52 <= |mantissa| < 2^53, both exact.
  int exponent = 0;
  const double fraction = std::frexp(x, &exponent);
  const int64_t mantissa = static_cast<int64_t>(std::ldexp(fraction, 53));
  const uint64_t magnitude = static_cast<uint64_t>(std::llabs(mantissa));
  // x / 2^k = mantissa * 2^shift.
  const int shift = exponent - 53 - k;
  uint64_t rounded;
  if (shift >= 0) {
    // magnitude < 2^53, so magnitude * 2^shift < 2^63 exactly when shift <= 10.
    rounded = shift <= 10 ? magnitude << shift : uint64_t{INT64_MAX};
  } else if (-shift > 54) {
    rounded = 0;  // |x / 2^k| < 2^53 / 2^55 < 1/2
  } else {
    const int right = -shift;
    rounded = (magnitude + (uint64_t{1} << (right - 1))) >> right;
  }
  const int64_t value = static_cast<int64_t>(rounded);
  return mantissa < 0 ? -value : value;
}

Result<double> FromGrid(int64_t n, int k) {
  if (k < kMinGridExponent || k > kMaxGridExponent) {
    return InvalidArgumentError("grid exponent out of range");
  }
  return std::ldexp(static_cast<double>(n), k);
}

}  // namespace datasite::dp
