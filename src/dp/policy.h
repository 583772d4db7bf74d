// A data owner's differential-privacy policy for one tabular asset, and the queries it admits.
//
// The policy is one declarative document (JSON, docs/PRIVACY.md): who the privacy unit is, for each
// queryable column its type and its public bounds or categories (never derived from the data), the
// budgets, the contribution bound per privacy unit, and the queries allowed. Everything the query
// engine needs to bound sensitivity comes from here, so a query's noise never depends on the data.
#ifndef DATASITE_DP_POLICY_H_
#define DATASITE_DP_POLICY_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace datasite::dp {

enum class ColumnType { kInt, kFloat, kCategory };

// One queryable column. Numeric columns are clamped to [lower, upper] before aggregation;
// category columns may be filtered and grouped by on `categories` (the public keys). A category
// column with no listed categories may be grouped by only through DP partition selection.
struct ColumnPolicy {
  ColumnType type = ColumnType::kFloat;
  double lower = 0;  // numeric only; finite, lower < upper
  double upper = 0;
  std::vector<std::string> categories;  // category only; distinct, in the owner's order
  // A category column without listed categories: the most distinct values it may have (public).
  // A query grouping by it does the same work for this many keys whatever the data holds (the
  // number of keys would otherwise show in its time); a table with more is refused.
  int64_t max_keys = 0;
};

// An (epsilon, delta) pair. epsilon > 0 and finite; 0 <= delta < 1.
struct PolicyBudget {
  double epsilon = 0;
  double delta = 0;
};

enum class QueryKind { kCount, kSum, kMean, kVariance, kQuantile };

struct DpPolicy {
  // The column naming the person (or other unit) protected; empty: each row is its own unit.
  std::string privacy_unit;
  // The most rows one privacy unit may add to a query (others are dropped before aggregation,
  // the same ones for every query: sampled with a key, see the engine). 1 when each row is a unit.
  int64_t max_rows_per_unit = 1;
  std::map<std::string, ColumnPolicy> columns;
  PolicyBudget per_scientist;  // what each data scientist may spend on this asset
  PolicyBudget total;          // what all of them together may spend (>= per_scientist)
  std::set<QueryKind> queries;
};

// The policy `document` describes, or kInvalidArgument naming the first thing wrong with it.
// {"privacy_unit": COLUMN | null, "max_rows_per_unit": N, "columns": {NAME: {"type": "int" |
// "float", "lower": X, "upper": Y} | {"type": "category", "categories": [TEXT, ...]} | {"type":
// "category", "categories": null, "max_keys": N (default 1000, at most 10000)}},
// "budget": {"per_scientist": {"epsilon", "delta"}, "total": {"epsilon", "delta"}}, "queries":
// ["count", "sum", "mean", "variance", "quantile"]}. Unknown keys are refused (a typo must not
// silently loosen a policy).
Result<DpPolicy> ParseDpPolicy(const nlohmann::json& document);
nlohmann::json ToJson(const DpPolicy& policy);

const char* QueryKindName(QueryKind kind);
std::optional<QueryKind> ParseQueryKind(const std::string& name);

// One query, as a data scientist asks it.
struct Query {
  QueryKind kind = QueryKind::kCount;
  std::string column;  // the aggregated column; empty for a count
  // Rows kept: for each named category column, those whose value is one of the listed categories.
  std::map<std::string, std::vector<std::string>> where;
  std::string group_by;  // a category column, or empty
  double epsilon = 0;    // what the query may spend
  double delta = 0;      // for the Gaussian mechanism and partition selection; 0 for pure DP
  std::vector<double> quantiles;  // kQuantile: each in [0, 1]
};

// The query `request` asks for, checked against `policy`: kInvalidArgument for a malformed one,
// kPermissionDenied naming what the policy does not allow (a query kind, a column that is not
// queryable or has the wrong type, a filter value that is not a listed category, a group-by over
// unlisted keys without a delta for partition selection). {"query": KIND, "column"?, "where"?:
// {COLUMN: VALUE | [VALUES]}, "group_by"?, "epsilon", "delta"?, "quantiles"?}.
Result<Query> ParseQuery(const nlohmann::json& request, const DpPolicy& policy);

}  // namespace datasite::dp

#endif  // DATASITE_DP_POLICY_H_
