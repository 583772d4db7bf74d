// The samplers' output against their exact distributions: chi-square and Kolmogorov-Smirnov at
// level 1e-4 on 200,000 samples from a fixed seed, and the same statistics against samplers whose
// scale is off by 10%, which must fail (the tests have power).
#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <ostream>
#include <string>

#include "dp/noise.h"
#include "dp/random_for_test.h"
#include "dp/stats_for_test.h"

namespace datasite::dp {
namespace {

constexpr int64_t kSamples = 200000;

struct Scale {
  const char* name;   // the scale or sigma, for test names
  Rational value;     // the scale (Laplace) or sigma^2 (Gaussian)
  Rational wrong;     // off by 10% (sigma off by 10% for the Gaussian)
  long double exact;  // the scale or sigma^2 as a number
  int64_t radius;     // where the pmf's mass is negligible
};

void PrintTo(const Scale& s, std::ostream* os) { *os << s.name; }

std::string ScaleName(const testing::TestParamInfo<Scale>& info) { return info.param.name; }

template <typename Sampler>
Histogram Draw(const Sampler& sampler, uint64_t seed) {
  SeededRandomForTest random(seed);
  Histogram h;
  for (int64_t i = 0; i < kSamples; ++i) ++h[sampler.Sample(random)];
  return h;
}

class DiscreteLaplaceDistributionTest : public testing::TestWithParam<Scale> {};

TEST_P(DiscreteLaplaceDistributionTest, MatchesThePmf) {
  const Scale& s = GetParam();
  auto sampler = DiscreteLaplace::Create(s.value);
  ASSERT_TRUE(sampler.ok());
  const FitResult fit = TestFit(Draw(*sampler, 11), kSamples, LaplacePmf(s.exact), s.radius);
  std::cout << fit << "\n";
  EXPECT_TRUE(fit.Passes()) << fit;
}

TEST_P(DiscreteLaplaceDistributionTest, RejectsAScaleOffByTenPercent) {
  const Scale& s = GetParam();
  auto wrong = DiscreteLaplace::Create(s.wrong);
  ASSERT_TRUE(wrong.ok());
  const FitResult fit = TestFit(Draw(*wrong, 12), kSamples, LaplacePmf(s.exact), s.radius);
  std::cout << fit << "\n";
  EXPECT_FALSE(fit.Passes()) << fit;
}

INSTANTIATE_TEST_SUITE_P(Scales, DiscreteLaplaceDistributionTest,
                         testing::Values(Scale{"Scale0_5", {1, 2}, {11, 20}, 0.5L, 40},
                                         Scale{"Scale1", {1, 1}, {11, 10}, 1.0L, 60},
                                         Scale{"Scale3_7", {37, 10}, {407, 100}, 3.7L, 200},
                                         Scale{"Scale100", {100, 1}, {110, 1}, 100.0L, 4500}),
                         ScaleName);

class DiscreteGaussianDistributionTest : public testing::TestWithParam<Scale> {};

TEST_P(DiscreteGaussianDistributionTest, MatchesThePmf) {
  const Scale& s = GetParam();
  auto sampler = DiscreteGaussian::Create(s.value);
  ASSERT_TRUE(sampler.ok());
  const FitResult fit = TestFit(Draw(*sampler, 21), kSamples, GaussianWeight(s.exact), s.radius);
  std::cout << fit << "\n";
  EXPECT_TRUE(fit.Passes()) << fit;
}

TEST_P(DiscreteGaussianDistributionTest, RejectsASigmaOffByTenPercent) {
  const Scale& s = GetParam();
  auto wrong = DiscreteGaussian::Create(s.wrong);
  ASSERT_TRUE(wrong.ok());
  const FitResult fit = TestFit(Draw(*wrong, 22), kSamples, GaussianWeight(s.exact), s.radius);
  std::cout << fit << "\n";
  EXPECT_FALSE(fit.Passes()) << fit;
}

// sigma = 0.5, 1, 3.7, 100; the wrong ones have sigma * 1.1, so sigma^2 * 1.21.
INSTANTIATE_TEST_SUITE_P(Sigmas, DiscreteGaussianDistributionTest,
                         testing::Values(Scale{"Sigma0_5", {1, 4}, {121, 400}, 0.25L, 10},
                                         Scale{"Sigma1", {1, 1}, {121, 100}, 1.0L, 15},
                                         Scale{
                                             "Sigma3_7", {1369, 100}, {165649, 10000}, 13.69L, 50},
                                         Scale{"Sigma100", {10000, 1}, {12100, 1}, 10000.0L, 1000}),
                         ScaleName);

// Binomial z-score of k successes in n draws at probability p.
double ZScore(int64_t k, int64_t n, double p) {
  const double sd = std::sqrt(n * p * (1 - p));
  return sd == 0 ? (k == static_cast<int64_t>(n * p) ? 0 : 1e9) : (k - n * p) / sd;
}

TEST(BernoulliDistributionTest, FrequenciesMatch) {
  SeededRandomForTest random(31);
  for (Rational p : {Rational{1, 3}, Rational{7, 10}, Rational{1, 1000}, Rational{999999, 1000000},
                     Rational{123456789, 987654321}}) {
    auto b = Bernoulli::Create(p);
    ASSERT_TRUE(b.ok());
    int64_t k = 0;
    for (int64_t i = 0; i < kSamples; ++i) k += b->Sample(random);
    const double z = ZScore(k, kSamples, static_cast<double>(p.num) / p.den);
    EXPECT_LT(std::fabs(z), 4.5) << p.num << "/" << p.den << ": " << k;
  }
}

TEST(BernoulliExpDistributionTest, FrequenciesMatch) {
  SeededRandomForTest random(32);
  for (Rational gamma : {Rational{1, 2}, Rational{1, 1}, Rational{3, 2}, Rational{7, 3},
                         Rational{1, 1000}, Rational{5, 1}}) {
    auto b = BernoulliExp::Create(gamma);
    ASSERT_TRUE(b.ok());
    int64_t k = 0;
    for (int64_t i = 0; i < kSamples; ++i) k += b->Sample(random);
    const double z = ZScore(k, kSamples, std::exp(-static_cast<double>(gamma.num) / gamma.den));
    EXPECT_LT(std::fabs(z), 4.5) << gamma.num << "/" << gamma.den << ": " << k;
  }
}

TEST(BernoulliExpDistributionTest, RejectsAGammaOffByTenPercent) {
  // The same z bound detects Bernoulli(exp(-0.55)) posing as Bernoulli(exp(-0.5)).
  SeededRandomForTest random(33);
  auto b = BernoulliExp::Create({11, 20});
  ASSERT_TRUE(b.ok());
  int64_t k = 0;
  for (int64_t i = 0; i < kSamples; ++i) k += b->Sample(random);
  EXPECT_GT(std::fabs(ZScore(k, kSamples, std::exp(-0.5))), 4.5) << k;
}

}  // namespace
}  // namespace datasite::dp
