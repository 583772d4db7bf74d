#include "dp/internal/fixed_point.h"

#include <array>

namespace datasite::dp::internal {
namespace {

constexpr uint64_t Low64(uint128 x) { return static_cast<uint64_t>(x); }
constexpr uint64_t High64(uint128 x) { return static_cast<uint64_t>(x >> 64); }

// The series of exp(-f) for 0 <= f < 2^-4 (see ExpNegLower): terms j = 0 .. kTerms - 1.
constexpr int kTerms = 19;

// kInverseFactorial[j] = floor(2^127 / j!): 1/j! rounded down in Q127.
constexpr std::array<uint128, kTerms> MakeInverseFactorials() {
  std::array<uint128, kTerms> out{};
  uint128 factorial = 1;
  for (int j = 0; j < kTerms; ++j) {
    if (j > 0) factorial *= static_cast<uint128>(j);
    out[j] = kOneQ127 / factorial;
  }
  return out;
}
constexpr std::array<uint128, kTerms> kInverseFactorial = MakeInverseFactorials();

// How far below f^j / j! (in units of 2^-127) each computed term may fall: see ExpNegLower.
constexpr uint128 kTermError = 4;

// exp(-x) = exp(-f)^(2^kSquarings) with f = x / 2^kSquarings.
constexpr int kSquarings = 11;
static_assert(kExpInputFractionBits + kSquarings == 127, "X / 2^116 / 2^11 is X in Q127");

struct Series {
  uint128 even = 0;  // sum of the computed terms of even index
  uint128 odd = 0;   // sum of the computed terms of odd index
};

// The terms f^j / j! for j = 0 .. last, each rounded down, summed by the parity of j.
Series SumTerms(uint128 f, int last) {
  Series s;
  uint128 power = kOneQ127;  // f^j rounded down
  s.even = kInverseFactorial[0];
  for (int j = 1; j <= last; ++j) {
    power = MulQ127(power, f);
    const uint128 term = MulQ127(power, kInverseFactorial[j]);
    // The branch is on the loop counter only.
    if (j % 2 == 1) {
      s.odd += term;
    } else {
      s.even += term;
    }
  }
  return s;
}

uint128 MulQ127Up(uint128 a, uint128 b) {
  const U256 p = Mul(a, b);
  const uint128 floor = (p.hi << 1) | (p.lo >> 127);
  const uint128 rest = p.lo & (kOneQ127 - 1);
  return floor + static_cast<uint128>(rest != 0);
}

}  // namespace

U256 Mul(uint128 a, uint128 b) {
  const uint128 p00 = static_cast<uint128>(Low64(a)) * Low64(b);
  const uint128 p01 = static_cast<uint128>(Low64(a)) * High64(b);
  const uint128 p10 = static_cast<uint128>(High64(a)) * Low64(b);
  const uint128 p11 = static_cast<uint128>(High64(a)) * High64(b);
  // The middle column: at most 3 * (2^64 - 1), no overflow.
  const uint128 middle = (p00 >> 64) + Low64(p01) + Low64(p10);
  U256 out;
  out.lo = (middle << 64) | Low64(p00);
  out.hi = p11 + (p01 >> 64) + (p10 >> 64) + (middle >> 64);
  return out;
}

U256 Mul(const U256& a, uint64_t b, bool* overflow) {
  const U256 low = Mul(a.lo, b);
  const U256 high = Mul(a.hi, b);
  U256 out;
  out.lo = low.lo;
  out.hi = low.hi + high.lo;
  if (high.hi != 0 || out.hi < low.hi) *overflow = true;
  return out;
}

U256 ShiftLeft(const U256& a, int s) {
  if (s == 0) return a;
  if (s >= 128) return U256{a.lo << (s - 128), 0};
  return U256{(a.hi << s) | (a.lo >> (128 - s)), a.lo << s};
}

bool LessThan(const U256& a, const U256& b) {
  const bool hi_less = a.hi < b.hi;
  const bool hi_equal = a.hi == b.hi;
  const bool lo_less = a.lo < b.lo;
  return hi_less | (hi_equal & lo_less);
}

Quotient Divide(const U256& n, uint128 d) {
  Quotient out;
  uint128 r = 0;
  for (int i = 255; i >= 0; --i) {
    const uint128 bit = i >= 128 ? (n.hi >> (i - 128)) & 1 : (n.lo >> i) & 1;
    const bool carry = (r >> 127) != 0;
    r = (r << 1) | bit;
    // With a carry the true remainder is 2^128 + r >= d, and r - d wraps to the right value.
    if (carry || r >= d) {
      r -= d;
      if (i >= 128) {
        out.quotient.hi |= uint128{1} << (i - 128);
      } else {
        out.quotient.lo |= uint128{1} << i;
      }
    }
  }
  out.remainder = r;
  return out;
}

uint128 MulQ127(uint128 a, uint128 b) {
  const U256 p = Mul(a, b);
  return (p.hi << 1) | (p.lo >> 127);
}

uint128 MulShiftRight(const U256& a, uint128 r, int s) {
  // The 384-bit product in six 64-bit limbs, least significant first.
  const U256 low = Mul(a.lo, r);
  const U256 high = Mul(a.hi, r);
  std::array<uint64_t, 7> limb{};
  limb[0] = Low64(low.lo);
  limb[1] = High64(low.lo);
  // low.hi + high.lo, 256 bits with a carry into limb 4.
  const uint128 sum = low.hi + high.lo;
  const uint128 carry = sum < low.hi ? 1 : 0;
  limb[2] = Low64(sum);
  limb[3] = High64(sum);
  const uint128 top = high.hi + carry;  // the product is < 2^384, so no overflow here
  limb[4] = Low64(top);
  limb[5] = High64(top);
  const int word = s / 64;
  const int bit = s % 64;
  auto at = [&](int i) -> uint64_t { return i < 7 ? limb[i] : 0; };
  uint64_t w0 = at(word);
  uint64_t w1 = at(word + 1);
  if (bit != 0) {
    w0 = (w0 >> bit) | (w1 << (64 - bit));
    w1 = (w1 >> bit) | (at(word + 2) << (64 - bit));
  }
  return (static_cast<uint128>(w1) << 64) | w0;
}

// exp(-x) for x = X / 2^116 < 128, in three steps:
//   1. f = x / 2^11 < 2^-4 is X itself read in Q127 (no rounding).
//   2. exp(-f) lies between the partial sums S_17 <= exp(-f) <= S_18 of its alternating series,
//      whose terms decrease (f < 1). Each term is computed as floor(floor(P * f) * floor(1/j!)):
//      with P the previous power rounded down, the power f^j is too low by at most
//      e_j <= 1 + e_{j-1} * f < 16/15 units (of 2^-127), and the term f^j/j! too low by at most
//      1 + 16/15 + 1 < 4 = kTermError units. So
//        L = sum_even(term) - sum_odd(term + kTermError)        (j = 0 .. 17)
//      is at most S_17, and exp(-f) - L <= 18 * kTermError + 2^127 * f^18 / 18! < 78 units.
//   3. L is squared 11 times, each rounded down. If p - L <= w (units) then
//      p^2 - floor(L^2) <= (p - L)(p + L) + 1 <= 2w + 1, so after 11 squarings the gap to
//      exp(-x) = exp(-f)^2048 is at most 2^11 * 78 + 2^11 - 1 < 2^17.3 units = 2^-109.7.
// The result never exceeds exp(-x): every rounding goes down and the odd terms are taken high.
uint128 ExpNegLower(uint128 x) {
  const Series s = SumTerms(x, 17);
  uint128 lower = s.even - s.odd - 9 * kTermError;  // nine odd terms: j = 1, 3, ..., 17
  for (int i = 0; i < kSquarings; ++i) lower = MulQ127(lower, lower);
  return lower;
}

Bounds ExpNegBoundsForTest(uint128 x) {
  Bounds b;
  b.lower = ExpNegLower(x);
  // S_18 >= exp(-f); each even term is taken high (j = 0, 2, ..., 18: ten terms).
  const Series s = SumTerms(x, 18);
  uint128 upper = s.even + 10 * kTermError - s.odd;
  for (int i = 0; i < kSquarings; ++i) upper = MulQ127Up(upper, upper);
  b.upper = upper;
  return b;
}

}  // namespace datasite::dp::internal
