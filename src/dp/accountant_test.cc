#include "dp/accountant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <iomanip>
#include <limits>

namespace datasite::dp {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(ZcdpCostTest, CostsRoundUp) {
  EXPECT_EQ(*RhoCost(0.5), 500000000000);
  EXPECT_EQ(*RhoCost(1e-13), 1);           // a tenth of a unit costs a whole one
  EXPECT_EQ(*RhoCost(0.1), 100000000001);  // the same double, rounded up
  EXPECT_EQ(*PureDpCost(1.0), 500000000000);
  EXPECT_EQ(*PureDpCost(0.1), 5000000001);
}

TEST(ZcdpCostTest, BudgetsRoundDown) {
  EXPECT_EQ(*RhoBudget(1.0), 1000000000000);
  EXPECT_EQ(*RhoBudget(0.1), 100000000000);  // 0.1 as a double is just above 0.1
  EXPECT_EQ(*RhoBudget(1e-13), 0);
  EXPECT_EQ(*RhoBudget(0.0), 0);
}

TEST(ZcdpCostTest, LaplaceCostIsExact) {
  // scale 2, sensitivity 1: epsilon 1/2, rho 1/8.
  EXPECT_EQ(*LaplaceCost({2, 1}, 1), 125000000000);
  // scale 3, sensitivity 1: rho 1/18 = 0.0555..., rounded up.
  EXPECT_EQ(*LaplaceCost({3, 1}, 1), 55555555556);
  // scale 1/2, sensitivity 3: epsilon 6, rho 18.
  EXPECT_EQ(*LaplaceCost({1, 2}, 3), 18000000000000);
}

TEST(ZcdpCostTest, GaussianCostIsExact) {
  // sigma^2 = 1, D = 1: rho 1/2.
  EXPECT_EQ(*GaussianCost({1, 1}, 1), 500000000000);
  // sigma^2 = 7: rho 1/14 = 0.0714285714285..., rounded up.
  EXPECT_EQ(*GaussianCost({7, 1}, 1), 71428571429);
  // sigma^2 = 9/4, D^2 = 2: rho 4/9.
  EXPECT_EQ(*GaussianCost({9, 4}, 2), 444444444445);
}

TEST(ZcdpCostTest, HugeCostsAreRefusedNotWrapped) {
  EXPECT_EQ(LaplaceCost({1, INT64_MAX}, INT64_MAX).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(GaussianCost({1, INT64_MAX}, INT64_MAX).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(PureDpCost(1e10).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RhoCost(1e10).status().code(), StatusCode::kInvalidArgument);
}

TEST(ZcdpCostTest, InvalidInputsAreRefused) {
  for (double bad : {-1.0, 0.0, kNan, kInf, -kInf}) {
    EXPECT_EQ(RhoCost(bad).status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(PureDpCost(bad).status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(LaplaceScaleForEpsilon(bad, 1).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  for (double bad : {-1.0, kNan, kInf}) {
    EXPECT_EQ(RhoBudget(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(LaplaceCost({0, 1}, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LaplaceCost({1, 1}, 0).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(GaussianCost({-1, 1}, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(GaussianCost({1, 1}, -4).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(GaussianSigmaSquaredForRho(0, 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(LaplaceScaleForEpsilon(1.0, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST(ZcdpCalibrationTest, LaplaceScaleCostsNoMoreThanAsked) {
  for (double epsilon : {0.01, 0.1, 0.3, 1.0, 2.5, 10.0}) {
    for (int64_t sensitivity : {1, 3, 1000}) {
      auto scale = LaplaceScaleForEpsilon(epsilon, sensitivity);
      ASSERT_TRUE(scale.ok());
      // The scale is at least sensitivity / epsilon...
      EXPECT_GE(static_cast<long double>(scale->num) / scale->den,
                static_cast<long double>(sensitivity) / epsilon);
      // ...so the exact cost is at most the cost of epsilon.
      EXPECT_LE(*LaplaceCost(*scale, sensitivity), *PureDpCost(epsilon)) << epsilon;
    }
  }
  EXPECT_EQ(LaplaceScaleForEpsilon(1.0, 1)->num, 1);
  EXPECT_EQ(LaplaceScaleForEpsilon(1.0, 1)->den, 1);
}

TEST(ZcdpCalibrationTest, GaussianSigmaCostsNoMoreThanAsked) {
  for (int64_t units : {int64_t{1}, int64_t{1000}, kRhoUnitsPerRho / 10, kRhoUnitsPerRho / 2,
                        kRhoUnitsPerRho, 7 * kRhoUnitsPerRho}) {
    for (int64_t d2 : {1, 2, 10000}) {
      auto sigma_squared = GaussianSigmaSquaredForRho(units, d2);
      ASSERT_TRUE(sigma_squared.ok()) << units;
      EXPECT_LE(*GaussianCost(*sigma_squared, d2), units) << units << " " << d2;
      // And not much less: within a part in 10^12 (plus the one unit of rounding).
      EXPECT_GE(*GaussianCost(*sigma_squared, d2), units - 1 - units / 1000000000000) << units;
    }
  }
}

TEST(ZcdpCalibrationTest, GaussianForEpsilonDeltaMeetsIt) {
  auto sigma_squared = GaussianSigmaSquaredForEpsilonDelta(1.0, 1e-6, 1);
  ASSERT_TRUE(sigma_squared.ok());
  const int64_t cost = *GaussianCost(*sigma_squared, 1);
  EXPECT_LE(*EpsilonForRho(cost, 1e-6), 1.0);
  // No rho at all fits (0, 1e-9).
  EXPECT_EQ(GaussianSigmaSquaredForEpsilonDelta(0.0, 1e-9, 1).status().code(),
            StatusCode::kInvalidArgument);
}

TEST(ZcdpConversionTest, BunSteinkeKnownValue) {
  // 0.5 + 2 sqrt(0.5 ln 1e6) = 5.756521769756932
  const double epsilon = *EpsilonForRhoBunSteinke(kRhoUnitsPerRho / 2, 1e-6);
  EXPECT_GE(epsilon, 5.756521769756932);
  EXPECT_LE(epsilon, 5.756521769756932 + 1e-12);
}

TEST(ZcdpConversionTest, TighterConversionKnownValues) {
  // inf over alpha of CKS 2020 Cor. 13, by a golden-section search in Python's decimal module at
  // 50 digits. Every evaluation is rounded up, so the result is never below the infimum, and the
  // margin keeps it within about 1e-13 above.
  struct Case {
    int64_t rho_units;
    double delta;
    double epsilon;
  };
  for (const Case& c :
       {Case{500000000000, 1e-6, 5.2215344445301692}, Case{25000000000, 1e-6, 1.0140742547261279},
        Case{1000000000000, 1e-9, 9.5214636717922314}, Case{500000000000, 1e-3, 3.5365618461689592},
        Case{1000000, 1e-9, 0.0068040608222062187},
        Case{100000000000000, 1e-12, 203.25820714874496}}) {
    const double epsilon = *EpsilonForRho(c.rho_units, c.delta);
    EXPECT_GE(epsilon, c.epsilon * (1 - 1e-15))
        << std::setprecision(17) << epsilon << " vs " << c.epsilon << " at " << c.rho_units;
    EXPECT_LE(epsilon, c.epsilon + 1e-12)
        << std::setprecision(17) << epsilon << " vs " << c.epsilon << " at " << c.rho_units;
    EXPECT_LT(epsilon, *EpsilonForRhoBunSteinke(c.rho_units, c.delta));
  }
}

TEST(ZcdpConversionTest, EpsilonIsMonotone) {
  double previous = 0;
  for (int64_t units = 1; units < 100 * kRhoUnitsPerRho; units = units * 3 + 1) {
    const double epsilon = *EpsilonForRho(units, 1e-9);
    EXPECT_GE(epsilon, previous) << units;
    previous = epsilon;
  }
  previous = kInf;
  for (double delta : {1e-15, 1e-12, 1e-9, 1e-6, 1e-3, 0.1, 0.5, 0.9}) {
    const double epsilon = *EpsilonForRho(kRhoUnitsPerRho, delta);
    EXPECT_LE(epsilon, previous) << delta;
    previous = epsilon;
  }
  EXPECT_EQ(*EpsilonForRho(0, 1e-9), 0.0);
}

TEST(ZcdpConversionTest, RhoForEpsilonDeltaIsTheLargestThatFits) {
  for (double epsilon : {0.1, 1.0, 3.0, 10.0}) {
    for (double delta : {1e-12, 1e-9, 1e-6}) {
      const int64_t units = *RhoForEpsilonDelta(epsilon, delta);
      EXPECT_LE(*EpsilonForRho(units, delta), epsilon);
      EXPECT_GT(*EpsilonForRho(units + 1, delta), epsilon);
    }
  }
  EXPECT_EQ(*RhoForEpsilonDelta(0.0, 1e-9), 0);
  // epsilon = 0 is right when delta exceeds the total variation distance between neighbours'
  // outputs: for the Gaussian mechanism that is about 0.4 / sigma, below 1e-6 once rho < 3e-12.
  const int64_t units = *RhoForEpsilonDelta(0.0, 1e-6);
  EXPECT_GT(units, 0);
  EXPECT_EQ(*EpsilonForRho(units, 1e-6), 0.0);
  EXPECT_GT(*EpsilonForRho(units, 1e-7), 0.0);
}

TEST(ZcdpConversionTest, InvalidInputsAreRefused) {
  for (double bad_delta : {0.0, 1.0, -1e-9, 2.0, kNan, kInf}) {
    EXPECT_EQ(EpsilonForRho(1, bad_delta).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(EpsilonForRhoBunSteinke(1, bad_delta).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(RhoForEpsilonDelta(1.0, bad_delta).status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(EpsilonForRho(-1, 1e-9).status().code(), StatusCode::kInvalidArgument);
  for (double bad_epsilon : {-1.0, kNan, kInf}) {
    EXPECT_EQ(RhoForEpsilonDelta(bad_epsilon, 1e-9).status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(ChargeTest, AdmitsUpToTheBudgetAndNoMore) {
  const Budget budget{kRhoUnitsPerRho, 1e-9};
  auto spent = Charge(0, 600000000000, budget);
  ASSERT_TRUE(spent.ok());
  EXPECT_EQ(*spent, 600000000000);
  spent = Charge(*spent, 400000000000, budget);
  ASSERT_TRUE(spent.ok());
  EXPECT_EQ(*spent, kRhoUnitsPerRho);
  const Result<int64_t> refused = Charge(*spent, 1, budget);
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
}

TEST(ChargeTest, RefusalSaysWhatIsLeft) {
  const Budget budget{kRhoUnitsPerRho, 1e-9};
  const Result<int64_t> refused = Charge(kRhoUnitsPerRho / 2, kRhoUnitsPerRho, budget);
  ASSERT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  const std::string& message = refused.status().message();
  EXPECT_NE(message.find("rho=1.000000000000"), std::string::npos) << message;
  EXPECT_NE(message.find("rho=0.500000000000 of 1.000000000000 is left"), std::string::npos)
      << message;
  EXPECT_NE(message.find("epsilon="), std::string::npos) << message;
  EXPECT_NE(message.find("delta=1e-09"), std::string::npos) << message;
}

TEST(ChargeTest, RepeatedQueriesStopAtFloorOfBudgetOverCost) {
  // A query that averaging would defeat: the same count asked again and again. Each costs the
  // same; exactly floor(budget / cost) are admitted, the next is refused, and so is every later
  // one.
  const Budget budget{*RhoBudget(1.0), 1e-9};
  for (const Rational& sigma_squared : {Rational{7, 1}, Rational{5, 1}, Rational{1, 3}}) {
    const int64_t cost = *GaussianCost(sigma_squared, 1);
    int64_t spent = 0;
    int64_t admitted = 0;
    while (true) {
      const Result<int64_t> next = Charge(spent, cost, budget);
      if (!next.ok()) {
        EXPECT_EQ(next.status().code(), StatusCode::kResourceExhausted);
        break;
      }
      spent = *next;
      ++admitted;
    }
    EXPECT_EQ(admitted, budget.rho_units / cost) << sigma_squared.num;
    EXPECT_EQ(spent, admitted * cost);
    EXPECT_FALSE(Charge(spent, cost, budget).ok());
    if (spent == budget.rho_units) {
      EXPECT_FALSE(Charge(spent, 1, budget).ok());
    }
  }
  // sigma^2 = 5: rho 0.1 exactly, ten of them fill the budget to the unit; one more is refused.
  EXPECT_EQ(*GaussianCost({5, 1}, 1), 100000000000);
  EXPECT_EQ(Charge(kRhoUnitsPerRho, 1, budget).status().code(), StatusCode::kResourceExhausted);
}

TEST(ChargeTest, OverflowingCostsAreRefusedNotWrapped) {
  const Budget budget{kRhoUnitsPerRho, 1e-9};
  EXPECT_EQ(Charge(kRhoUnitsPerRho / 2, INT64_MAX, budget).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(Charge(INT64_MAX, INT64_MAX, Budget{INT64_MAX, 1e-9}).status().code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(*Charge(INT64_MAX - 1, 1, Budget{INT64_MAX, 1e-9}), INT64_MAX);
  // Already past the budget (a ledger that was changed by hand): refused.
  EXPECT_EQ(Charge(2 * kRhoUnitsPerRho, 1, budget).status().code(), StatusCode::kResourceExhausted);
}

TEST(ChargeTest, InvalidInputsAreRefused) {
  const Budget budget{kRhoUnitsPerRho, 1e-9};
  EXPECT_EQ(Charge(-1, 1, budget).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Charge(0, 0, budget).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Charge(0, -5, budget).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Charge(0, 1, Budget{-1, 1e-9}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Charge(0, 1, Budget{kRhoUnitsPerRho, 0.0}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Charge(0, 1, Budget{kRhoUnitsPerRho, kNan}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace datasite::dp
