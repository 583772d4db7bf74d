// Random draws for mock generation. They use a seeded std::mt19937_64 (mock values are fake, not
// secret) and only its raw output, never the standard distributions, so a seed gives the same mock
// with every standard library.
#ifndef DATASITE_DATA_SAMPLING_H_
#define DATASITE_DATA_SAMPLING_H_

#include <cstdint>
#include <random>

namespace datasite::data::internal {

using Rng = std::mt19937_64;
using Int128 = __int128;

// Uniform in [0, n). REQUIRES: n > 0.
uint64_t UniformIndex(Rng& rng, uint64_t n);
// Uniform in [lo, hi]. REQUIRES: lo <= hi and hi - lo < 2^64.
Int128 UniformInt(Rng& rng, Int128 lo, Int128 hi);
// Uniform in [0, 1).
double UniformUnit(Rng& rng);
// Uniform in [lo, hi], also when hi - lo overflows a double. REQUIRES: lo <= hi, both finite.
double UniformReal(Rng& rng, double lo, double hi);

// Whether the next of `remaining` slots is one of the `hits` marked ones, so that exactly `hits`
// of the `remaining` slots are marked, at uniformly random places. Decrements `hits` when it is.
// REQUIRES: hits <= remaining, remaining > 0.
bool DrawExact(Rng& rng, uint64_t& hits, uint64_t remaining);

struct IntRange {
  Int128 lo = 0;
  Int128 hi = 0;
};
// [min - j, max + j] with j a random 5-15% of max - min, at least 1, clamped to
// [type_min, type_max]. REQUIRES: min <= max, type_max - type_min < 2^64.
IntRange JitteredIntRange(Rng& rng, Int128 min, Int128 max, Int128 type_min, Int128 type_max);

struct RealRange {
  double lo = 0;
  double hi = 0;
};
// [min - j, max + j] with j a random 5-15% of max - min (of max(|min|, 1) when min == max, so a
// constant column is not copied), clamped to [-limit, limit]. REQUIRES: min <= max, both finite.
RealRange JitteredRealRange(Rng& rng, double min, double max, double limit);

}  // namespace datasite::data::internal

#endif  // DATASITE_DATA_SAMPLING_H_
