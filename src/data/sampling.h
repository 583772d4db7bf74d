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

}  // namespace datasite::data::internal

#endif  // DATASITE_DATA_SAMPLING_H_
