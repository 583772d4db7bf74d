// Statistical tests of the privacy inequality, in the spirit of Google's stochastic tester
// (differential-privacy/cc/testing): a counting query on neighbouring datasets whose true answers
// are c and c + 1, many noisy answers on each, and the DP inequality checked on every event with
// enough mass, with a tolerance for sampling error. A semi-decision: it finds violations and cannot
// prove privacy; the broken mechanisms below show it finds them. Fixed seeds: not flaky.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "dp/accountant.h"
#include "dp/noise.h"
#include "dp/random_for_test.h"

namespace datasite::dp {
namespace {

constexpr int64_t kTrueCount = 10;
// Standard normal quantile for each single check; with some hundred checks a correct mechanism
// fails one with probability below 1e-4 (and the seeds are fixed).
constexpr double kZ = 5.0;

using Counts = std::map<int64_t, int64_t>;

// n noisy answers of `count` on each of two threads' worth of seeds, merged.
template <typename Sampler>
Counts Answers(const Sampler& noise, int64_t count, int64_t n, uint64_t seed) {
  Counts halves[2];
  std::thread threads[2];
  for (int t = 0; t < 2; ++t) {
    threads[t] = std::thread([&, t] {
      SeededRandomForTest random(seed * 2 + t);
      for (int64_t i = 0; i < n / 2; ++i) ++halves[t][AddNoise(count, noise, random)];
    });
  }
  for (std::thread& t : threads) t.join();
  for (const auto& [x, c] : halves[1]) halves[0][x] += c;
  return halves[0];
}

// Empirical P[X >= k] (or P[X <= k] when at_least is false) for each k in keys.
std::map<int64_t, double> Tails(const Counts& counts, int64_t n, const std::vector<int64_t>& keys,
                                bool at_least) {
  std::map<int64_t, double> out;
  for (int64_t k : keys) {
    int64_t m = 0;
    for (const auto& [x, c] : counts) {
      if (at_least ? x >= k : x <= k) m += c;
    }
    out[k] = static_cast<double>(m) / n;
  }
  return out;
}

std::vector<int64_t> Keys(const Counts& a, const Counts& b) {
  std::set<int64_t> keys;
  for (const auto& [x, c] : a) keys.insert(x);
  for (const auto& [x, c] : b) keys.insert(x);
  return {keys.begin(), keys.end()};
}

// Pure epsilon-DP: for every output x and every tail event S with enough samples on both sides,
// |ln P[S | D] - ln P[S | D']| <= epsilon, up to sampling error. Returns the number of violations.
int PureDpViolations(const Counts& d, const Counts& d_prime, int64_t n, double epsilon,
                     bool report) {
  int violations = 0;
  int checked = 0;
  double largest = 0;
  auto check = [&](double p, double q, const char* what, int64_t k) {
    const double np = p * n;
    const double nq = q * n;
    if (np < 100 || nq < 100) return;
    ++checked;
    largest = std::max(largest, std::fabs(std::log(p / q)));
    // The log of a count's ratio has standard deviation about sqrt(1/np + 1/nq).
    const double tolerance = kZ * std::sqrt(1 / np + 1 / nq);
    if (std::fabs(std::log(p / q)) > epsilon + tolerance) {
      ++violations;
      if (report)
        ADD_FAILURE() << what << " " << k << ": P=" << p << " P'=" << q
                      << " ln ratio=" << std::log(p / q) << " > " << epsilon << " + " << tolerance;
    }
  };
  const std::vector<int64_t> keys = Keys(d, d_prime);
  for (int64_t x : keys) {
    const double p = d.count(x) ? static_cast<double>(d.at(x)) / n : 0;
    const double q = d_prime.count(x) ? static_cast<double>(d_prime.at(x)) / n : 0;
    check(p, q, "output", x);
  }
  for (bool at_least : {true, false}) {
    const auto tail = Tails(d, n, keys, at_least);
    const auto tail_prime = Tails(d_prime, n, keys, at_least);
    for (int64_t k : keys) check(tail.at(k), tail_prime.at(k), at_least ? "X >=" : "X <=", k);
  }
  std::printf("%d events checked, largest |ln P/P'| %.4f (epsilon %.4f)\n", checked, largest,
              epsilon);
  return violations;
}

// (epsilon, delta)-DP over the tail events S = {X >= k} and {X <= k}, both ways:
// P[S | D] - e^epsilon P[S | D'] <= delta, up to sampling error. Returns the number of violations.
int ApproximateDpViolations(const Counts& d, const Counts& d_prime, int64_t n, double epsilon,
                            double delta, bool report) {
  int violations = 0;
  double largest = -1;
  const std::vector<int64_t> keys = Keys(d, d_prime);
  for (bool at_least : {true, false}) {
    const auto tail = Tails(d, n, keys, at_least);
    const auto tail_prime = Tails(d_prime, n, keys, at_least);
    for (int64_t k : keys) {
      for (int way = 0; way < 2; ++way) {
        const double p = way == 0 ? tail.at(k) : tail_prime.at(k);
        const double q = way == 0 ? tail_prime.at(k) : tail.at(k);
        const double gap = p - std::exp(epsilon) * q;
        largest = std::max(largest, gap);
        const double sd = std::sqrt((p * (1 - p) + std::exp(2 * epsilon) * q * (1 - q)) / n);
        // At least one sample's worth of slack for events seen a handful of times.
        const double tolerance = kZ * sd + 1.0 / n;
        if (gap > delta + tolerance) {
          ++violations;
          if (report) {
            ADD_FAILURE() << (at_least ? "X >= " : "X <= ") << k << ": " << p << " - e^" << epsilon
                          << " * " << q << " = " << gap << " > " << delta << " + " << tolerance;
          }
        }
      }
    }
  }
  std::printf("largest P[S|D] - e^epsilon P[S|D'] %.3g (epsilon %.4f, delta %.3g)\n", largest,
              epsilon, delta);
  return violations;
}

TEST(MechanismDpTest, DiscreteLaplaceCountIsEpsilonDp) {
  constexpr double kEpsilon = 1.0;
  constexpr int64_t kN = 1000000;
  auto scale = LaplaceScaleForEpsilon(kEpsilon, 1);
  ASSERT_TRUE(scale.ok());
  auto noise = DiscreteLaplace::Create(*scale);
  ASSERT_TRUE(noise.ok());
  const Counts d = Answers(*noise, kTrueCount, kN, 1);
  const Counts d_prime = Answers(*noise, kTrueCount + 1, kN, 2);
  EXPECT_EQ(PureDpViolations(d, d_prime, kN, kEpsilon, true), 0);
}

TEST(MechanismDpTest, DiscreteLaplaceWithHalfTheScaleIsCaught) {
  constexpr double kEpsilon = 1.0;
  constexpr int64_t kN = 1000000;
  auto scale = LaplaceScaleForEpsilon(kEpsilon, 1);
  ASSERT_TRUE(scale.ok());
  auto broken = DiscreteLaplace::Create({scale->num, 2 * scale->den});
  ASSERT_TRUE(broken.ok());
  const Counts d = Answers(*broken, kTrueCount, kN, 3);
  const Counts d_prime = Answers(*broken, kTrueCount + 1, kN, 4);
  EXPECT_GT(PureDpViolations(d, d_prime, kN, kEpsilon, false), 5);
}

struct GaussianCase {
  int64_t rho_units;
  double delta;
  double epsilon;
  Rational sigma_squared;
};

GaussianCase GaussianAtRhoOneHalf() {
  GaussianCase c;
  c.rho_units = kRhoUnitsPerRho / 2;
  c.delta = 1e-3;
  c.epsilon = *EpsilonForRho(c.rho_units, c.delta);
  c.sigma_squared = *GaussianSigmaSquaredForRho(c.rho_units, 1);
  return c;
}

// 300,000 answers on each side: the tolerance on the tail events that decide is then about 4e-3
// (e^epsilon = 34 multiplies the sampling error of rare events), far below the 0.1 by which half
// the sigma breaks the inequality. The Gaussian's 63 candidates per sample make these the slowest
// tests here (about 6 s each on two threads).
constexpr int64_t kGaussianN = 300000;

TEST(MechanismDpTest, DiscreteGaussianCountMeetsItsEpsilonDelta) {
  const GaussianCase c = GaussianAtRhoOneHalf();
  auto noise = DiscreteGaussian::Create(c.sigma_squared);
  ASSERT_TRUE(noise.ok());
  ASSERT_LE(*GaussianCost(c.sigma_squared, 1), c.rho_units);
  const Counts d = Answers(*noise, kTrueCount, kGaussianN, 5);
  const Counts d_prime = Answers(*noise, kTrueCount + 1, kGaussianN, 6);
  EXPECT_EQ(ApproximateDpViolations(d, d_prime, kGaussianN, c.epsilon,
                                    c.delta + 2 * kGaussianN * noise->tv_bound(), true),
            0)
      << "epsilon " << c.epsilon;
}

TEST(MechanismDpTest, DiscreteGaussianWithHalfTheSigmaIsCaught) {
  const GaussianCase c = GaussianAtRhoOneHalf();
  // sigma / 2: rho = 2 instead of 0.5.
  auto broken = DiscreteGaussian::Create({c.sigma_squared.num, 4 * c.sigma_squared.den});
  ASSERT_TRUE(broken.ok());
  const Counts d = Answers(*broken, kTrueCount, kGaussianN, 7);
  const Counts d_prime = Answers(*broken, kTrueCount + 1, kGaussianN, 8);
  EXPECT_GT(ApproximateDpViolations(d, d_prime, kGaussianN, c.epsilon, c.delta, false), 0);
}

}  // namespace
}  // namespace datasite::dp
