#include "dp/noise.h"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numbers>
#include <span>

#include "dp/internal/fixed_point.h"

namespace datasite::dp {
namespace internal {

struct LaplaceTable {
  Rational scale;
  int bits = 0;
  // thresholds[i]: P[digit i of a geometric variable is 1] in Q127.
  std::array<uint128, DiscreteLaplace::kMaxBits> thresholds{};
  double tv_bound = 0;
};

// gamma(Y) = (|Y| t den - num)^2 / B with B = 2 num den t^2, for sigma^2 = num / den.
struct GaussianTable {
  Rational sigma_squared;
  std::shared_ptr<const LaplaceTable> laplace;  // scale t
  uint128 num = 0;                              // sigma^2's numerator
  uint128 den_t = 0;                            // den * t
  U256 saturation;                              // 128 * B: gamma >= 128 from there on
  uint128 reciprocal = 0;  // floor((2^(b + 127) - 1) / B), b the bit length of B
  int shift = 0;           // b + 11: gamma * 2^116 ~ A * reciprocal / 2^shift
  int iterations = 0;
  double tv_bound = 0;
};

}  // namespace internal

namespace {

using internal::kExpInputMax;
using internal::kOneQ127;
using internal::U256;
using internal::uint128;

constexpr size_t kWordBytes = 16;
// The most words one Sample() reads at once: a Laplace sample, or a Gaussian candidate.
constexpr size_t kMaxWords = 2 * DiscreteLaplace::kMaxBits + 1;

// TV bounds are sums of doubles, each rounded up.
double Up(double x) { return std::nextafter(x, HUGE_VAL) * (1 + 0x1p-50); }

// kTvExp: a Q127 threshold's distance to the probability it stands for (fixed_point.h).
constexpr double kTvExp = internal::kExpError;
// exp(-64), the most a geometric variable cut at 2^bits can differ from the ideal one.
const double kTvGeometricCut = Up(std::exp(-64.0));

// 127 uniform bits, compared with Q127 thresholds.
uint128 Word127(const uint8_t* bytes) {
  uint128 w;
  std::memcpy(&w, bytes, sizeof(w));
  return w >> 1;
}

// A buffer of random words, wiped when it goes out of scope so that no noise outlives its sample.
class Words {
 public:
  std::span<uint8_t> Draw(RandomBits& random, size_t words) {
    std::span<uint8_t> out(bytes_.data(), words * kWordBytes);
    random.Fill(out);
    used_ = std::max(used_, out.size());
    return out;
  }
  ~Words() { sodium_memzero(bytes_.data(), used_); }

 private:
  std::array<uint8_t, kMaxWords * kWordBytes> bytes_;
  size_t used_ = 0;
};

// G1 - G2 from 2 * bits words: G1's digits from the first bits words, G2's from the next.
int64_t TwoSidedGeometric(const internal::LaplaceTable& table, const uint8_t* bytes) {
  uint64_t g1 = 0;
  uint64_t g2 = 0;
  const int bits = table.bits;
  for (int i = 0; i < bits; ++i) {
    const uint128 threshold = table.thresholds[i];
    g1 |= static_cast<uint64_t>(Word127(bytes + kWordBytes * i) < threshold) << i;
    g2 |= static_cast<uint64_t>(Word127(bytes + kWordBytes * (bits + i)) < threshold) << i;
  }
  return static_cast<int64_t>(g1) - static_cast<int64_t>(g2);
}

// floor(num * 2^127 / den) for 0 <= num <= den: Bernoulli(num / den) is then "127 uniform bits
// are below it", within 2^-127 of it.
uint128 RationalThreshold(uint128 num, uint128 den) {
  return internal::Divide(internal::ShiftLeft(U256{0, num}, 127), den).quotient.lo;
}

// CKS Algorithm 1 at gamma <= 1 with kTrials fixed trials: trial k succeeds with probability
// gamma / k (thresholds[k - 1]); K - 1 counts the successes before the first failure; answers
// "K is odd".
bool BernoulliExpAtMostOne(const uint128* thresholds, const uint8_t* bytes) {
  bool alive = true;
  unsigned successes = 0;
  for (int k = 0; k < BernoulliExp::kTrials; ++k) {
    const bool success = Word127(bytes + kWordBytes * k) < thresholds[k];
    successes += static_cast<unsigned>(alive & success);
    alive = alive & success;
  }
  return successes % 2 == 0;
}

uint64_t IntegerSquareRoot(uint64_t v) {
  uint64_t r = static_cast<uint64_t>(std::sqrt(static_cast<long double>(v)));
  while (static_cast<uint128>(r) * r > v) --r;
  while (static_cast<uint128>(r + 1) * (r + 1) <= v) ++r;
  return r;
}

int BitLength(uint128 x) {
  int n = 0;
  while (x != 0) {
    ++n;
    x >>= 1;
  }
  return n;
}

}  // namespace

// ---- Bernoulli ----

Result<Bernoulli> Bernoulli::Create(Rational p) {
  if (p.den <= 0 || p.num < 0 || p.num > p.den) {
    return InvalidArgumentError("Bernoulli: p must be num/den with 0 <= num <= den, den > 0");
  }
  return Bernoulli(RationalThreshold(static_cast<uint128>(p.num), static_cast<uint128>(p.den)));
}

bool Bernoulli::Sample(RandomBits& random) const {
  Words words;
  return Word127(words.Draw(random, 1).data()) < threshold_;
}

// ---- BernoulliExp ----

Result<BernoulliExp> BernoulliExp::Create(Rational gamma) {
  if (gamma.den <= 0 || gamma.num < 0) {
    return InvalidArgumentError("BernoulliExp: gamma must be num/den >= 0 with den > 0");
  }
  gamma = Reduced(gamma);
  const int64_t whole = gamma.num / gamma.den;
  if (whole >= kCap) {
    // exp(-gamma) <= exp(-64) < 2^-92 is answered by 0.
    return BernoulliExp(kCap, Thresholds{}, Thresholds{}, Up(std::exp(-static_cast<double>(kCap))));
  }
  // Trial k at gamma = 1 succeeds with probability 1/k, at the fraction with fraction / k.
  Thresholds one{};
  Thresholds fraction{};
  const uint128 fraction_num = static_cast<uint128>(gamma.num % gamma.den);
  for (int k = 1; k <= kTrials; ++k) {
    one[k - 1] = RationalThreshold(1, static_cast<uint128>(k));
    fraction[k - 1] = RationalThreshold(fraction_num, static_cast<uint128>(gamma.den) * k);
  }
  // Per draw: all kTrials trials succeed with probability <= 1/kTrials!, and each trial's
  // threshold is within 2^-127 of its probability.
  double inverse_factorial = 1;
  for (int k = 2; k <= kTrials; ++k) inverse_factorial /= k;
  const double draws = static_cast<double>(whole + 1);
  const double tv = draws * (inverse_factorial + kTrials * 0x1p-127);
  return BernoulliExp(whole, one, fraction, Up(tv));
}

size_t BernoulliExp::bytes_per_sample() const {
  if (whole_ >= kCap) return 0;
  return static_cast<size_t>(whole_ + 1) * kTrials * kWordBytes;
}

bool BernoulliExp::Sample(RandomBits& random) const {
  if (whole_ >= kCap) return false;
  Words words;
  bool result = true;
  for (int64_t i = 0; i < whole_; ++i) {
    result = result & BernoulliExpAtMostOne(one_.data(), words.Draw(random, kTrials).data());
  }
  const std::span<uint8_t> bytes = words.Draw(random, kTrials);
  return result & BernoulliExpAtMostOne(fraction_.data(), bytes.data());
}

// ---- DiscreteLaplace ----

Result<DiscreteLaplace> DiscreteLaplace::Create(Rational scale) {
  if (scale.num <= 0 || scale.den <= 0) {
    return InvalidArgumentError("discrete Laplace: scale must be num/den > 0");
  }
  scale = Reduced(scale);
  auto table = std::make_shared<internal::LaplaceTable>();
  table->scale = scale;
  // The least L with 2^L * den >= 64 * num, i.e. 2^L / scale >= 64.
  const uint128 target = static_cast<uint128>(scale.num) * 64;
  int bits = 0;
  while ((static_cast<uint128>(scale.den) << bits) < target) {
    if (++bits > kMaxBits) return InvalidArgumentError("discrete Laplace: scale must be < 2^50");
  }
  table->bits = bits;
  for (int i = 0; i < bits; ++i) {
    // x_i = 2^i / scale < 64 (i < L), in Q116 rounded down: exp(-x) is then rounded up by less
    // than 2^-116, inside kExpError.
    const U256 numerator = internal::ShiftLeft(U256{0, static_cast<uint128>(scale.den)},
                                               internal::kExpInputFractionBits + i);
    const uint128 x = internal::Divide(numerator, static_cast<uint128>(scale.num)).quotient.lo;
    // q^(2^i) = exp(-x_i), and the digit is 1 with probability q^(2^i) / (1 + q^(2^i)). The map
    // p -> p / (1 + p) has slope at most 1, so the threshold stays within kExpError + 2^-127.
    const uint128 p = internal::ExpNegLower(x);
    table->thresholds[i] =
        internal::Divide(internal::ShiftLeft(U256{0, p}, 127), kOneQ127 + p).quotient.lo;
  }
  table->tv_bound = Up(2 * (kTvGeometricCut + bits * (kTvExp + 0x1p-127)));
  return DiscreteLaplace(std::move(table));
}

int64_t DiscreteLaplace::Sample(RandomBits& random) const {
  Words words;
  const std::span<uint8_t> bytes = words.Draw(random, 2 * static_cast<size_t>(table_->bits));
  return TwoSidedGeometric(*table_, bytes.data());
}

double DiscreteLaplace::tv_bound() const { return table_->tv_bound; }
size_t DiscreteLaplace::bytes_per_sample() const { return 2 * table_->bits * kWordBytes; }
Rational DiscreteLaplace::scale() const { return table_->scale; }
int DiscreteLaplace::bits() const { return table_->bits; }

// ---- DiscreteGaussian ----

Result<DiscreteGaussian> DiscreteGaussian::Create(Rational sigma_squared) {
  if (sigma_squared.num <= 0 || sigma_squared.den <= 0) {
    return InvalidArgumentError("discrete Gaussian: sigma^2 must be num/den > 0");
  }
  sigma_squared = Reduced(sigma_squared);
  const uint128 num = static_cast<uint128>(sigma_squared.num);
  const uint128 den = static_cast<uint128>(sigma_squared.den);
  // floor(sigma) = floor(sqrt(floor(sigma^2))).
  const int64_t t = static_cast<int64_t>(
      IntegerSquareRoot(static_cast<uint64_t>(sigma_squared.num / sigma_squared.den)) + 1);
  ASSIGN_OR_RETURN(DiscreteLaplace laplace, DiscreteLaplace::Create(Rational{t, 1}));

  // B = 2 num den t^2 must be at most 2^127.
  const uint128 two_num_den = 2 * num * den;  // < 2^127
  const U256 b_wide = internal::Mul(two_num_den, static_cast<uint128>(t) * static_cast<uint128>(t));
  if (b_wide.hi != 0 || b_wide.lo > kOneQ127) {
    return InvalidArgumentError(
        "discrete Gaussian: sigma^2's numerator and denominator are too large (2 num den t^2 "
        "must be at most 2^127 with t = floor(sigma) + 1)");
  }
  const uint128 b = b_wide.lo;
  const uint128 den_t = den * static_cast<uint128>(t);
  // |Y| < 2^bits, so |Y| * den * t < 2^127 keeps the difference below in 128 bits.
  if (den_t >= (kOneQ127 >> laplace.bits())) {
    return InvalidArgumentError("discrete Gaussian: sigma^2's denominator is too large");
  }

  auto table = std::make_shared<internal::GaussianTable>();
  table->sigma_squared = sigma_squared;
  table->laplace = laplace.table_;
  table->num = num;
  table->den_t = den_t;
  table->saturation = internal::ShiftLeft(U256{0, b}, 7);
  const int b_bits = BitLength(b);
  // 2^(b_bits + 127) - 1 (b_bits + 127 <= 255).
  const U256 power = internal::ShiftLeft(U256{0, 1}, b_bits + 127);
  const U256 power_minus_one =
      power.lo == 0 ? U256{power.hi - 1, ~uint128{0}} : U256{power.hi, power.lo - 1};
  // The quotient is < 2^128 because b >= 2^(b_bits - 1).
  table->reciprocal = internal::Divide(power_minus_one, b).quotient.lo;
  table->shift = b_bits + 11;

  // A lower bound on one candidate's acceptance probability (see noise.h). Computed in doubles from
  // parameters only and shaded down by 0.1%, far more than their rounding errors.
  const double sigma2 =
      static_cast<double>(sigma_squared.num) / static_cast<double>(sigma_squared.den);
  const double sigma = std::sqrt(sigma2);
  const double td = static_cast<double>(t);
  const double accept = 0.999 * std::tanh(1 / (2 * td)) * std::exp(-sigma2 / (2 * td * td)) *
                        std::max(1.0, std::sqrt(2 * std::numbers::pi) * sigma);
  const int iterations = static_cast<int>(std::ceil(70 * std::numbers::ln2 / -std::log1p(-accept)));
  table->iterations = iterations;
  const double none_accepted = std::pow(1 - accept, iterations);
  table->tv_bound = Up(Up(none_accepted) + iterations * (laplace.tv_bound() + kTvExp + 0x1p-115));
  return DiscreteGaussian(std::move(table));
}

int64_t DiscreteGaussian::Sample(RandomBits& random) const {
  const internal::GaussianTable& g = *table_;
  const internal::LaplaceTable& laplace = *g.laplace;
  const size_t candidate_words = 2 * static_cast<size_t>(laplace.bits) + 1;
  Words words;
  int64_t result = 0;
  bool done = false;
  for (int i = 0; i < g.iterations; ++i) {
    const uint8_t* bytes = words.Draw(random, candidate_words).data();
    const int64_t y = TwoSidedGeometric(laplace, bytes);
    const uint64_t sign = static_cast<uint64_t>(y >> 63);
    const uint64_t magnitude = (static_cast<uint64_t>(y) ^ sign) - sign;
    // |D| = | |Y| den t - num |, without branching on its sign: |Y| den t < 2^127 and num < 2^63,
    // so D fits a signed 128-bit integer, and its sign bit spread gives the absolute value.
    const __int128 signed_d = static_cast<__int128>(static_cast<uint128>(magnitude) * g.den_t) -
                              static_cast<__int128>(g.num);
    const __int128 d_sign = signed_d >> 127;
    const uint128 d = static_cast<uint128>((signed_d ^ d_sign) - d_sign);
    // gamma = A / B with A = D^2; in Q116 as A * reciprocal / 2^shift, which is below the exact
    // value by less than A / 2^(b_bits + 127) < 2^-120 (A < 128 B) plus 2^-116 of truncation.
    const U256 a = internal::Mul(d, d);
    uint128 x = internal::MulShiftRight(a, g.reciprocal, g.shift);
    const bool saturated = !internal::LessThan(a, g.saturation) | (x > kExpInputMax);
    const uint128 saturate = -static_cast<uint128>(saturated);
    x = (x & ~saturate) | (kExpInputMax & saturate);
    const uint128 threshold = internal::ExpNegLower(x);
    const bool accept = Word127(bytes + kWordBytes * (candidate_words - 1)) < threshold;
    const uint64_t take = -static_cast<uint64_t>(accept & !done);
    result = static_cast<int64_t>((static_cast<uint64_t>(result) & ~take) |
                                  (static_cast<uint64_t>(y) & take));
    done = done | accept;
  }
  return result;
}

double DiscreteGaussian::tv_bound() const { return table_->tv_bound; }
size_t DiscreteGaussian::bytes_per_sample() const {
  return table_->iterations * (2 * table_->laplace->bits + 1) * kWordBytes;
}
Rational DiscreteGaussian::sigma_squared() const { return table_->sigma_squared; }
int DiscreteGaussian::iterations() const { return table_->iterations; }

// ---- Mechanisms ----

namespace {
int64_t SaturatingAdd(int64_t value, int64_t noise) {
  int64_t out;
  if (__builtin_add_overflow(value, noise, &out)) {
    return noise > 0 ? INT64_MAX : INT64_MIN;
  }
  return out;
}
}  // namespace

int64_t AddNoise(int64_t value, const DiscreteLaplace& noise, RandomBits& random) {
  return SaturatingAdd(value, noise.Sample(random));
}

int64_t AddNoise(int64_t value, const DiscreteGaussian& noise, RandomBits& random) {
  return SaturatingAdd(value, noise.Sample(random));
}

}  // namespace datasite::dp
