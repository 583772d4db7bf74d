#include "dp/policy.h"

#include <cmath>
#include <set>

namespace datasite::dp {
namespace {

using nlohmann::json;

constexpr size_t kMaxColumns = 256;
constexpr size_t kMaxCategories = 10'000;
constexpr size_t kMaxNameBytes = 256;
constexpr double kMaxEpsilon = 100;
// A delta above this protects nobody in a table of thousands (it is a chance of releasing a row).
constexpr double kMaxDelta = 1e-3;
constexpr int64_t kMaxRowsPerUnit = 10'000;
constexpr size_t kMaxQuantiles = 9;
constexpr int64_t kMaxKeys = 10'000;
constexpr int64_t kDefaultMaxKeys = 1000;

Status Invalid(const std::string& what) { return InvalidArgumentError("DP policy: " + what); }

Status OnlyKeys(const json& object, std::initializer_list<const char*> keys,
                const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    bool known = false;
    for (const char* k : keys) known = known || key == k;
    if (!known)
      return Invalid(where + ": unknown key '" + key.substr(0, 64) + "' (keys: " + [&] {
        std::string list;
        for (const char* k : keys) list += (list.empty() ? "" : ", ") + std::string(k);
        return list;
      }() + ")");
  }
  return Status::Ok();
}

Result<double> Number(const json& object, const char* key, const std::string& where) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number())
    return Invalid(where + "." + key + " must be a number");
  double v = it->get<double>();
  if (!std::isfinite(v)) return Invalid(where + "." + key + " must be finite");
  return v;
}

Result<PolicyBudget> ParseBudget(const json& b, const std::string& where) {
  if (!b.is_object()) return Invalid(where + " must be {\"epsilon\": E, \"delta\": D}");
  RETURN_IF_ERROR(OnlyKeys(b, {"epsilon", "delta"}, where));
  PolicyBudget out;
  ASSIGN_OR_RETURN(out.epsilon, Number(b, "epsilon", where));
  if (!(out.epsilon > 0) || out.epsilon > kMaxEpsilon)
    return Invalid(where + ".epsilon must be above 0 and at most 100");
  if (b.contains("delta")) {
    ASSIGN_OR_RETURN(out.delta, Number(b, "delta", where));
    if (out.delta < 0 || out.delta > kMaxDelta)
      return Invalid(where + ".delta must be from 0 to 0.001");
  }
  return out;
}

bool GoodName(const std::string& s) { return !s.empty() && s.size() <= kMaxNameBytes; }

}  // namespace

const char* QueryKindName(QueryKind kind) {
  switch (kind) {
    case QueryKind::kCount:
      return "count";
    case QueryKind::kSum:
      return "sum";
    case QueryKind::kMean:
      return "mean";
    case QueryKind::kVariance:
      return "variance";
    case QueryKind::kQuantile:
      return "quantile";
  }
  return "?";
}

std::optional<QueryKind> ParseQueryKind(const std::string& name) {
  for (QueryKind k : {QueryKind::kCount, QueryKind::kSum, QueryKind::kMean, QueryKind::kVariance,
                      QueryKind::kQuantile})
    if (name == QueryKindName(k)) return k;
  return std::nullopt;
}

Result<DpPolicy> ParseDpPolicy(const json& d) {
  if (!d.is_object()) return Invalid("must be a JSON object");
  RETURN_IF_ERROR(
      OnlyKeys(d, {"privacy_unit", "max_rows_per_unit", "columns", "budget", "queries"}, "policy"));
  DpPolicy p;
  if (auto u = d.find("privacy_unit"); u != d.end() && !u->is_null()) {
    if (!u->is_string() || !GoodName(u->get<std::string>()))
      return Invalid("privacy_unit must be a column name, or null for each row");
    p.privacy_unit = u->get<std::string>();
  }
  if (auto m = d.find("max_rows_per_unit"); m != d.end()) {
    if (!m->is_number_integer() || m->get<int64_t>() < 1 || m->get<int64_t>() > kMaxRowsPerUnit)
      return Invalid("max_rows_per_unit must be a whole number from 1 to 10000");
    p.max_rows_per_unit = m->get<int64_t>();
    if (p.privacy_unit.empty() && p.max_rows_per_unit != 1)
      return Invalid("max_rows_per_unit is 1 when each row is its own privacy unit");
  }
  auto columns = d.find("columns");
  if (columns == d.end() || !columns->is_object() || columns->empty())
    return Invalid("columns must name at least one queryable column");
  if (columns->size() > kMaxColumns) return Invalid("at most 256 columns");
  for (const auto& [name, c] : columns->items()) {
    const std::string where = "columns." + name.substr(0, 64);
    if (!GoodName(name)) return Invalid("a column name must be 1 to 256 bytes");
    if (name == p.privacy_unit)
      return Invalid(where + ": the privacy unit's column can't be queried (it names people)");
    if (!c.is_object() || !c.contains("type") || !c["type"].is_string())
      return Invalid(where + " must be {\"type\": \"int\" | \"float\" | \"category\", ...}");
    const std::string type = c["type"].get<std::string>();
    ColumnPolicy col;
    if (type == "int" || type == "float") {
      RETURN_IF_ERROR(OnlyKeys(c, {"type", "lower", "upper"}, where));
      col.type = type == "int" ? ColumnType::kInt : ColumnType::kFloat;
      ASSIGN_OR_RETURN(col.lower, Number(c, "lower", where));
      ASSIGN_OR_RETURN(col.upper, Number(c, "upper", where));
      if (!(col.lower < col.upper)) return Invalid(where + ": lower must be below upper");
      if (std::fabs(col.lower) > 1e15 || std::fabs(col.upper) > 1e15)
        return Invalid(where + ": bounds must be within ±1e15");
      if (col.type == ColumnType::kInt &&
          (col.lower != std::floor(col.lower) || col.upper != std::floor(col.upper)))
        return Invalid(where + ": an int column's bounds are whole numbers");
    } else if (type == "category") {
      RETURN_IF_ERROR(OnlyKeys(c, {"type", "categories", "max_keys"}, where));
      col.type = ColumnType::kCategory;
      auto cats = c.find("categories");
      const bool listed = cats != c.end() && !cats->is_null();
      if (auto m = c.find("max_keys"); m != c.end() && !m->is_null()) {
        if (listed) return Invalid(where + ".max_keys is for a column without listed categories");
        if (!m->is_number_integer() || m->get<int64_t>() < 1 || m->get<int64_t>() > kMaxKeys)
          return Invalid(where + ".max_keys must be a whole number from 1 to 10000");
        col.max_keys = m->get<int64_t>();
      } else if (!listed) {
        col.max_keys = kDefaultMaxKeys;
      }
      if (cats != c.end() && !cats->is_null()) {
        if (!cats->is_array() || cats->empty() || cats->size() > kMaxCategories)
          return Invalid(where + ".categories must be 1 to 10000 strings, or null");
        std::set<std::string> seen;
        for (const json& v : *cats) {
          if (!v.is_string() || v.get<std::string>().size() > kMaxNameBytes)
            return Invalid(where + ".categories must be strings of at most 256 bytes");
          if (!seen.insert(v.get<std::string>()).second)
            return Invalid(where + ".categories lists '" + v.get<std::string>() + "' twice");
          col.categories.push_back(v.get<std::string>());
        }
      }
    } else {
      return Invalid(where + ".type must be \"int\", \"float\" or \"category\"");
    }
    p.columns.emplace(name, std::move(col));
  }
  auto budget = d.find("budget");
  if (budget == d.end() || !budget->is_object())
    return Invalid("budget must be {\"per_scientist\": {...}, \"total\": {...}}");
  RETURN_IF_ERROR(OnlyKeys(*budget, {"per_scientist", "total"}, "budget"));
  ASSIGN_OR_RETURN(p.per_scientist,
                   ParseBudget(budget->value("per_scientist", json()), "budget.per_scientist"));
  if (budget->contains("total")) {
    ASSIGN_OR_RETURN(p.total, ParseBudget((*budget)["total"], "budget.total"));
  } else {
    p.total = p.per_scientist;  // one scientist's worth, shared
  }
  if (p.total.epsilon < p.per_scientist.epsilon || p.total.delta < p.per_scientist.delta)
    return Invalid("budget.total must be at least budget.per_scientist");
  auto queries = d.find("queries");
  if (queries == d.end()) {
    p.queries = {QueryKind::kCount, QueryKind::kSum, QueryKind::kMean, QueryKind::kVariance,
                 QueryKind::kQuantile};
  } else {
    if (!queries->is_array() || queries->empty())
      return Invalid("queries must list at least one of count, sum, mean, variance, quantile");
    for (const json& q : *queries) {
      auto kind = q.is_string() ? ParseQueryKind(q.get<std::string>()) : std::nullopt;
      if (!kind) return Invalid("queries: '" + q.dump().substr(0, 64) + "' is no query kind");
      p.queries.insert(*kind);
    }
  }
  return p;
}

json ToJson(const DpPolicy& p) {
  json columns = json::object();
  for (const auto& [name, c] : p.columns) {
    if (c.type == ColumnType::kCategory) {
      columns[name] = {{"type", "category"},
                       {"categories", c.categories.empty() ? json(nullptr) : json(c.categories)}};
      if (c.categories.empty()) columns[name]["max_keys"] = c.max_keys;
    } else {
      columns[name] = {{"type", c.type == ColumnType::kInt ? "int" : "float"},
                       {"lower", c.lower},
                       {"upper", c.upper}};
    }
  }
  json queries = json::array();
  for (QueryKind k : p.queries) queries.push_back(QueryKindName(k));
  return {
      {"privacy_unit", p.privacy_unit.empty() ? json(nullptr) : json(p.privacy_unit)},
      {"max_rows_per_unit", p.max_rows_per_unit},
      {"columns", std::move(columns)},
      {"budget",
       {{"per_scientist", {{"epsilon", p.per_scientist.epsilon}, {"delta", p.per_scientist.delta}}},
        {"total", {{"epsilon", p.total.epsilon}, {"delta", p.total.delta}}}}},
      {"queries", std::move(queries)}};
}

Result<Query> ParseQuery(const json& r, const DpPolicy& policy) {
  auto bad = [](const std::string& what) { return InvalidArgumentError("DP query: " + what); };
  auto denied = [](const std::string& what) {
    return PermissionDeniedError("DP query: " + what +
                                 " (the asset's DP policy does not allow it)");
  };
  if (!r.is_object()) return bad("must be a JSON object");
  for (const auto& [key, value] : r.items()) {
    static const std::set<std::string> kKeys = {"query",   "column", "where",    "group_by",
                                                "epsilon", "delta",  "quantiles"};
    if (!kKeys.contains(key)) return bad("unknown key '" + key.substr(0, 64) + "'");
  }
  Query q;
  auto kind = r.contains("query") && r["query"].is_string()
                  ? ParseQueryKind(r["query"].get<std::string>())
                  : std::nullopt;
  if (!kind) return bad("'query' must be one of count, sum, mean, variance, quantile");
  q.kind = *kind;
  if (!policy.queries.contains(q.kind)) return denied(std::string(QueryKindName(q.kind)));
  auto column_of = [&](const std::string& name) -> const ColumnPolicy* {
    auto it = policy.columns.find(name);
    return it == policy.columns.end() ? nullptr : &it->second;
  };
  if (q.kind != QueryKind::kCount) {
    if (!r.contains("column") || !r["column"].is_string())
      return bad(std::string(QueryKindName(q.kind)) + " needs a 'column'");
    q.column = r["column"].get<std::string>();
    const ColumnPolicy* c = column_of(q.column);
    if (c == nullptr) return denied("column '" + q.column.substr(0, 64) + "' is not queryable");
    if (c->type == ColumnType::kCategory)
      return denied("column '" + q.column + "' is a category; " + QueryKindName(q.kind) +
                    " needs a numeric column");
  } else if (r.contains("column") && !r["column"].is_null()) {
    return bad("a count takes no 'column'");
  }
  if (auto w = r.find("where"); w != r.end() && !w->is_null()) {
    if (!w->is_object()) return bad("'where' must be {COLUMN: VALUE or [VALUES]}");
    for (const auto& [name, values] : w->items()) {
      const ColumnPolicy* c = column_of(name);
      if (c == nullptr) return denied("column '" + name.substr(0, 64) + "' is not queryable");
      if (c->type != ColumnType::kCategory || c->categories.empty())
        return denied("'where' filters only on category columns with listed categories, not '" +
                      name + "'");
      // Each value once (a value listed again adds nothing), each checked against the policy's
      // list by a set: the work is the query's size, never the data's.
      const std::set<std::string> categories(c->categories.begin(), c->categories.end());
      std::set<std::string> seen;
      std::vector<std::string> keep;
      for (const json& v : values.is_array() ? values : json::array({values})) {
        if (!v.is_string()) return bad("'where' values are strings");
        const std::string s = v.get<std::string>();
        if (!categories.contains(s))
          return denied("'" + s.substr(0, 64) + "' is not a listed category of " + name);
        if (seen.insert(s).second) keep.push_back(s);
      }
      if (keep.empty()) return bad("'where' on " + name + " lists no value");
      q.where.emplace(name, std::move(keep));
    }
  }
  if (!r.contains("epsilon") || !r["epsilon"].is_number())
    return bad("'epsilon' must be a number above 0");
  q.epsilon = r["epsilon"].get<double>();
  if (!std::isfinite(q.epsilon) || !(q.epsilon > 0) || q.epsilon > kMaxEpsilon)
    return bad("'epsilon' must be above 0 and at most 100");
  if (auto d = r.find("delta"); d != r.end() && !d->is_null()) {
    if (!d->is_number() || !std::isfinite(d->get<double>()) || d->get<double>() < 0 ||
        d->get<double>() > kMaxDelta)
      return bad("'delta' must be from 0 to 0.001");
    q.delta = d->get<double>();
  }
  if (auto g = r.find("group_by"); g != r.end() && !g->is_null()) {
    if (!g->is_string()) return bad("'group_by' must be a column name");
    q.group_by = g->get<std::string>();
    const ColumnPolicy* c = column_of(q.group_by);
    if (c == nullptr) return denied("column '" + q.group_by.substr(0, 64) + "' is not queryable");
    if (c->type != ColumnType::kCategory)
      return denied("group_by needs a category column, not '" + q.group_by + "'");
    if (c->categories.empty() && !(q.delta > 0))
      return denied("'" + q.group_by +
                    "' has no listed categories: grouping by it selects groups with DP, which "
                    "needs a 'delta' above 0");
  }
  if (q.kind == QueryKind::kQuantile) {
    auto qs = r.find("quantiles");
    if (qs == r.end()) {
      q.quantiles = {0.5};
    } else {
      const json list = qs->is_array() ? *qs : json::array({*qs});
      if (list.empty() || list.size() > kMaxQuantiles) return bad("1 to 9 'quantiles'");
      for (const json& v : list) {
        if (!v.is_number() || !(v.get<double>() >= 0 && v.get<double>() <= 1))
          return bad("each of 'quantiles' is from 0 to 1");
        q.quantiles.push_back(v.get<double>());
      }
    }
  } else if (r.contains("quantiles")) {
    return bad("'quantiles' is for a quantile query");
  }
  return q;
}

}  // namespace datasite::dp
