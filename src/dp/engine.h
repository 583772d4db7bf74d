// The DP query engine: answers a Query (policy.h) over a Table with the discrete Gaussian
// mechanism, after bounding each privacy unit's contribution and clamping to the policy's public
// bounds.
//
// How each query is made private (rho is what the query may spend, in zCDP; every privacy unit
// adds at most m = max_rows_per_unit rows, so any histogram of its rows over groups or bins has
// L2 norm at most m):
//   count     noisy count per group: L2 sensitivity m.
//   sum       values clamped to [lower, upper] and moved onto a power-of-two grid (grid.h); noisy
//             integer sum per group: L2 sensitivity m * max(|lower|, |upper|) on the grid.
//   mean      rho split in two: a noisy count, and a noisy sum of values centred on the middle of
//             the bounds (sensitivity m * (upper - lower) / 2); mean = centre + sum / count.
//   variance  rho split in three: count, centred sum, centred sum of squares.
//   quantile  a noisy histogram of 256 equal bins over [lower, upper] per group (sensitivity m);
//             each quantile is read off its cumulative sum (post-processing: all quantiles of one
//             query cost one histogram).
// Groups: the listed categories of the group-by column, all of them, whether or not the data has
// rows there (so the set of groups released says nothing). A column with no listed categories is
// grouped through DP partition selection: a noisy count per key seen, released only above a
// threshold tau = m + ceil(sigma sqrt(2 ln(m / delta))), so a key only one unit has is released
// with probability at most delta (the discrete Gaussian is sigma-subgaussian, CKS 2020); half of
// rho pays for those counts (all of it for a count query, whose answer they are). Selected keys
// come out sorted, and the selection draws the column's max_keys samples whatever the number of
// keys, so neither the order nor the time tells which keys the data holds.
// Rows whose value in a column the query reads is missing (NaN; a category not listed) are left out
// of that query, as rows the filter does not keep are. No work depends on which values outside a
// column's listed categories the data holds (LoadCsvTable codes listed columns by the policy).
#ifndef DATASITE_DP_ENGINE_H_
#define DATASITE_DP_ENGINE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "dp/policy.h"
#include "dp/random_bits.h"

namespace datasite::dp {

// A category column: each row's index into `values`, or -1 for a missing value.
struct CategoryColumn {
  std::vector<std::string> values;
  std::vector<int32_t> codes;
};

// An asset's queryable columns, read once (and kept by the caller: it is the column-oriented copy).
// Not thread-safe to build; const use is safe for concurrent queries.
struct Table {
  int64_t rows = 0;
  std::map<std::string, std::vector<double>> numbers;  // NaN: missing
  std::map<std::string, CategoryColumn> categories;
  // Which rows count: at most max_rows_per_unit per privacy unit (BoundContributions); empty: all.
  std::vector<uint8_t> kept;
};

// Keeps at most `max_rows` rows of each privacy unit (`units[i]` names row i's unit; a row whose
// unit is empty is left out). Which rows a unit keeps depends on that unit's own rows only (its
// k-th row in file order is ranked by a keyed hash of (key, unit, k)), never on other units':
// adding or removing a unit changes no other unit's rows, which the sensitivity above relies on.
void BoundContributions(Table& table, const std::vector<std::string>& units, int64_t max_rows,
                        uint64_t key);

// One released number.
struct Estimate {
  std::optional<std::string> group;  // the group's key; none without group_by
  std::optional<double> quantile;    // which quantile, for a quantile query
  double value = 0;
  // The standard deviation of the noise in `value` (count, sum: exact; mean: a first-order
  // approximation); none where the engine can't state it (variance, quantile).
  std::optional<double> noise_std;
};

struct Answer {
  std::vector<Estimate> estimates;
  // What the release added to delta beyond the zCDP conversion: partition selection's delta, and
  // the samplers' total variation bounds.
  double delta_spent = 0;
};

// What a query costs: rho units (accountant.h), and delta beyond the conversion (the query's own
// delta when it selects partitions, plus a bound on the samplers' TV distance).
struct Cost {
  int64_t rho_units = 0;
  double delta = 0;
};

// Budgets in (epsilon, delta) are kept as rho (zCDP) converted at half their delta; the other half
// pays for what zCDP does not cover (partition selection, the samplers' distance from ideal).
// This is the delta of that conversion for `policy`'s per-scientist budget.
double ConversionDelta(const DpPolicy& policy);

// The cost of `query` under `policy`: the rho whose conversion at ConversionDelta is the query's
// epsilon (RhoForEpsilonDelta, rounded down: the noise is calibrated to it, and the same rho is
// charged), so a query asking for the whole budget's epsilon spends exactly its rho; delta: the
// samplers' allowance for as many samples as the query may draw, plus its own delta when it
// selects partitions. kInvalidArgument for an epsilon too small to buy any rho unit.
Result<Cost> CostOf(const DpPolicy& policy, const Query& query);

// Answers `query` on `table` spending `cost` (from CostOf), with noise from `random`.
// kFailedPrecondition when the table lacks a column the policy lists (the policy and the asset
// disagree); kInvalidArgument for bounds too wide to put on a grid.
// `private_data` false (a mock) skips the selection's padding to max_keys samples: a mock's keys
// are no secret.
Result<Answer> RunQuery(const Table& table, const DpPolicy& policy, const Query& query,
                        const Cost& cost, RandomBits& random, bool private_data = true);

}  // namespace datasite::dp

#endif  // DATASITE_DP_ENGINE_H_
