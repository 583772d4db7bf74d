// Exact integer arithmetic behind the samplers: 128- and 256-bit unsigned integers, Q127 fixed
// point for probabilities, and a certified lower bound on exp(-x). Not part of the module's API.
//
// Q127: an integer P in [0, 2^127] stands for the probability P / 2^127. A Bernoulli(P / 2^127)
// draw is exact: take 127 uniform bits U and answer U < P.
#ifndef DATASITE_DP_INTERNAL_FIXED_POINT_H_
#define DATASITE_DP_INTERNAL_FIXED_POINT_H_

#include <cstdint>

namespace datasite::dp::internal {

using uint128 = unsigned __int128;

inline constexpr uint128 kOneQ127 = uint128{1} << 127;

// hi * 2^128 + lo.
struct U256 {
  uint128 hi = 0;
  uint128 lo = 0;
};

// The full product a * b.
U256 Mul(uint128 a, uint128 b);
// a * b; *overflow is set (never cleared) when the product does not fit in 256 bits.
U256 Mul(const U256& a, uint64_t b, bool* overflow);
// a << s for 0 <= s < 256; bits shifted past bit 255 are lost.
U256 ShiftLeft(const U256& a, int s);
// a < b, without branching on the values.
bool LessThan(const U256& a, const U256& b);

struct Quotient {
  U256 quotient;
  uint128 remainder = 0;
};
// floor(n / d) and n mod d, for d != 0. Bit by bit (256 steps); its time may depend on the values,
// so it is used only on parameters (sampler set-up, the accountant), never on drawn values.
Quotient Divide(const U256& n, uint128 d);

// floor(a * b / 2^127), for a * b < 2^255 (in particular a, b <= 2^127).
uint128 MulQ127(uint128 a, uint128 b);
// Bits [s, s + 128) of the product a * r (a 384-bit number), for 0 <= s <= 256. The same work for
// every a and r; s is a parameter.
uint128 MulShiftRight(const U256& a, uint128 r, int s);

// Inputs of ExpNegLower: X stands for x = X / 2^116, 0 <= X <= kExpInputMax, so 0 <= x < 128.
// Callers saturate larger x to kExpInputMax: exp(-128) < 2^-184 is below kExpError.
inline constexpr int kExpInputFractionBits = 116;
inline constexpr uint128 kExpInputMax = (uint128{1} << 123) - 1;

// A bound on exp(-x) - ExpNegLower(X) / 2^127 for every admissible X (derivation in
// fixed_point.cc): at most 2^-109.6, rounded up to 2^-108.
inline constexpr double kExpError = 0x1p-108;

// A lower bound on exp(-X / 2^116) in Q127, within kExpError of it. Always the same sequence of
// multiplications and additions, whatever X (no branch or table look-up on X).
uint128 ExpNegLower(uint128 x);

struct Bounds {
  uint128 lower = 0;
  uint128 upper = 0;
};
// Lower and upper bounds on exp(-X / 2^116) in Q127, computed with opposite roundings; lets tests
// check ExpNegLower against an independent upper bound.
Bounds ExpNegBoundsForTest(uint128 x);

}  // namespace datasite::dp::internal

#endif  // DATASITE_DP_INTERNAL_FIXED_POINT_H_
