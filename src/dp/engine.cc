#include "dp/engine.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "dp/accountant.h"
#include "dp/grid.h"
#include "dp/noise.h"

namespace datasite::dp {
namespace {

// Every sampler here is within 2^-68 of its ideal distribution in total variation (noise.h: about
// 2^-70 for the discrete Gaussian; NoiseFor checks), so a query adds that much to delta per sample
// it may draw. How many it may draw is public (SampleBound): the groups are listed, or for
// partition selection there are at most the column's max_keys.
constexpr double kTvPerSample = 0x1p-68;
constexpr int kQuantileBins = 256;
// Values are put on a grid of about 2^16 steps over their bounds (finer than any noise a query
// can ask for would show), coarser where the sensitivity would not fit int64.
constexpr int kGridSteps = 16;

uint64_t Mix(uint64_t x) {  // splitmix64's finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t HashText(const std::string& s, uint64_t key) {
  uint64_t h = Mix(key ^ 0x6a09e667f3bcc909ULL);
  for (unsigned char c : s) h = Mix(h ^ c);
  return Mix(h ^ s.size());
}

// The rows a query reads: kept by contribution bounding, by the filter, and with a value in every
// column it reads.
std::vector<int64_t> SelectRows(const Table& t,
                                const std::vector<const std::vector<double>*>& numbers,
                                const std::vector<const CategoryColumn*>& categories,
                                const std::vector<std::vector<int32_t>>& allowed_codes) {
  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>(t.rows));
  for (int64_t i = 0; i < t.rows; ++i) {
    if (!t.kept.empty() && !t.kept[static_cast<size_t>(i)]) continue;
    bool ok = true;
    for (const auto* column : numbers) ok = ok && !std::isnan((*column)[static_cast<size_t>(i)]);
    for (size_t c = 0; ok && c < categories.size(); ++c) {
      const int32_t code = categories[c]->codes[static_cast<size_t>(i)];
      ok = code >= 0 && std::binary_search(allowed_codes[c].begin(), allowed_codes[c].end(), code);
    }
    if (ok) rows.push_back(i);
  }
  return rows;
}

// The grid exponent for values bounded by `magnitude` in absolute value, raised until
// (m * magnitude_on_grid^power)^2 fits int64 with room; and that bound on the grid.
Result<std::pair<int, int64_t>> PickGrid(double magnitude, int64_t m, int power) {
  int k = static_cast<int>(std::ceil(std::log2(std::max(magnitude, 0x1p-1000)))) - kGridSteps;
  for (; k <= kMaxGridExponent; ++k) {
    ASSIGN_OR_RETURN(int64_t b, ToGrid(magnitude, k));
    b = std::max<int64_t>(b, 1);
    const long double s =
        static_cast<long double>(m) * std::pow(static_cast<long double>(b), power);
    if (s * s < 0x1p61L) return std::make_pair(k, b);
  }
  return InvalidArgumentError("DP query: the column's bounds are too wide to put on a grid");
}

// The noise for one released vector of integer statistics.
struct Noise {
  DiscreteGaussian sampler;
  double sigma;  // its standard deviation (about; sigma of the discrete Gaussian), on the grid
};

Result<Noise> NoiseFor(int64_t rho_units, int64_t l2_sensitivity) {
  const int64_t d2 = l2_sensitivity * l2_sensitivity;
  ASSIGN_OR_RETURN(Rational sigma2, GaussianSigmaSquaredForRho(rho_units, d2));
  ASSIGN_OR_RETURN(DiscreteGaussian sampler, DiscreteGaussian::Create(sigma2));
  if (!(sampler.tv_bound() <= kTvPerSample))
    return InternalError("DP: a sampler's distance from its ideal exceeds the allowance");
  const double sigma = std::sqrt(static_cast<double>(sigma2.num) / static_cast<double>(sigma2.den));
  return Noise{std::move(sampler), sigma};
}

int64_t Saturate(__int128 v) {
  constexpr __int128 kMax = INT64_MAX / 2, kMin = -(INT64_MAX / 2);
  return static_cast<int64_t>(std::clamp(v, kMin, kMax));
}

// The groups a query answers in: each one's key (none: one group of every row), and each row's
// group index (or -1).
struct Groups {
  std::vector<std::optional<std::string>> keys;
  std::vector<int32_t> of_row;  // indexed like the selected rows
};

}  // namespace

void BoundContributions(Table& table, const std::vector<std::string>& units, int64_t max_rows,
                        uint64_t key) {
  const size_t n = units.size();
  table.kept.assign(n, 0);
  // Order rows by (unit, rank hash); a unit's k-th row in file order gets the hash of (unit, k).
  std::vector<uint64_t> unit_hash(n), rank_hash(n);
  std::map<uint64_t, int64_t> seen;  // rows seen so far per unit hash, for the rank
  for (size_t i = 0; i < n; ++i) {
    unit_hash[i] = HashText(units[i], key);
    const int64_t k = seen[unit_hash[i]]++;
    rank_hash[i] = Mix(unit_hash[i] ^ Mix(key + static_cast<uint64_t>(k)));
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::tie(unit_hash[a], units[a], rank_hash[a], a) <
           std::tie(unit_hash[b], units[b], rank_hash[b], b);
  });
  int64_t run = 0;
  for (size_t j = 0; j < n; ++j) {
    const size_t i = order[j];
    run = (j > 0 && units[order[j - 1]] == units[i]) ? run + 1 : 0;
    // A row naming no unit is left out: the rows with an empty id would be one "unit" of people
    // who are not one, whose kept rows depend on each other's (a cold attack measured sqrt(2) m).
    table.kept[i] = run < max_rows && !units[i].empty() ? 1 : 0;
  }
}

double ConversionDelta(const DpPolicy& policy) { return policy.per_scientist.delta / 2; }

int64_t SampleBound(const DpPolicy& policy, const Query& query) {
  const int64_t per_group = query.kind == QueryKind::kQuantile ? kQuantileBins : 3;
  if (query.group_by.empty()) return per_group;
  const ColumnPolicy& by = policy.columns.at(query.group_by);
  if (by.categories.empty()) return by.max_keys * (per_group + 1);
  return static_cast<int64_t>(by.categories.size()) * per_group;
}

Result<Cost> CostOf(const DpPolicy& policy, const Query& query) {
  ASSIGN_OR_RETURN(int64_t rho,
                   RhoForEpsilonDeltaRemembered(query.epsilon, ConversionDelta(policy)));
  if (rho <= 0)
    return InvalidArgumentError("DP query: epsilon " + std::to_string(query.epsilon) +
                                " is too small to spend (it buys no noise level)");
  const bool selects =
      !query.group_by.empty() && policy.columns.at(query.group_by).categories.empty();
  const double tv = kTvPerSample * static_cast<double>(SampleBound(policy, query));
  return Cost{rho, tv + (selects ? query.delta : 0)};
}

Result<Answer> RunQuery(const Table& t, const DpPolicy& policy, const Query& q, const Cost& cost,
                        RandomBits& random, bool private_data) {
  const int64_t m = policy.max_rows_per_unit;
  // The columns the query reads.
  std::vector<const std::vector<double>*> numbers;
  std::vector<const CategoryColumn*> filters;
  std::vector<std::vector<int32_t>> allowed;
  const std::vector<double>* values = nullptr;
  if (!q.column.empty()) {
    auto it = t.numbers.find(q.column);
    if (it == t.numbers.end())
      return FailedPreconditionError("DP: the asset has no numeric column '" + q.column + "'");
    values = &it->second;
    numbers.push_back(values);
  }
  for (const auto& [name, keep] : q.where) {
    auto it = t.categories.find(name);
    if (it == t.categories.end())
      return FailedPreconditionError("DP: the asset has no category column '" + name + "'");
    // A listed column's codes are the policy's indexes (LoadCsvTable): the kept ones come from the
    // policy and the query, never from the values the data holds (a cold attack timed those).
    const std::vector<std::string>& listed = policy.columns.at(name).categories;
    std::vector<int32_t> codes;
    for (size_t c = 0; c < listed.size(); ++c)
      if (std::find(keep.begin(), keep.end(), listed[c]) != keep.end())
        codes.push_back(static_cast<int32_t>(c));
    filters.push_back(&it->second);
    allowed.push_back(std::move(codes));
  }
  const CategoryColumn* group_column = nullptr;
  const ColumnPolicy* group_policy = nullptr;
  if (!q.group_by.empty()) {
    auto it = t.categories.find(q.group_by);
    if (it == t.categories.end())
      return FailedPreconditionError("DP: the asset has no category column '" + q.group_by + "'");
    group_column = &it->second;
    group_policy = &policy.columns.at(q.group_by);
  }
  std::vector<int64_t> rows = SelectRows(t, numbers, filters, allowed);

  // Groups, and each selected row's group. A listed column's codes are the policy's own indexes
  // (LoadCsvTable), so the groups are the listed categories, every one, whatever the data holds.
  // An unlisted column's groups are chosen by partition selection; everything before the choice is
  // sized by the public max_keys, not by how many keys the data has, and only the chosen groups
  // get more work.
  Groups groups;
  groups.of_row.assign(rows.size(), 0);
  const bool selecting = group_column != nullptr && group_policy->categories.empty();
  int64_t samples = 0;
  auto draw = [&](const Noise& noise) {
    ++samples;
    return noise.sampler.Sample(random);
  };
  Answer answer;
  int64_t rho = cost.rho_units;
  std::vector<int64_t> selection_counts;  // the released groups' noisy counts, when selecting
  double selection_std = 0;
  if (group_column == nullptr) {
    groups.keys.push_back(std::nullopt);
  } else if (!selecting) {
    for (const std::string& key : group_policy->categories) groups.keys.push_back(key);
    const int32_t listed = static_cast<int32_t>(groups.keys.size());
    for (size_t r = 0; r < rows.size(); ++r) {
      const int32_t code = group_column->codes[static_cast<size_t>(rows[r])];
      groups.of_row[r] = code < listed ? code : -1;
    }
  } else {
    const int64_t max_keys = group_policy->max_keys;
    if (static_cast<int64_t>(group_column->values.size()) > max_keys)
      return FailedPreconditionError("DP: '" + q.group_by +
                                     "' has more distinct values than the policy's max_keys");
    // Partition selection: noisy counts, released above tau.
    const int64_t selection_rho = q.kind == QueryKind::kCount ? rho : rho / 2;
    rho -= q.kind == QueryKind::kCount ? 0 : selection_rho;
    ASSIGN_OR_RETURN(Noise noise, NoiseFor(selection_rho, m));
    if (!(q.delta > 0)) return InvalidArgumentError("DP query: partition selection needs a delta");
    const double tau =
        static_cast<double>(m) +
        std::ceil(noise.sigma * std::sqrt(2 * std::log(static_cast<double>(m) / q.delta))) + 1;
    std::vector<int64_t> counts(static_cast<size_t>(max_keys), 0);
    for (int64_t row : rows) {
      const int32_t code = group_column->codes[static_cast<size_t>(row)];
      if (code >= 0) ++counts[static_cast<size_t>(code)];
    }
    // On private data, max_keys draws whatever the number of keys (those past the data's keys are
    // thrown away); a mock's keys are no secret, and its queries are free, so they pay no padding.
    const int64_t draws =
        private_data ? max_keys : static_cast<int64_t>(group_column->values.size());
    std::vector<int32_t> chosen;
    for (int64_t i = 0; i < draws; ++i) {
      const int64_t noisy = counts[static_cast<size_t>(i)] + draw(noise);
      counts[static_cast<size_t>(i)] = noisy;
      if (static_cast<size_t>(i) < group_column->values.size() && static_cast<double>(noisy) >= tau)
        chosen.push_back(static_cast<int32_t>(i));
    }
    // Sorted: the order keys were first seen in the file would tell which came first (a cold
    // attack read one person's key off the first released group).
    std::sort(chosen.begin(), chosen.end(), [&](int32_t x, int32_t y) {
      return group_column->values[static_cast<size_t>(x)] <
             group_column->values[static_cast<size_t>(y)];
    });
    std::vector<int32_t> group_of_code(static_cast<size_t>(max_keys), -1);
    for (int32_t code : chosen) {
      group_of_code[static_cast<size_t>(code)] = static_cast<int32_t>(groups.keys.size());
      groups.keys.push_back(group_column->values[static_cast<size_t>(code)]);
      selection_counts.push_back(counts[static_cast<size_t>(code)]);
    }
    for (size_t r = 0; r < rows.size(); ++r) {
      const int32_t code = group_column->codes[static_cast<size_t>(rows[r])];
      groups.of_row[r] = code < 0 ? -1 : group_of_code[static_cast<size_t>(code)];
    }
    selection_std = noise.sigma;
  }
  // From here on every group is answered (listed, or chosen by the selection).
  const size_t g = groups.keys.size();
  const std::vector<uint8_t> released(g, 1);
  auto count_rows = [&]() {
    std::vector<int64_t> counts(g, 0);
    for (size_t r = 0; r < rows.size(); ++r)
      if (groups.of_row[r] >= 0) ++counts[static_cast<size_t>(groups.of_row[r])];
    return counts;
  };

  auto emit = [&](size_t i, double value, std::optional<double> std_dev,
                  std::optional<double> quantile = std::nullopt) {
    answer.estimates.push_back(Estimate{groups.keys[i], quantile, value, std_dev});
  };

  if (q.kind == QueryKind::kCount) {
    if (selecting) {
      for (size_t i = 0; i < g; ++i)
        if (released[i]) emit(i, static_cast<double>(selection_counts[i]), selection_std);
    } else {
      ASSIGN_OR_RETURN(Noise noise, NoiseFor(rho, m));
      std::vector<int64_t> counts = count_rows();
      for (size_t i = 0; i < g; ++i)
        emit(i, static_cast<double>(counts[i] + draw(noise)), noise.sigma);
    }
  } else {
    const ColumnPolicy& col = policy.columns.at(q.column);
    const double lower = col.lower, upper = col.upper;
    auto clamp = [&](double v) { return std::clamp(v, lower, upper); };
    if (q.kind == QueryKind::kSum) {
      ASSIGN_OR_RETURN(auto grid, PickGrid(std::max(std::fabs(lower), std::fabs(upper)), m, 1));
      auto [k, bound] = grid;
      ASSIGN_OR_RETURN(Noise noise, NoiseFor(rho, m * bound));
      std::vector<__int128> sums(g, 0);
      for (size_t r = 0; r < rows.size(); ++r) {
        if (groups.of_row[r] < 0) continue;
        ASSIGN_OR_RETURN(int64_t x, ToGrid(clamp((*values)[static_cast<size_t>(rows[r])]), k));
        x = std::clamp(x, -bound, bound);
        sums[static_cast<size_t>(groups.of_row[r])] += x;
      }
      const double step = std::ldexp(1.0, k);
      for (size_t i = 0; i < g; ++i) {
        if (!released[i]) continue;
        ASSIGN_OR_RETURN(double v, FromGrid(Saturate(sums[i] + draw(noise)), k));
        emit(i, v, noise.sigma * step);
      }
    } else if (q.kind == QueryKind::kMean || q.kind == QueryKind::kVariance) {
      const bool variance = q.kind == QueryKind::kVariance;
      const double centre = lower / 2 + upper / 2;
      const double half = upper / 2 - lower / 2;
      ASSIGN_OR_RETURN(auto grid, PickGrid(half, m, variance ? 2 : 1));
      auto [k, bound] = grid;
      const int64_t parts = variance ? 3 : 2;
      ASSIGN_OR_RETURN(Noise count_noise, NoiseFor(rho / parts, m));
      ASSIGN_OR_RETURN(Noise sum_noise, NoiseFor(rho / parts, m * bound));
      std::optional<Noise> square_noise;
      if (variance) {
        ASSIGN_OR_RETURN(Noise n, NoiseFor(rho / parts, m * bound * bound));
        square_noise.emplace(std::move(n));
      }
      std::vector<int64_t> counts = count_rows();
      std::vector<__int128> sums(g, 0), squares(g, 0);
      for (size_t r = 0; r < rows.size(); ++r) {
        if (groups.of_row[r] < 0) continue;
        const double v = clamp((*values)[static_cast<size_t>(rows[r])]) - centre;
        ASSIGN_OR_RETURN(int64_t x, ToGrid(v, k));
        x = std::clamp(x, -bound, bound);
        sums[static_cast<size_t>(groups.of_row[r])] += x;
        squares[static_cast<size_t>(groups.of_row[r])] += static_cast<__int128>(x) * x;
      }
      const double step = std::ldexp(1.0, k);
      for (size_t i = 0; i < g; ++i) {
        if (!released[i]) continue;
        const double n = std::max<double>(1, static_cast<double>(counts[i] + draw(count_noise)));
        const double s = static_cast<double>(Saturate(sums[i] + draw(sum_noise))) * step;
        const double mean = std::clamp(s / n, -half, half);
        if (!variance) {
          // First order: the sum's noise over n, and the count's moving the ratio by mean / n.
          const double sd =
              std::hypot(sum_noise.sigma * step / n, std::fabs(mean) * count_noise.sigma / n);
          emit(i, centre + mean, sd);
        } else {
          const double s2 =
              static_cast<double>(Saturate(squares[i] + draw(*square_noise))) * step * step;
          emit(i, std::clamp(s2 / n - mean * mean, 0.0, half * half), std::nullopt);
        }
      }
    } else {  // quantiles: one noisy histogram per group
      ASSIGN_OR_RETURN(Noise noise, NoiseFor(rho, m));
      std::vector<int64_t> bins(g * kQuantileBins, 0);
      const double width = (upper - lower) / kQuantileBins;
      for (size_t r = 0; r < rows.size(); ++r) {
        if (groups.of_row[r] < 0) continue;
        const double v = clamp((*values)[static_cast<size_t>(rows[r])]);
        const int b = std::clamp(static_cast<int>((v - lower) / width), 0, kQuantileBins - 1);
        ++bins[static_cast<size_t>(groups.of_row[r]) * kQuantileBins + static_cast<size_t>(b)];
      }
      for (size_t i = 0; i < g; ++i) {
        if (!released[i]) continue;  // a group the selection keeps back costs no work
        std::vector<double> noisy(kQuantileBins);
        double total = 0;
        for (int b = 0; b < kQuantileBins; ++b) {
          noisy[static_cast<size_t>(b)] = std::max<double>(
              0,
              static_cast<double>(bins[i * kQuantileBins + static_cast<size_t>(b)] + draw(noise)));
          total += noisy[static_cast<size_t>(b)];
        }
        for (double p : q.quantiles) {
          const double target = p * total;
          double cumulative = 0, value = upper;
          for (int b = 0; b < kQuantileBins; ++b) {
            const double next = cumulative + noisy[static_cast<size_t>(b)];
            if (next >= target && noisy[static_cast<size_t>(b)] > 0) {
              const double within = (target - cumulative) / noisy[static_cast<size_t>(b)];
              value = lower + (b + std::clamp(within, 0.0, 1.0)) * width;
              break;
            }
            cumulative = next;
          }
          if (col.type == ColumnType::kInt) value = std::round(value);
          emit(i, std::clamp(value, lower, upper), std::nullopt, p);
        }
      }
    }
  }
  if (samples > SampleBound(policy, q))
    return InternalError("DP: the query drew more samples than its delta allowance covers");
  answer.delta_spent = cost.delta;
  return answer;
}

}  // namespace datasite::dp
