#include "data/sampling.h"

#include <algorithm>
#include <cmath>

namespace datasite::data::internal {
namespace {

using UInt128 = unsigned __int128;

}  // namespace

uint64_t UniformIndex(Rng& rng, uint64_t n) {
  // Lemire's multiply-and-reject: unbiased, and one multiplication in the common case.
  UInt128 m = static_cast<UInt128>(rng()) * n;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < n) {
    uint64_t threshold = (0 - n) % n;
    while (low < threshold) {
      m = static_cast<UInt128>(rng()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

Int128 UniformInt(Rng& rng, Int128 lo, Int128 hi) {
  UInt128 span = static_cast<UInt128>(hi - lo) + 1;
  if (span > UINT64_MAX) return lo + static_cast<Int128>(rng());
  return lo + static_cast<Int128>(UniformIndex(rng, static_cast<uint64_t>(span)));
}

double UniformUnit(Rng& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

double UniformReal(Rng& rng, double lo, double hi) {
  double u = UniformUnit(rng);
  // Each term is finite, and they can only be large with opposite signs: no overflow.
  double v = lo * (1 - u) + hi * u;
  return std::clamp(v, lo, hi);
}

}  // namespace datasite::data::internal
