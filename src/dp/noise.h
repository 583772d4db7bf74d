// Discrete noise for differential privacy: samplers with exact integer arithmetic and fixed work.
//
// Each sampler is created once from exact rational parameters (Create refuses, with
// InvalidArgument, parameters whose arithmetic could overflow) and then draws integers. No floating
// point is used while sampling. Every Sample() call of a given sampler performs the same sequence
// of operations and draws the same number of random bytes (bytes_per_sample()), whatever the values
// drawn: no early exit from a loop, no data-dependent table index. This removes the timing channel
// of rejection samplers (Jin et al. 2022 recovered values protected by discrete Laplace noise from
// the sampler's running time).
//
// Fixed work costs exactness: loops are cut at a fixed count and probabilities are fixed-point
// numbers. Each sampler therefore bounds the total variation distance between what it draws and
// the ideal distribution (tv_bound()). A mechanism that releases noisy values is then
// (eps, delta + the sum of tv_bound() over its samples)-DP when the ideal one is (eps, delta)-DP:
// callers add the bounds to delta. See README.md for the derivations.
//
// Samplers are immutable after Create, cheap to copy, and safe for concurrent use when each
// caller's RandomBits is (SystemRandom() is).
#ifndef DATASITE_DP_NOISE_H_
#define DATASITE_DP_NOISE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "core/status.h"
#include "dp/random_bits.h"
#include "dp/rational.h"

namespace datasite::dp {

namespace internal {
struct LaplaceTable;
struct GaussianTable;
}  // namespace internal

// Bernoulli(p) for rational p: Create computes T = floor(p 2^127) exactly; Sample draws one
// 16-byte word, keeps 127 uniform bits U and answers U < T. Random words are never reduced mod
// anything, so there is no modular bias and no division while sampling. Immutable; safe for
// concurrent use.
class Bernoulli {
 public:
  // p = num / den with 0 <= num <= den.
  static Result<Bernoulli> Create(Rational p);

  bool Sample(RandomBits& random) const;
  // p - T / 2^127 < 2^-127.
  double tv_bound() const { return 0x1p-127; }
  size_t bytes_per_sample() const { return 16; }

 private:
  explicit Bernoulli(unsigned __int128 threshold) : threshold_(threshold) {}
  unsigned __int128 threshold_;
};

// Bernoulli(exp(-gamma)) for rational gamma >= 0, by Canonne, Kamath and Steinke, "The Discrete
// Gaussian for Differential Privacy" (2020), Algorithm 1: for gamma in [0, 1], K is the first k
// at which Bernoulli(gamma / k) fails, and the answer is "K is odd"; a larger gamma is split into
// floor(gamma) draws at gamma = 1 and one at gamma - floor(gamma), all of which must answer 1.
// Fixed work: every draw at gamma <= 1 makes kTrials Bernoulli(gamma / k) trials (each a 127-bit
// word against floor(gamma 2^127 / k), computed exactly by Create) and keeps the first failure with
// masks; gamma >= kCap answers 0 and draws nothing. The work depends on gamma only
// (floor(gamma) + 1 draws of kTrials words).
// tv_bound(): each draw errs only when all kTrials trials succeed, probability
// gamma^kTrials / kTrials! <= 1/24! < 2^-79, or when a trial's threshold (within 2^-127 of its
// probability) decides otherwise; or exp(-gamma) <= exp(-64) < 2^-92 when gamma is capped.
// About 1.3 us per unit of gamma: the Laplace and Gaussian samplers below use fixed-point
// thresholds for exp instead (see README.md). Immutable; safe for concurrent use.
class BernoulliExp {
 public:
  static constexpr int kTrials = 24;
  static constexpr int64_t kCap = 64;

  // gamma = num / den with num >= 0.
  static Result<BernoulliExp> Create(Rational gamma);

  bool Sample(RandomBits& random) const;
  double tv_bound() const { return tv_bound_; }
  size_t bytes_per_sample() const;

 private:
  using Thresholds = std::array<unsigned __int128, kTrials>;
  BernoulliExp(int64_t whole, const Thresholds& one, const Thresholds& fraction, double tv_bound)
      : whole_(whole), one_(one), fraction_(fraction), tv_bound_(tv_bound) {}
  int64_t whole_;        // floor(gamma), or kCap when capped
  Thresholds one_;       // trial k at gamma = 1: floor(2^127 / k)
  Thresholds fraction_;  // trial k at gamma - floor(gamma)
  double tv_bound_;
};

// The discrete Laplace (two-sided geometric) distribution: P[x] proportional to exp(-|x| / scale)
// over the integers.
//
// Privacy: adding it to an integer query of L1 sensitivity D is (D / scale)-DP (pure), hence
// rho = (D / scale)^2 / 2 zCDP (Bun and Steinke 2016, Prop. 1.4); delta grows by tv_bound().
//
// Algorithm: X = G1 - G2 for two independent geometric variables P[G = g] = (1 - q) q^g,
// q = exp(-1 / scale) (their difference is exactly two-sided geometric). The binary digits of a
// geometric variable are independent: digit i is 1 with probability
// r_i = q^(2^i) / (1 + q^(2^i)). Create computes each r_i once, as a Q127 number within 2^-108 of
// it; Sample draws digits 0 .. bits()-1 of each G, one 128-bit word per digit. bits() is the least
// L with 2^L / scale >= 64.
// tv_bound() = 2 * (exp(-64) + bits() * (2^-108 + 2^-127)): each G is cut at 2^bits(), which it
// reaches with probability q^(2^bits()) <= exp(-64) < 2^-92, and each digit's probability is off
// by at most 2^-108 + 2^-127. About 2^-91 for any scale.
// Work: 2 * bits() words (32 * bits() bytes); bits() is 3 at scale 0.1, 6 at scale 1, 36 at
// scale 1e9. Immutable; safe for concurrent use.
class DiscreteLaplace {
 public:
  // A digit count above this is refused (scale > 2^50).
  static constexpr int kMaxBits = 56;

  // scale = num / den > 0.
  static Result<DiscreteLaplace> Create(Rational scale);

  int64_t Sample(RandomBits& random) const;
  double tv_bound() const;
  size_t bytes_per_sample() const;
  Rational scale() const;
  int bits() const;

 private:
  friend class DiscreteGaussian;
  explicit DiscreteLaplace(std::shared_ptr<const internal::LaplaceTable> table)
      : table_(std::move(table)) {}
  std::shared_ptr<const internal::LaplaceTable> table_;
};

// The discrete Gaussian distribution: P[x] proportional to exp(-x^2 / (2 sigma^2)) over the
// integers.
//
// Privacy: adding it to an integer query of L2 sensitivity D is rho = D^2 / (2 sigma^2) zCDP
// (Canonne, Kamath and Steinke 2020, Theorem 4); delta grows by tv_bound().
//
// Algorithm: CKS 2020 Algorithm 3. With t = floor(sigma) + 1, draw Y from the discrete Laplace of
// scale t and accept it with probability exp(-gamma), gamma = (|Y| - sigma^2/t)^2 / (2 sigma^2).
// Fixed work: always iterations() candidates; the first accepted one is kept with masks.
// gamma is computed from the exact integers (|Y| t den - num)^2 / (2 num den t^2) in fixed point,
// rounded down by less than 2^-115 and saturated at 128, and exp(-gamma) as a Q127 lower bound
// within 2^-108.
//
// Iterations: one candidate is accepted with probability exactly
// tanh(1/(2t)) exp(-sigma^2/(2t^2)) sum_y exp(-y^2/(2 sigma^2)), which is at least
// p = tanh(1/(2t)) exp(-sigma^2/(2t^2)) max(1, sqrt(2 pi) sigma) (Poisson summation), between 0.42
// and 0.77 for every sigma; iterations() is the least n with (1 - p)^n <= 2^-70: 35 for
// sigma >= 10, at most 40 from sigma = 3 on, at most 88 (sigma near 0.4).
// tv_bound() = (1 - p)^n + n * (the Laplace's tv_bound() + 2^-108 + 2^-115): no candidate
// accepted, or one of the fixed-point draws differing from its ideal coin. About 2^-70.
// Work: iterations() * (2 * bits + 1) words, bits those of the Laplace of scale t; 35 * 53 words
// (30 KB) at sigma = 1e6.
// Immutable; safe for concurrent use.
class DiscreteGaussian {
 public:
  // sigma^2 = num / den > 0.
  static Result<DiscreteGaussian> Create(Rational sigma_squared);

  int64_t Sample(RandomBits& random) const;
  double tv_bound() const;
  size_t bytes_per_sample() const;
  Rational sigma_squared() const;
  int iterations() const;

 private:
  explicit DiscreteGaussian(std::shared_ptr<const internal::GaussianTable> table)
      : table_(std::move(table)) {}
  std::shared_ptr<const internal::GaussianTable> table_;
};

// value + noise, saturated at the int64 limits (a function of the noisy value: post-processing).
// The noise never depends on value.
int64_t AddNoise(int64_t value, const DiscreteLaplace& noise, RandomBits& random);
int64_t AddNoise(int64_t value, const DiscreteGaussian& noise, RandomBits& random);

}  // namespace datasite::dp

#endif  // DATASITE_DP_NOISE_H_
