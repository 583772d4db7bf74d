#include "data/sampling.h"

#include <algorithm>
#include <cmath>

namespace datasite::data::internal {
namespace {

using UInt128 = unsigned __int128;

double JitterFraction(Rng& rng) { return 0.05 + 0.10 * UniformUnit(rng); }

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

bool DrawExact(Rng& rng, uint64_t& hits, uint64_t remaining) {
  if (hits == 0) return false;
  if (UniformIndex(rng, remaining) >= hits) return false;
  --hits;
  return true;
}

IntRange JitteredIntRange(Rng& rng, Int128 min, Int128 max, Int128 type_min, Int128 type_max) {
  double fraction = JitterFraction(rng);
  Int128 j = static_cast<Int128>(fraction * static_cast<double>(max - min));
  j = std::max<Int128>(j, 1);
  return {std::max(min - j, type_min), std::min(max + j, type_max)};
}

RealRange JitteredRealRange(Rng& rng, double min, double max, double limit) {
  double fraction = JitterFraction(rng);
  double range = max - min;
  if (range == 0) range = std::max(std::fabs(min), 1.0);
  if (!std::isfinite(range)) range = limit;
  double j = fraction * range;
  return {std::max(min - j, -limit), std::min(max + j, limit)};
}

}  // namespace datasite::data::internal
