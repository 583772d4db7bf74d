// Exact rational parameters (a scale, a variance) for the samplers and the accountant.
#ifndef DATASITE_DP_RATIONAL_H_
#define DATASITE_DP_RATIONAL_H_

#include <cstdint>

#include "core/status.h"

namespace datasite::dp {

// num / den. Each function taking a Rational says which values it accepts (den > 0 always).
struct Rational {
  int64_t num = 0;
  int64_t den = 1;
};

// The same value with num and den divided by their greatest common divisor. REQUIRES: den > 0.
Rational Reduced(Rational r);

// A rational r >= x, for finite 0 < x < 2^62: x itself when it is m / 2^e with 2^e <= 2^62 (every
// double from 2^-9 up is), else the nearest m / 2^62 above. For calibrating noise, where rounding
// up (more noise) is the safe direction. InvalidArgument for x <= 0, x >= 2^62, NaN or infinity.
Result<Rational> RationalAtLeast(double x);

}  // namespace datasite::dp

#endif  // DATASITE_DP_RATIONAL_H_
