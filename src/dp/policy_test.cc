#include "dp/policy.h"

#include <gtest/gtest.h>

namespace datasite::dp {
namespace {

using nlohmann::json;

json GoodPolicy() {
  return json::parse(R"({
    "privacy_unit": "person_id",
    "max_rows_per_unit": 3,
    "columns": {
      "age": {"type": "int", "lower": 0, "upper": 120},
      "income": {"type": "float", "lower": 0, "upper": 1e6},
      "sex": {"type": "category", "categories": ["F", "M"]},
      "city": {"type": "category", "categories": null}
    },
    "budget": {"per_scientist": {"epsilon": 1, "delta": 1e-6},
               "total": {"epsilon": 10, "delta": 1e-5}},
    "queries": ["count", "mean", "quantile"]
  })");
}

TEST(DpPolicyTest, ParsesAPolicyAndWritesItBack) {
  auto p = ParseDpPolicy(GoodPolicy());
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->privacy_unit, "person_id");
  EXPECT_EQ(p->max_rows_per_unit, 3);
  EXPECT_EQ(p->columns.at("age").type, ColumnType::kInt);
  EXPECT_EQ(p->columns.at("income").upper, 1e6);
  EXPECT_EQ(p->columns.at("sex").categories, (std::vector<std::string>{"F", "M"}));
  EXPECT_TRUE(p->columns.at("city").categories.empty());
  EXPECT_EQ(p->per_scientist.epsilon, 1);
  EXPECT_EQ(p->total.delta, 1e-5);
  EXPECT_EQ(p->queries,
            (std::set<QueryKind>{QueryKind::kCount, QueryKind::kMean, QueryKind::kQuantile}));
  auto again = ParseDpPolicy(ToJson(*p));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(ToJson(*again), ToJson(*p));
}

TEST(DpPolicyTest, DefaultsAreEachRowAUnitAllQueriesAndTheTotalOneScientists) {
  auto p = ParseDpPolicy(json::parse(R"({"columns": {"x": {"type": "float", "lower": -1,
      "upper": 1}}, "budget": {"per_scientist": {"epsilon": 0.5}}})"));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->privacy_unit, "");
  EXPECT_EQ(p->max_rows_per_unit, 1);
  EXPECT_EQ(p->queries.size(), 5u);
  EXPECT_EQ(p->total.epsilon, 0.5);
  EXPECT_EQ(p->per_scientist.delta, 0);
}

TEST(DpPolicyTest, RefusesWhatWouldLoosenOrConfuseAPolicy) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/extra", "unknown key"},
      {"/columns/age/lowr", "unknown key"},
      {"/budget/per_scientist/epsilon", "epsilon"},
      {"/columns/age/upper", "lower must be below upper"},
      {"/columns/age/lower", "whole numbers"},
      {"/columns/person_id", "privacy unit"},
      {"/columns/sex/categories", "twice"},
      {"/columns/income/type", "type must be"},
      {"/budget/total/epsilon", "at least budget.per_scientist"},
      {"/budget/per_scientist/delta", "delta"},
      {"/queries", "no query kind"},
      {"/max_rows_per_unit", "max_rows_per_unit"},
  };
  for (const auto& [where, why] : cases) {
    json d = GoodPolicy();
    json::json_pointer ptr(where);
    if (where == "/extra") d["extra"] = 1;
    if (where == "/columns/age/lowr") d["columns"]["age"]["lowr"] = 1;
    if (where == "/budget/per_scientist/epsilon") d[ptr] = 0;
    if (where == "/columns/age/upper") d[ptr] = -5;
    if (where == "/columns/age/lower") d[ptr] = 0.5;
    if (where == "/columns/person_id") d[ptr] = {{"type", "int"}, {"lower", 0}, {"upper", 9}};
    if (where == "/columns/sex/categories") d[ptr] = {"F", "F"};
    if (where == "/columns/income/type") d[ptr] = "text";
    if (where == "/budget/total/epsilon") d[ptr] = 0.5;
    if (where == "/budget/per_scientist/delta") d[ptr] = 0.5;
    if (where == "/queries") d[ptr] = {"count", "max"};
    if (where == "/max_rows_per_unit") d[ptr] = 0;
    auto p = ParseDpPolicy(d);
    ASSERT_FALSE(p.ok()) << where;
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument) << where;
    EXPECT_NE(p.status().message().find(why), std::string::npos)
        << where << ": " << p.status().message();
  }
  EXPECT_FALSE(ParseDpPolicy(json::array()).ok());
  EXPECT_FALSE(ParseDpPolicy(json::parse(R"({"columns": {}, "budget": {}})")).ok());
  json nan = GoodPolicy();
  nan["columns"]["income"]["upper"] = std::numeric_limits<double>::infinity();
  EXPECT_FALSE(ParseDpPolicy(nan).ok());
}

TEST(DpPolicyTest, AQueryWithinThePolicyIsParsed) {
  DpPolicy p = *ParseDpPolicy(GoodPolicy());
  auto q = ParseQuery(json::parse(R"({"query": "mean", "column": "age", "epsilon": 0.1,
      "where": {"sex": "F"}, "group_by": "sex"})"),
                      p);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->kind, QueryKind::kMean);
  EXPECT_EQ(q->column, "age");
  EXPECT_EQ(q->where.at("sex"), (std::vector<std::string>{"F"}));
  EXPECT_EQ(q->group_by, "sex");
  EXPECT_EQ(q->epsilon, 0.1);
  auto count = ParseQuery(json::parse(R"({"query": "count", "epsilon": 1})"), p);
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  auto median = ParseQuery(json::parse(R"({"query": "quantile", "column": "income",
      "epsilon": 1})"),
                           p);
  ASSERT_TRUE(median.ok());
  EXPECT_EQ(median->quantiles, std::vector<double>{0.5});
  // A value listed twice in 'where' counts once (a long list of one value costs no more work).
  auto twice = ParseQuery(
      json::parse(R"({"query": "count", "epsilon": 1, "where": {"sex": ["F", "F", "M", "F"]}})"),
      p);
  ASSERT_TRUE(twice.ok()) << twice.status().ToString();
  EXPECT_EQ(twice->where.at("sex"), (std::vector<std::string>{"F", "M"}));
  // Unlisted keys are grouped by only through partition selection, which needs a delta.
  auto cities = ParseQuery(
      json::parse(R"({"query": "count", "epsilon": 1, "delta": 1e-7, "group_by": "city"})"), p);
  ASSERT_TRUE(cities.ok()) << cities.status().ToString();
}

TEST(DpPolicyTest, AQueryOutsideThePolicyIsRefusedSayingWhy) {
  DpPolicy p = *ParseDpPolicy(GoodPolicy());
  const std::vector<std::tuple<std::string, StatusCode, std::string>> cases = {
      {R"({"query": "sum", "column": "age", "epsilon": 1})", StatusCode::kPermissionDenied, "sum"},
      {R"({"query": "mean", "column": "salary", "epsilon": 1})", StatusCode::kPermissionDenied,
       "'salary' is not queryable"},
      {R"({"query": "mean", "column": "person_id", "epsilon": 1})", StatusCode::kPermissionDenied,
       "not queryable"},
      {R"({"query": "mean", "column": "sex", "epsilon": 1})", StatusCode::kPermissionDenied,
       "numeric"},
      {R"({"query": "count", "epsilon": 1, "where": {"sex": "X"}})", StatusCode::kPermissionDenied,
       "not a listed category"},
      {R"({"query": "count", "epsilon": 1, "where": {"city": "Paris"}})",
       StatusCode::kPermissionDenied, "listed categories"},
      {R"({"query": "count", "epsilon": 1, "where": {"age": "3"}})", StatusCode::kPermissionDenied,
       "category columns"},
      {R"({"query": "count", "epsilon": 1, "group_by": "city"})", StatusCode::kPermissionDenied,
       "delta"},
      {R"({"query": "count", "epsilon": 1, "group_by": "age"})", StatusCode::kPermissionDenied,
       "category column"},
      {R"({"query": "count", "epsilon": 0})", StatusCode::kInvalidArgument, "epsilon"},
      {R"({"query": "count", "epsilon": 1e308})", StatusCode::kInvalidArgument, "epsilon"},
      {R"({"query": "count", "epsilon": 1, "delta": 0.5})", StatusCode::kInvalidArgument, "delta"},
      {R"({"query": "count", "epsilon": 1, "column": "age"})", StatusCode::kInvalidArgument,
       "no 'column'"},
      {R"({"query": "mean", "epsilon": 1})", StatusCode::kInvalidArgument, "needs a 'column'"},
      {R"({"query": "quantile", "column": "age", "epsilon": 1, "quantiles": [1.5]})",
       StatusCode::kInvalidArgument, "from 0 to 1"},
      {R"({"query": "count", "epsilon": 1, "limit": 3})", StatusCode::kInvalidArgument,
       "unknown key"},
      {R"({"query": "max", "epsilon": 1})", StatusCode::kInvalidArgument, "'query' must be"},
  };
  for (const auto& [text, code, why] : cases) {
    auto q = ParseQuery(json::parse(text), p);
    ASSERT_FALSE(q.ok()) << text;
    EXPECT_EQ(q.status().code(), code) << text << ": " << q.status().message();
    EXPECT_NE(q.status().message().find(why), std::string::npos)
        << text << ": " << q.status().message();
  }
}

}  // namespace
}  // namespace datasite::dp
