#include "dp/noise.h"

#include <gtest/gtest.h>

#include <cmath>

#include "dp/random_for_test.h"

namespace datasite::dp {
namespace {

TEST(BernoulliTest, RefusesProbabilitiesOutsideZeroOne) {
  EXPECT_EQ(Bernoulli::Create({1, 0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Bernoulli::Create({-1, 2}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Bernoulli::Create({3, 2}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Bernoulli::Create({1, -2}).status().code(), StatusCode::kInvalidArgument);
}

TEST(BernoulliTest, ZeroAndOneAreCertain) {
  SeededRandomForTest random(1);
  auto never = Bernoulli::Create({0, 5});
  auto always = Bernoulli::Create({7, 7});
  ASSERT_TRUE(never.ok() && always.ok());
  for (int i = 0; i < 1000; ++i) {
    EXPECT_FALSE(never->Sample(random));
    EXPECT_TRUE(always->Sample(random));
  }
}

TEST(BernoulliTest, ExtremeWordsDecideAsTheThresholdSays) {
  auto third = Bernoulli::Create({1, 3});
  ASSERT_TRUE(third.ok());
  ConstantRandomForTest zeros(0x00);
  ConstantRandomForTest ones(0xff);
  EXPECT_TRUE(third->Sample(zeros));
  EXPECT_FALSE(third->Sample(ones));
  EXPECT_EQ(third->tv_bound(), std::ldexp(1.0, -127));
}

TEST(BernoulliExpTest, RefusesNegativeGamma) {
  EXPECT_EQ(BernoulliExp::Create({-1, 2}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(BernoulliExp::Create({1, 0}).status().code(), StatusCode::kInvalidArgument);
}

TEST(BernoulliExpTest, GammaZeroAlwaysAnswersOne) {
  SeededRandomForTest random(2);
  auto b = BernoulliExp::Create({0, 1});
  ASSERT_TRUE(b.ok());
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(b->Sample(random));
}

TEST(BernoulliExpTest, LargeGammaIsCappedAndAnswersZeroWithoutDrawing) {
  ConstantRandomForTest zeros(0);
  CountingRandomForTest random(zeros);
  auto b = BernoulliExp::Create({1000, 3});
  ASSERT_TRUE(b.ok());
  EXPECT_FALSE(b->Sample(random));
  EXPECT_EQ(random.bytes(), 0u);
  EXPECT_LE(b->tv_bound(), 1.7e-28);  // exp(-64)
}

TEST(BernoulliExpTest, TvBoundIsSmall) {
  for (Rational gamma : {Rational{1, 2}, Rational{7, 3}, Rational{63, 1}, Rational{1, 1000003}}) {
    auto b = BernoulliExp::Create(gamma);
    ASSERT_TRUE(b.ok());
    EXPECT_LE(b->tv_bound(), std::ldexp(1.0, -72)) << gamma.num << "/" << gamma.den;
  }
}

TEST(DiscreteLaplaceTest, RefusesNonPositiveAndHugeScales) {
  EXPECT_EQ(DiscreteLaplace::Create({0, 1}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DiscreteLaplace::Create({-3, 1}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DiscreteLaplace::Create({1, 0}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DiscreteLaplace::Create({(int64_t{1} << 50) + 1, 1}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(DiscreteLaplace::Create({int64_t{1} << 50, 1}).ok());
}

TEST(DiscreteLaplaceTest, DigitCountFollowsTheScale) {
  // The least L with 2^L / scale >= 64.
  EXPECT_EQ(DiscreteLaplace::Create({1, 10})->bits(), 3);  // 0.1: 8 / 0.1 = 80
  EXPECT_EQ(DiscreteLaplace::Create({1, 1})->bits(), 6);
  EXPECT_EQ(DiscreteLaplace::Create({3, 2})->bits(), 7);
  EXPECT_EQ(DiscreteLaplace::Create({1000000000, 1})->bits(), 36);
  EXPECT_EQ(DiscreteLaplace::Create({1, 1000})->bits(), 0);  // always 0, off by exp(-1000)
}

TEST(DiscreteLaplaceTest, TvBoundBelowTwoToTheMinus90ForRealisticScales) {
  for (Rational scale : {Rational{1, 10}, Rational{1, 1}, Rational{37, 10}, Rational{1000000000, 1},
                         Rational{1, 1000}}) {
    auto s = DiscreteLaplace::Create(scale);
    ASSERT_TRUE(s.ok());
    EXPECT_LE(s->tv_bound(), std::ldexp(1.0, -90)) << scale.num << "/" << scale.den;
  }
}

TEST(DiscreteLaplaceTest, ReducesItsScale) {
  auto s = DiscreteLaplace::Create({6, 4});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->scale().num, 3);
  EXPECT_EQ(s->scale().den, 2);
}

TEST(DiscreteLaplaceTest, ExtremeWordsGiveTheExtremeValues) {
  auto s = DiscreteLaplace::Create({1, 1});
  ASSERT_TRUE(s.ok());
  ConstantRandomForTest zeros(0x00);  // every digit of both geometrics 1
  ConstantRandomForTest ones(0xff);   // every digit 0
  SplitRandomForTest split(16 * s->bits());
  EXPECT_EQ(s->Sample(zeros), 0);
  EXPECT_EQ(s->Sample(ones), 0);
  EXPECT_EQ(s->Sample(split), (int64_t{1} << s->bits()) - 1);
}

TEST(DiscreteLaplaceTest, TinyScaleGivesZero) {
  SeededRandomForTest random(3);
  auto s = DiscreteLaplace::Create({1, 1000});
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 100; ++i) EXPECT_EQ(s->Sample(random), 0);
}

TEST(DiscreteGaussianTest, RefusesBadVariances) {
  EXPECT_EQ(DiscreteGaussian::Create({0, 1}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DiscreteGaussian::Create({-1, 1}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(DiscreteGaussian::Create({1, 0}).status().code(), StatusCode::kInvalidArgument);
  // 2 num den t^2 > 2^127.
  EXPECT_EQ(DiscreteGaussian::Create({INT64_MAX, INT64_MAX - 1}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(DiscreteGaussianTest, AcceptsTheRealisticRange) {
  // sigma from 0.1 to 1e9, as exact doubles would give them.
  for (double sigma : {0.1, 0.5, 1.0, 3.7, 100.0, 1e6, 1e9}) {
    auto r = RationalAtLeast(sigma * sigma);
    ASSERT_TRUE(r.ok());
    auto g = DiscreteGaussian::Create(*r);
    ASSERT_TRUE(g.ok()) << sigma << ": " << g.status().ToString();
    EXPECT_LE(g->tv_bound(), std::ldexp(1.0, -69)) << sigma;
    EXPECT_GE(g->iterations(), 35) << sigma;
    EXPECT_LE(g->iterations(), 88) << sigma;
  }
}

TEST(DiscreteGaussianTest, IterationsFollowTheAcceptanceBound) {
  EXPECT_EQ(DiscreteGaussian::Create({1000000000000, 1})->iterations(), 35);  // sigma 1e6
  EXPECT_EQ(DiscreteGaussian::Create({1, 1})->iterations(), 63);
  EXPECT_EQ(DiscreteGaussian::Create({1, 100})->iterations(), 79);  // sigma 0.1
}

TEST(DiscreteGaussianTest, TinyVarianceGivesZero) {
  SeededRandomForTest random(4);
  auto g = DiscreteGaussian::Create({1, 10000});
  ASSERT_TRUE(g.ok());
  for (int i = 0; i < 200; ++i) EXPECT_EQ(g->Sample(random), 0);
}

TEST(AddNoiseTest, SaturatesInsteadOfWrapping) {
  ConstantRandomForTest zeros(0);  // every digit 1 in both geometrics: noise 0
  ConstantRandomForTest ones(0xff);
  auto s = DiscreteLaplace::Create({1000, 1});
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(AddNoise(INT64_MAX, *s, zeros), INT64_MAX);
  // Large noise on the edge: a seeded source, many draws, never a wrap.
  SeededRandomForTest random(5);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_GE(AddNoise(INT64_MAX - 10, *s, random), INT64_MAX - 100000);
    EXPECT_LE(AddNoise(INT64_MIN + 10, *s, random), INT64_MIN + 100000);
  }
  EXPECT_EQ(AddNoise(5, *s, ones), 5);
}

}  // namespace
}  // namespace datasite::dp
