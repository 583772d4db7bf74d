// Real values on a power-of-two grid, so that integer noise can protect them.
//
// A real-valued query is clamped, moved onto the grid {n * 2^k} (ToGrid), computed and noised in
// integers, and the noisy integer is read back as n * 2^k (FromGrid). Noise of scale s on the grid
// is noise of scale s * 2^k on the real line.
//
// Sensitivity on the grid: ToGrid moves a value by at most half a step, 2^(k-1), so
// |ToGrid(x, k) - ToGrid(x', k)| <= |x - x'| / 2^k + 1. A contribution whose real sensitivity is D
// therefore has sensitivity at most floor(D / 2^k) + 1 on the grid, for each value rounded
// separately. With clamp bounds lo <= hi on the grid themselves (multiples of 2^k), a clamped
// value rounds into [lo / 2^k, hi / 2^k] (rounding is monotone), so it moves by at most
// (hi - lo) / 2^k exactly and is at most max(|lo|, |hi|) / 2^k in size. Sums of grid integers are
// exact in int64 (callers saturate), so no floating-point rounding enters the sensitivity
// (Casacuberta et al. 2022).
#ifndef DATASITE_DP_GRID_H_
#define DATASITE_DP_GRID_H_

#include <cstdint>

#include "core/status.h"

namespace datasite::dp {

// Grid exponents k accepted: 2^k is a finite double other than 0.
inline constexpr int kMinGridExponent = -1074;
inline constexpr int kMaxGridExponent = 1023;

// x / 2^k rounded to the nearest integer (halves away from zero), saturated at +-(2^63 - 1).
// Exact: x = m * 2^e is split with frexp and the division is an integer shift. InvalidArgument for
// NaN, infinity or k out of range.
Result<int64_t> ToGrid(double x, int k);

// n * 2^k as a double: exact when |n| < 2^53 and the result is a normal double; otherwise n is
// rounded to the nearest double (and the result may overflow to infinity). InvalidArgument for k
// out of range.
Result<double> FromGrid(int64_t n, int k);

}  // namespace datasite::dp

#endif  // DATASITE_DP_GRID_H_
