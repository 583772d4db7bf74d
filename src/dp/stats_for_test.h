// Goodness-of-fit statistics for the samplers' tests: chi-square with pooled tails and the
// Kolmogorov-Smirnov distance, against an exact pmf computed in long double.
#ifndef DATASITE_DP_STATS_FOR_TEST_H_
#define DATASITE_DP_STATS_FOR_TEST_H_

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <ostream>
#include <vector>

namespace datasite::dp {

// Observed counts per value.
using Histogram = std::map<int64_t, int64_t>;

struct FitResult {
  double chi_square = 0;
  int degrees_of_freedom = 0;
  double chi_square_critical = 0;
  double ks_distance = 0;
  double ks_critical = 0;
  bool Passes() const { return chi_square <= chi_square_critical && ks_distance <= ks_critical; }
};

inline std::ostream& operator<<(std::ostream& os, const FitResult& r) {
  return os << "chi2=" << r.chi_square << " (df " << r.degrees_of_freedom << ", critical "
            << r.chi_square_critical << "), KS=" << r.ks_distance << " (critical " << r.ks_critical
            << ")";
}

// Upper alpha-quantile of chi-square with `df` degrees of freedom, by Wilson and Hilferty's
// approximation, for the standard normal quantile z of alpha.
inline double ChiSquareCritical(int df, double z) {
  const double k = df;
  const double c = 1 - 2 / (9 * k) + z * std::sqrt(2 / (9 * k));
  return k * c * c * c;
}

// Tests `histogram` (n samples in all) against `pmf`, whose mass outside [-radius, radius] is
// negligible, at level alpha = 1e-4 for each statistic:
//  - chi-square over bins of consecutive values, each with expected count >= 5 (the tails pooled
//    into the end bins, which also take any sample outside the radius);
//  - KS: the largest gap between the empirical and exact CDFs, against the DKW bound
//    sqrt(ln(2 / alpha) / (2 n)), valid for discrete distributions too.
inline FitResult TestFit(const Histogram& histogram, int64_t n,
                         const std::function<long double(int64_t)>& pmf, int64_t radius) {
  constexpr double kAlpha = 1e-4;
  constexpr double kNormalQuantile = 3.7190;  // P[N(0,1) > z] = 1e-4
  std::vector<long double> mass;
  long double total = 0;
  for (int64_t x = -radius; x <= radius; ++x) {
    mass.push_back(pmf(x));
    total += mass.back();
  }
  auto observed_at = [&](int64_t x) -> int64_t {
    auto it = histogram.find(x);
    return it == histogram.end() ? 0 : it->second;
  };
  int64_t below = 0;
  int64_t above = 0;
  for (const auto& [x, count] : histogram) {
    if (x < -radius) below += count;
    if (x > radius) above += count;
  }

  FitResult r;
  // Bins.
  std::vector<long double> expected_bins;
  std::vector<int64_t> observed_bins;
  long double expected = 0;
  int64_t observed = below;
  long double cdf = 0;
  int64_t empirical = below;
  for (int64_t x = -radius; x <= radius; ++x) {
    const long double p = mass[x + radius] / total;
    expected += p * n;
    observed += observed_at(x);
    cdf += p;
    empirical += observed_at(x);
    r.ks_distance =
        std::max(r.ks_distance,
                 static_cast<double>(std::fabs(static_cast<long double>(empirical) / n - cdf)));
    if (expected >= 5) {
      expected_bins.push_back(expected);
      observed_bins.push_back(observed);
      expected = 0;
      observed = 0;
    }
  }
  observed += above;
  if (!expected_bins.empty()) {
    expected_bins.back() += expected;
    observed_bins.back() += observed;
  }
  for (size_t i = 0; i < expected_bins.size(); ++i) {
    const long double d = observed_bins[i] - expected_bins[i];
    r.chi_square += static_cast<double>(d * d / expected_bins[i]);
  }
  r.degrees_of_freedom = std::max<int>(1, static_cast<int>(expected_bins.size()) - 1);
  r.chi_square_critical = ChiSquareCritical(r.degrees_of_freedom, kNormalQuantile);
  r.ks_critical = std::sqrt(std::log(2 / kAlpha) / (2.0 * n));
  return r;
}

// pmf of the discrete Laplace with scale b: (1 - q) / (1 + q) q^|x|, q = exp(-1/b).
inline std::function<long double(int64_t)> LaplacePmf(long double b) {
  return [b](int64_t x) {
    const long double one_minus_q = -std::expm1(-1 / b);
    return one_minus_q / (2 - one_minus_q) * std::exp(-std::fabs(static_cast<long double>(x)) / b);
  };
}

// Unnormalised pmf of the discrete Gaussian (TestFit normalises): exp(-x^2 / (2 sigma^2)).
inline std::function<long double(int64_t)> GaussianWeight(long double sigma_squared) {
  return [sigma_squared](int64_t x) {
    const long double xl = x;
    return std::exp(-xl * xl / (2 * sigma_squared));
  };
}

}  // namespace datasite::dp

#endif  // DATASITE_DP_STATS_FOR_TEST_H_
