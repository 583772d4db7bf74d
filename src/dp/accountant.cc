#include "dp/accountant.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "dp/internal/fixed_point.h"

namespace datasite::dp {
namespace {

using internal::U256;
using internal::uint128;

// x moved n ulps up.
double Up(double x, int n) {
  for (int i = 0; i < n; ++i) x = std::nextafter(x, HUGE_VAL);
  return x;
}

Status CheckDelta(double delta) {
  if (!(delta > 0 && delta < 1)) return InvalidArgumentError("delta must be in (0, 1)");
  return Status::Ok();
}

Status CheckUnits(int64_t rho_units) {
  if (rho_units < 0) return InvalidArgumentError("rho must be >= 0");
  return Status::Ok();
}

// rho_units / 1e12 rounded up (two roundings: the conversion and the division).
double RhoUpper(int64_t rho_units) {
  return Up(static_cast<double>(rho_units) / static_cast<double>(kRhoUnitsPerRho), 3);
}

// ln(1/delta) rounded up (glibc's log is within one ulp).
double LogInverseUpper(double delta) { return Up(-std::log(delta), 3); }

// x = mantissa * 2^exponent exactly, for finite x > 0 (mantissa < 2^53).
void SplitDouble(double x, uint128* mantissa, int* exponent) {
  const double fraction = std::frexp(x, exponent);
  *mantissa = static_cast<uint128>(std::ldexp(fraction, 53));
  *exponent -= 53;
}

int BitLength(const U256& v) {
  int n = 0;
  for (uint128 part = v.hi; part != 0; part >>= 1) ++n;
  if (n > 0) return n + 128;
  for (uint128 part = v.lo; part != 0; part >>= 1) ++n;
  return n;
}

// ceil (up) or floor of m * 2^e * kRhoUnitsPerRho, exactly, for m < 2^120.
Result<int64_t> DyadicUnits(uint128 m, int e, bool up) {
  bool overflow = false;
  const U256 v = internal::Mul(U256{0, m}, kRhoUnitsPerRho, &overflow);  // < 2^160
  if (e >= 0) {
    if (BitLength(v) + e > 63) return InvalidArgumentError("rho too large");
    return static_cast<int64_t>(internal::ShiftLeft(v, e).lo);
  }
  const int s = -e;
  if (s >= 200) return (up && m != 0) ? int64_t{1} : int64_t{0};  // 0 < value < 1
  // v >> s, and whether any bit below s is set.
  U256 q;
  bool rest;
  if (s >= 128) {
    q = U256{0, v.hi >> (s - 128)};
    rest = v.lo != 0 || (s > 128 && (v.hi << (256 - s)) != 0);
  } else {
    q = U256{v.hi >> s, (v.lo >> s) | (s > 0 ? v.hi << (128 - s) : 0)};
    rest = (v.lo << (128 - s)) != 0;
  }
  if (q.hi != 0 || q.lo >= (uint128{1} << 63) - 1) return InvalidArgumentError("rho too large");
  return static_cast<int64_t>(q.lo) + ((up && rest) ? 1 : 0);
}

// A rational equal to num / den when both fit after reduction, for exact calibration.
std::optional<Rational> ExactRational(uint128 num, uint128 den) {
  uint128 a = num;
  uint128 b = den;
  while (b != 0) {
    const uint128 r = a % b;
    a = b;
    b = r;
  }
  num /= a;
  den /= a;
  const uint128 limit = uint128{1} << 62;
  if (num >= limit || den >= limit) return std::nullopt;
  return Rational{static_cast<int64_t>(num), static_cast<int64_t>(den)};
}

// ceil(n / d) as an int64, or InvalidArgument.
Result<int64_t> CeilDivide(const U256& n, uint128 d) {
  const internal::Quotient q = internal::Divide(n, d);
  if (q.quotient.hi != 0 || q.quotient.lo >= (uint128{1} << 63)) {
    return InvalidArgumentError("cost exceeds every budget");
  }
  const uint128 up = q.quotient.lo + (q.remainder != 0 ? 1 : 0);
  if (up >= (uint128{1} << 63)) return InvalidArgumentError("cost exceeds every budget");
  return static_cast<int64_t>(up);
}

// The CKS 2020 epsilon at alpha = 1 + a, rounded up (see accountant.h).
double CksEpsilonAt(double a, double rho, double log_inverse_delta) {
  const double t1 = (1 + a) * rho;
  const double t2 = log_inverse_delta / a;
  const double t3 = std::log(a);
  const double t4 = -(1 + a) * std::log1p(a) / a;
  const double sum = t1 + t2 + t3 + t4;
  const double margin = (std::fabs(t1) + std::fabs(t2) + std::fabs(t3) + std::fabs(t4)) * 0x1p-48;
  return Up(sum + margin, 1);
}

double CksEpsilon(double rho, double log_inverse_delta) {
  // Golden-section search over u = ln a in [-40, 40], keeping the least value seen. Any a gives a
  // valid bound, so a search that misses the minimum only loses tightness.
  const double golden = (std::sqrt(5.0) - 1) / 2;
  auto at = [&](double u) { return CksEpsilonAt(std::exp(u), rho, log_inverse_delta); };
  double lo = -40;
  double hi = 40;
  double u1 = hi - golden * (hi - lo);
  double u2 = lo + golden * (hi - lo);
  double f1 = at(u1);
  double f2 = at(u2);
  double best = std::min(f1, f2);
  for (int i = 0; i < 120; ++i) {
    if (f1 <= f2) {
      hi = u2;
      u2 = u1;
      f2 = f1;
      u1 = hi - golden * (hi - lo);
      f1 = at(u1);
      best = std::min(best, f1);
    } else {
      lo = u1;
      u1 = u2;
      f1 = f2;
      u2 = lo + golden * (hi - lo);
      f2 = at(u2);
      best = std::min(best, f2);
    }
  }
  // The optimum of the Bun-Steinke form, a = sqrt(ln(1/delta) / rho), as one more candidate.
  best = std::min(best, CksEpsilonAt(std::sqrt(log_inverse_delta / rho), rho, log_inverse_delta));
  return best;
}

double BunSteinkeEpsilon(double rho, double log_inverse_delta) {
  // Three roundings (product, square root, sum; doubling is exact).
  return Up(rho + 2 * std::sqrt(rho * log_inverse_delta), 4);
}

std::string FormatRho(int64_t units) {
  char text[64];
  std::snprintf(text, sizeof(text), "%" PRId64 ".%012" PRId64, units / kRhoUnitsPerRho,
                units % kRhoUnitsPerRho);
  return text;
}

}  // namespace

Result<int64_t> RhoCost(double rho) {
  if (!std::isfinite(rho) || !(rho > 0)) return InvalidArgumentError("rho must be > 0 and finite");
  uint128 mantissa;
  int exponent;
  SplitDouble(rho, &mantissa, &exponent);
  return DyadicUnits(mantissa, exponent, true);
}

Result<int64_t> PureDpCost(double epsilon) {
  if (!std::isfinite(epsilon) || !(epsilon > 0)) {
    return InvalidArgumentError("epsilon must be > 0 and finite");
  }
  // epsilon^2 / 2 = mantissa^2 * 2^(2 exponent - 1), exactly.
  uint128 mantissa;
  int exponent;
  SplitDouble(epsilon, &mantissa, &exponent);
  return DyadicUnits(mantissa * mantissa, 2 * exponent - 1, true);
}

Result<int64_t> LaplaceCost(Rational scale, int64_t l1_sensitivity) {
  if (scale.num <= 0 || scale.den <= 0) return InvalidArgumentError("scale must be > 0");
  if (l1_sensitivity <= 0) return InvalidArgumentError("sensitivity must be >= 1");
  // rho = (D den / num)^2 / 2, in units ceil(1e12 (D den)^2 / (2 num^2)).
  const uint128 e = static_cast<uint128>(l1_sensitivity) * static_cast<uint128>(scale.den);
  if (e >= (uint128{1} << 100)) return InvalidArgumentError("cost exceeds every budget");
  bool overflow = false;
  const U256 n = internal::Mul(internal::Mul(e, e), kRhoUnitsPerRho, &overflow);
  if (overflow) return InvalidArgumentError("cost exceeds every budget");
  const uint128 d = 2 * static_cast<uint128>(scale.num) * static_cast<uint128>(scale.num);
  return CeilDivide(n, d);
}

Result<int64_t> GaussianCost(Rational sigma_squared, int64_t l2_sensitivity_squared) {
  if (sigma_squared.num <= 0 || sigma_squared.den <= 0) {
    return InvalidArgumentError("sigma^2 must be > 0");
  }
  if (l2_sensitivity_squared <= 0) return InvalidArgumentError("sensitivity must be >= 1");
  // rho = D^2 den / (2 num), in units ceil(1e12 D^2 den / (2 num)).
  const uint128 e =
      static_cast<uint128>(l2_sensitivity_squared) * static_cast<uint128>(sigma_squared.den);
  bool overflow = false;
  const U256 n = internal::Mul(U256{0, e}, kRhoUnitsPerRho, &overflow);
  if (overflow) return InvalidArgumentError("cost exceeds every budget");
  return CeilDivide(n, 2 * static_cast<uint128>(sigma_squared.num));
}

Result<Rational> LaplaceScaleForEpsilon(double epsilon, int64_t l1_sensitivity) {
  if (!std::isfinite(epsilon) || !(epsilon > 0)) {
    return InvalidArgumentError("epsilon must be > 0 and finite");
  }
  if (l1_sensitivity <= 0) return InvalidArgumentError("sensitivity must be >= 1");
  // Exactly sensitivity / epsilon when it fits: epsilon = mantissa * 2^exponent.
  uint128 mantissa;
  int exponent;
  SplitDouble(epsilon, &mantissa, &exponent);
  while (mantissa % 2 == 0) {
    mantissa /= 2;
    ++exponent;
  }
  if (exponent > -64 && exponent < 64) {
    uint128 num = static_cast<uint128>(l1_sensitivity);
    uint128 den = mantissa;
    if (exponent < 0) num <<= -exponent;  // < 2^127
    if (exponent > 0) den <<= exponent;   // < 2^117
    if (std::optional<Rational> exact = ExactRational(num, den)) return *exact;
  }
  // Otherwise rounded up: two roundings (the sensitivity as a double, the quotient).
  return RationalAtLeast(Up(static_cast<double>(l1_sensitivity) / epsilon, 3));
}

Result<Rational> GaussianSigmaSquaredForRho(int64_t rho_units, int64_t l2_sensitivity_squared) {
  if (rho_units <= 0) return InvalidArgumentError("rho must be > 0");
  if (l2_sensitivity_squared <= 0) return InvalidArgumentError("sensitivity must be >= 1");
  // Exactly D^2 * 1e12 / (2 units) when it fits.
  if (std::optional<Rational> exact =
          ExactRational(static_cast<uint128>(l2_sensitivity_squared) * kRhoUnitsPerRho,
                        2 * static_cast<uint128>(rho_units))) {
    return *exact;
  }
  // Otherwise rounded up: four roundings (two conversions, the product, the quotient).
  const double sigma_squared = static_cast<double>(l2_sensitivity_squared) *
                               static_cast<double>(kRhoUnitsPerRho) /
                               (2 * static_cast<double>(rho_units));
  return RationalAtLeast(Up(sigma_squared, 5));
}

Result<Rational> GaussianSigmaSquaredForEpsilonDelta(double epsilon, double delta,
                                                     int64_t l2_sensitivity_squared) {
  ASSIGN_OR_RETURN(const int64_t rho_units, RhoForEpsilonDelta(epsilon, delta));
  if (rho_units == 0) return InvalidArgumentError("epsilon too small for any noise at this delta");
  return GaussianSigmaSquaredForRho(rho_units, l2_sensitivity_squared);
}

Result<int64_t> RhoBudget(double rho) {
  if (!std::isfinite(rho) || !(rho >= 0))
    return InvalidArgumentError("rho must be >= 0 and finite");
  if (rho == 0) return int64_t{0};
  uint128 mantissa;
  int exponent;
  SplitDouble(rho, &mantissa, &exponent);
  return DyadicUnits(mantissa, exponent, false);
}

Result<double> EpsilonForRhoBunSteinke(int64_t rho_units, double delta) {
  RETURN_IF_ERROR(CheckUnits(rho_units));
  RETURN_IF_ERROR(CheckDelta(delta));
  if (rho_units == 0) return 0.0;
  return BunSteinkeEpsilon(RhoUpper(rho_units), LogInverseUpper(delta));
}

Result<double> EpsilonForRho(int64_t rho_units, double delta) {
  RETURN_IF_ERROR(CheckUnits(rho_units));
  RETURN_IF_ERROR(CheckDelta(delta));
  if (rho_units == 0) return 0.0;
  const double rho = RhoUpper(rho_units);
  const double log_inverse_delta = LogInverseUpper(delta);
  const double epsilon =
      std::min(BunSteinkeEpsilon(rho, log_inverse_delta), CksEpsilon(rho, log_inverse_delta));
  // If a negative epsilon satisfies the bound, so does 0 (delta(epsilon) only falls).
  return std::max(epsilon, 0.0);
}

Result<int64_t> RhoForEpsilonDelta(double epsilon, double delta) {
  if (!std::isfinite(epsilon) || !(epsilon >= 0)) {
    return InvalidArgumentError("epsilon must be >= 0 and finite");
  }
  RETURN_IF_ERROR(CheckDelta(delta));
  auto fits = [&](int64_t units) { return *EpsilonForRho(units, delta) <= epsilon; };
  // Invariant: fits(lo), !fits(hi).
  int64_t lo = 0;
  int64_t hi = 1;
  while (fits(hi)) {
    lo = hi;
    if (hi > INT64_MAX / 2) return InvalidArgumentError("epsilon too large");
    hi *= 2;
  }
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (fits(mid)) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

Result<int64_t> Charge(int64_t spent, int64_t cost, const Budget& budget) {
  if (spent < 0) return InvalidArgumentError("spent must be >= 0");
  if (cost <= 0) return InvalidArgumentError("cost must be > 0");
  if (budget.rho_units < 0) return InvalidArgumentError("budget must be >= 0");
  RETURN_IF_ERROR(CheckDelta(budget.delta));
  // cost <= budget - spent, written so that nothing overflows.
  if (spent <= budget.rho_units && cost <= budget.rho_units - spent) return spent + cost;
  const int64_t left = spent < budget.rho_units ? budget.rho_units - spent : 0;
  std::string message = "privacy budget exhausted: this query costs rho=" + FormatRho(cost) +
                        " but rho=" + FormatRho(left) + " of " + FormatRho(budget.rho_units) +
                        " is left";
  if (Result<double> epsilon = EpsilonForRho(left, budget.delta); epsilon.ok()) {
    // Shown rounded down.
    char text[96];
    std::snprintf(text, sizeof(text), " (epsilon=%.6f at delta=%g)",
                  std::floor(*epsilon * 1e6) / 1e6, budget.delta);
    message += text;
  }
  return ResourceExhaustedError(std::move(message));
}

Result<int64_t> RhoForEpsilonDeltaRemembered(double epsilon, double delta) {
  static std::mutex mu;
  static std::map<std::pair<double, double>, int64_t> known;
  {
    std::lock_guard lock(mu);
    auto it = known.find({epsilon, delta});
    if (it != known.end()) return it->second;
  }
  ASSIGN_OR_RETURN(int64_t rho, RhoForEpsilonDelta(epsilon, delta));
  std::lock_guard lock(mu);
  if (known.size() >= 4096) known.clear();
  known[{epsilon, delta}] = rho;
  return rho;
}

}  // namespace datasite::dp
