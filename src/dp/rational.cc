#include "dp/rational.h"

#include <cmath>
#include <numeric>

namespace datasite::dp {

Rational Reduced(Rational r) {
  const int64_t g = std::gcd(r.num, r.den);
  if (g <= 1) return r;
  return Rational{r.num / g, r.den / g};
}

Result<Rational> RationalAtLeast(double x) {
  if (!std::isfinite(x) || !(x > 0)) return InvalidArgumentError("expected a finite number > 0");
  if (x >= 0x1p62) return InvalidArgumentError("value too large for a rational parameter");
  // x = mantissa * 2^(exponent - 53) exactly, 2^52 <= mantissa < 2^53.
  int exponent = 0;
  const double fraction = std::frexp(x, &exponent);
  int64_t mantissa = static_cast<int64_t>(std::ldexp(fraction, 53));
  int shift = exponent - 53;
  // Strip trailing zero bits so that small denominators stay small.
  while (mantissa % 2 == 0) {
    mantissa /= 2;
    ++shift;
  }
  if (shift >= 0) return Rational{mantissa << shift, 1};  // x < 2^62, so this fits
  if (-shift <= 62) return Rational{mantissa, int64_t{1} << -shift};
  // x < 2^-9 with too many bits: ceil(x * 2^62) / 2^62.
  const int drop = -shift - 62;
  int64_t num = drop >= 63 ? 0 : mantissa >> drop;
  if (drop >= 63 || (num << drop) != mantissa) ++num;
  return Reduced(Rational{num, int64_t{1} << 62});
}

}  // namespace datasite::dp
