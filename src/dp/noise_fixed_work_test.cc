// Fixed work: every sample of a sampler draws the same random bytes in the same calls, whatever
// the seed and whatever the value drawn, including the most extreme inputs a source can give.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <set>

#include "dp/noise.h"
#include "dp/random_for_test.h"

namespace datasite::dp {
namespace {

// Draws 2,000 samples from each of several seeds, then one from each extreme source, and records
// the random bytes and Fill calls of each sample, split by whether |value| >= large. All must be
// the same, bytes_per_sample() bytes. With `both`, each side must have been seen.
template <typename Draw>
void ExpectFixedWork(Draw draw, size_t bytes_per_sample, int64_t large, size_t extreme_zeros,
                     bool both) {
  std::set<std::pair<uint64_t, uint64_t>> work_small;
  std::set<std::pair<uint64_t, uint64_t>> work_large;
  auto record = [&](RandomBits& source) {
    CountingRandomForTest random(source);
    const int64_t value = draw(random);
    (std::llabs(value) >= large ? work_large : work_small).insert({random.bytes(), random.calls()});
  };
  for (uint64_t seed : {1, 2, 3, 99, 12345}) {
    SeededRandomForTest seeded(seed);
    for (int i = 0; i < 2000; ++i) record(seeded);
  }
  // The extremes: every "U < threshold" succeeding, every one failing, and the split.
  ConstantRandomForTest zeros(0x00);
  ConstantRandomForTest ones(0xff);
  SplitRandomForTest split(extreme_zeros);
  record(zeros);
  record(ones);
  record(split);
  std::set<std::pair<uint64_t, uint64_t>> all = work_small;
  all.insert(work_large.begin(), work_large.end());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all.begin()->first, bytes_per_sample);
  if (both) {
    EXPECT_FALSE(work_large.empty());
    EXPECT_FALSE(work_small.empty());
  }
}

TEST(FixedWorkTest, Bernoulli) {
  auto b = Bernoulli::Create({1, 3});
  ASSERT_TRUE(b.ok());
  ExpectFixedWork([&](RandomBits& r) -> int64_t { return b->Sample(r); }, 16, 1, 0, true);
}

TEST(FixedWorkTest, BernoulliExp) {
  for (Rational gamma : {Rational{1, 2}, Rational{7, 3}, Rational{0, 1}}) {
    auto b = BernoulliExp::Create(gamma);
    ASSERT_TRUE(b.ok());
    ExpectFixedWork([&](RandomBits& r) -> int64_t { return b->Sample(r); }, b->bytes_per_sample(),
                    1, 0, gamma.num != 0);
  }
}

TEST(FixedWorkTest, DiscreteLaplace) {
  for (Rational scale : {Rational{1, 10}, Rational{1, 1}, Rational{37, 10}, Rational{1000000, 1}}) {
    auto s = DiscreteLaplace::Create(scale);
    ASSERT_TRUE(s.ok());
    // "Large": beyond 3 scales, about 5% of the draws.
    const int64_t large = std::max<int64_t>(1, 3 * scale.num / scale.den);
    ExpectFixedWork([&](RandomBits& r) { return s->Sample(r); }, s->bytes_per_sample(), large,
                    16 * s->bits(), true);
  }
}

TEST(FixedWorkTest, DiscreteGaussian) {
  for (Rational sigma_squared : {Rational{1, 100}, Rational{1, 1}, Rational{1369, 100}}) {
    auto g = DiscreteGaussian::Create(sigma_squared);
    ASSERT_TRUE(g.ok());
    const double sigma = std::sqrt(static_cast<double>(sigma_squared.num) / sigma_squared.den);
    const int64_t large = std::max<int64_t>(1, static_cast<int64_t>(2 * sigma));
    // At sigma = 0.1 a nonzero value has probability 2 exp(-50): only zeros are seen.
    ExpectFixedWork([&](RandomBits& r) { return g->Sample(r); }, g->bytes_per_sample(), large, 0,
                    sigma >= 0.5);
  }
}

TEST(FixedWorkTest, DiscreteGaussianAtLargeSigma) {
  auto g = DiscreteGaussian::Create({1000000000000, 1});  // sigma 1e6
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->bytes_per_sample(), 35u * 53 * 16);
  ExpectFixedWork([&](RandomBits& r) { return g->Sample(r); }, g->bytes_per_sample(), 2000000, 0,
                  true);
}

TEST(FixedWorkTest, AddNoiseDrawsTheSameForAnyValue) {
  auto laplace = DiscreteLaplace::Create({5, 2});
  auto gaussian = DiscreteGaussian::Create({9, 1});
  ASSERT_TRUE(laplace.ok() && gaussian.ok());
  std::set<std::pair<uint64_t, uint64_t>> work;
  for (int64_t value : {int64_t{0}, int64_t{1}, int64_t{1000000000000}, INT64_MAX, INT64_MIN}) {
    SeededRandomForTest seeded(static_cast<uint64_t>(value));
    CountingRandomForTest random(seeded);
    AddNoise(value, *laplace, random);
    AddNoise(value, *gaussian, random);
    work.insert({random.bytes(), random.calls()});
  }
  EXPECT_EQ(work.size(), 1u);
  EXPECT_EQ(work.begin()->first, laplace->bytes_per_sample() + gaussian->bytes_per_sample());
}

}  // namespace
}  // namespace datasite::dp
