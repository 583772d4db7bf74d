// Privacy budget arithmetic in zCDP (Bun and Steinke 2016), in exact integers.
//
// Budgets and costs are zero-concentrated DP rho in integer units of 1e-12 rho ("picorho"), so
// sums and comparisons are exact and composition is addition. Everything that turns a real number
// into units rounds against the analyst: costs up, budgets down. Floating-point budget sums fail
// at the edge (opendp #2131: "1.0000000000000002 > 1.0") or under-count silently; integer units
// are what w3c/attribution #77 recommends.
//
// Reporting: rho-zCDP implies (epsilon, delta)-DP for every delta in (0, 1) (EpsilonForRho).
// Callers add the samplers' tv_bound()s to delta (noise.h).
//
// Where doubles are used (logarithms, square roots, the calibration of noise), each result is
// nudged with std::nextafter by one ulp more than the number of roundings that produced it, in the
// safe direction: costs, epsilons and noise scales up, budgets down.
//
// All functions are pure and safe for concurrent use. The ledger that stores what was spent is not
// here.
#ifndef DATASITE_DP_ACCOUNTANT_H_
#define DATASITE_DP_ACCOUNTANT_H_

#include <cstdint>

#include "core/status.h"
#include "dp/rational.h"

namespace datasite::dp {

inline constexpr int64_t kRhoUnitsPerRho = 1'000'000'000'000;

// A budget: its total rho, and the delta at which it is reported as (epsilon, delta).
struct Budget {
  int64_t rho_units = 0;
  double delta = 1e-9;
};

// ---- Costs, in rho units rounded up. InvalidArgument for bad inputs and costs past int64. ----

// ceil(rho * 1e12) of the exact product (rho the double as given), rho > 0.
Result<int64_t> RhoCost(double rho);
// An epsilon-DP mechanism is epsilon^2 / 2 zCDP (Bun and Steinke 2016, Prop. 1.4); epsilon > 0.
Result<int64_t> PureDpCost(double epsilon);
// Discrete Laplace noise of `scale` on an integer query of L1 sensitivity >= 1: epsilon =
// sensitivity / scale, rho = epsilon^2 / 2. Exact integer arithmetic.
Result<int64_t> LaplaceCost(Rational scale, int64_t l1_sensitivity);
// Discrete Gaussian noise of variance sigma^2 on an integer query whose L2 sensitivity squared is
// >= 1 (an integer: D^2 for a scalar of sensitivity D, sum_i D_i^2 for a vector): rho = D^2 /
// (2 sigma^2) (Canonne, Kamath and Steinke 2020, Theorem 4). Exact integer arithmetic.
Result<int64_t> GaussianCost(Rational sigma_squared, int64_t l2_sensitivity_squared);

// ---- Calibration: noise at least as large as asked, never smaller. ----

// Discrete Laplace scale sensitivity / epsilon (then epsilon-DP, and its LaplaceCost is at most
// PureDpCost(epsilon)): exact when it fits a Rational, else rounded up (RationalAtLeast).
Result<Rational> LaplaceScaleForEpsilon(double epsilon, int64_t l1_sensitivity);
// Discrete Gaussian sigma^2 = D^2 / (2 rho): exact when it fits a Rational, else rounded up; its
// GaussianCost is at most rho_units.
Result<Rational> GaussianSigmaSquaredForRho(int64_t rho_units, int64_t l2_sensitivity_squared);
// For an analyst who asks for (epsilon, delta): the rho of RhoForEpsilonDelta(epsilon, delta),
// then GaussianSigmaSquaredForRho. The mechanism is then rho-zCDP, whose conversion at delta is at
// most epsilon. InvalidArgument when that rho rounds to 0 units.
Result<Rational> GaussianSigmaSquaredForEpsilonDelta(double epsilon, double delta,
                                                     int64_t l2_sensitivity_squared);

// ---- Conversions ----

// floor(rho * 1e12) of the exact product, rho >= 0: a budget.
Result<int64_t> RhoBudget(double rho);
// epsilon = rho + 2 sqrt(rho ln(1/delta)) (Bun and Steinke 2016, Prop. 1.3), rounded up;
// 0 < delta < 1.
Result<double> EpsilonForRhoBunSteinke(int64_t rho_units, double delta);
// The smaller of Bun-Steinke and the tighter bound of Canonne, Kamath and Steinke 2020
// (Prop. 12 / Cor. 13): epsilon = inf over a > 0 (alpha = 1 + a) of
//   (1 + a) rho + ln(1/delta) / a + ln a - (1 + a) ln(1 + a) / a.
// Every a gives a valid epsilon, so the numerical search over a (golden section over ln a) can
// only err upward; each evaluation is rounded up by a margin of 2^-48 times the sum of its terms'
// magnitudes. Rounded up; 0 < delta < 1.
Result<double> EpsilonForRho(int64_t rho_units, double delta);
// The largest rho (in units, so rounded down) with EpsilonForRho(rho, delta) <= epsilon: the rho
// budget that an (epsilon, delta) budget allows. epsilon >= 0, 0 < delta < 1.
Result<int64_t> RhoForEpsilonDelta(double epsilon, double delta);

// RhoForEpsilonDelta, remembered for the (epsilon, delta) pairs asked before: the search takes
// about 0.3 ms, and a server asks it for the same few budgets and query epsilons at every query.
// Safe for concurrent use; at most 4096 pairs are kept (then forgotten all at once).
Result<int64_t> RhoForEpsilonDeltaRemembered(double epsilon, double delta);

// ---- Charging ----

// spent + cost when it is at most budget.rho_units. ResourceExhausted otherwise, saying what is
// left (in rho, and in epsilon at budget.delta); the sum is checked without overflow.
// InvalidArgument for spent < 0, cost <= 0, a negative budget or a delta outside (0, 1).
Result<int64_t> Charge(int64_t spent, int64_t cost, const Budget& budget);

}  // namespace datasite::dp

#endif  // DATASITE_DP_ACCOUNTANT_H_
