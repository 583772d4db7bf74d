#include "dp/engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <span>

#include "dp/accountant.h"
#include "dp/random_for_test.h"

namespace datasite::dp {
namespace {

using nlohmann::json;

// People: age (int 0..100), income (float 0..1e5), sex (F/M listed), city (unlisted), id (unit).
struct People {
  Table table;
  std::vector<std::string> ids;
  std::vector<double> age, income;
  std::vector<std::string> sex, city;
};

People MakePeople(int64_t n, int rows_per_person = 1) {
  People p;
  SeededRandomForTest r(7);
  CategoryColumn sex{{"F", "M", "X"}, {}};  // "X" is not a listed category
  CategoryColumn city{{"Paris", "Oslo", "Rare"}, {}};
  for (int64_t i = 0; i < n; ++i) {
    const double age = static_cast<double>(r.Next() % 101);
    const double income = static_cast<double>(r.Next() % 100'000);
    const int32_t s = static_cast<int32_t>(r.Next() % 2);
    const int32_t c = i == 0 ? 2 : static_cast<int32_t>(r.Next() % 2);  // one row in "Rare"
    for (int k = 0; k < rows_per_person; ++k) {
      p.ids.push_back("person-" + std::to_string(i));
      p.table.numbers["age"].push_back(age);
      p.table.numbers["income"].push_back(income);
      sex.codes.push_back(s);
      city.codes.push_back(c);
      p.age.push_back(age);
      p.income.push_back(income);
      p.sex.push_back(sex.values[static_cast<size_t>(s)]);
    }
  }
  p.table.rows = static_cast<int64_t>(p.ids.size());
  p.table.categories["sex"] = std::move(sex);
  p.table.categories["city"] = std::move(city);
  return p;
}

DpPolicy Policy(int64_t m = 1) {
  json d = {{"columns",
             {{"age", {{"type", "int"}, {"lower", 0}, {"upper", 100}}},
              {"income", {{"type", "float"}, {"lower", 0}, {"upper", 1e5}}},
              {"sex", {{"type", "category"}, {"categories", {"F", "M"}}}},
              {"city", {{"type", "category"}, {"categories", nullptr}}}}},
            {"budget", {{"per_scientist", {{"epsilon", 10}, {"delta", 1e-6}}}}}};
  if (m > 1) {
    d["privacy_unit"] = "id";
    d["max_rows_per_unit"] = m;
  }
  return *ParseDpPolicy(d);
}

Answer Ask(const Table& t, const DpPolicy& p, const json& request, uint64_t seed = 1) {
  auto q = ParseQuery(request, p);
  EXPECT_TRUE(q.ok()) << q.status().ToString();
  auto cost = CostOf(p, *q);
  EXPECT_TRUE(cost.ok()) << cost.status().ToString();
  SeededRandomForTest random(seed);
  auto a = RunQuery(t, p, *q, *cost, random);
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  return a.ok() ? *a : Answer{};
}

TEST(DpEngineTest, ACountIsTheTrueCountPlusNoiseOfTheStatedScale) {
  People people = MakePeople(10'000);
  DpPolicy p = Policy();
  Answer a = Ask(people.table, p, {{"query", "count"}, {"epsilon", 1}});
  ASSERT_EQ(a.estimates.size(), 1u);
  const Estimate& e = a.estimates[0];
  ASSERT_TRUE(e.noise_std.has_value());
  EXPECT_FALSE(e.group.has_value());
  EXPECT_LT(std::fabs(e.value - 10'000), 6 * *e.noise_std) << e.value << " sd " << *e.noise_std;
  EXPECT_GT(*e.noise_std, 0.5);  // epsilon 1 at delta 1e-6 is real noise
  // More epsilon, less noise; a larger max_rows_per_unit, more.
  Answer sharper = Ask(people.table, p, {{"query", "count"}, {"epsilon", 5}});
  EXPECT_LT(*sharper.estimates[0].noise_std, *e.noise_std);
  EXPECT_GE(a.delta_spent, 0);
  EXPECT_LT(a.delta_spent, 1e-8);
}

TEST(DpEngineTest, GroupsAreExactlyTheListedCategoriesWhateverTheData) {
  People people = MakePeople(5'000);
  DpPolicy p = Policy();
  Answer a = Ask(people.table, p,
                 {{"query", "mean"}, {"column", "age"}, {"epsilon", 5}, {"group_by", "sex"}});
  ASSERT_EQ(a.estimates.size(), 2u);  // F and M; never "X", a value the policy does not list
  EXPECT_EQ(a.estimates[0].group, "F");
  EXPECT_EQ(a.estimates[1].group, "M");
  for (const Estimate& e : a.estimates) {
    double sum = 0, n = 0;
    for (size_t i = 0; i < people.age.size(); ++i)
      if (people.sex[i] == *e.group) sum += people.age[i], ++n;
    EXPECT_NEAR(e.value, sum / n, 1.0) << *e.group;
    ASSERT_TRUE(e.noise_std.has_value());
  }
  // A filter keeping only F: M's group is still answered (from no rows: noise around nothing).
  Answer f =
      Ask(people.table, p,
          {{"query", "count"}, {"epsilon", 5}, {"where", {{"sex", "F"}}}, {"group_by", "sex"}});
  ASSERT_EQ(f.estimates.size(), 2u);
  EXPECT_LT(std::fabs(f.estimates[1].value), 6 * *f.estimates[1].noise_std);
}

TEST(DpEngineTest, SumsClampToTheBoundsAndVariancesAndQuantilesAreClose) {
  People people = MakePeople(20'000);
  people.table.numbers["income"][0] = 1e12;  // far above the bound: counts as 1e5
  DpPolicy p = Policy();
  double true_sum = 0, mean = 0;
  for (size_t i = 0; i < people.income.size(); ++i)
    true_sum += std::min(i == 0 ? 1e12 : people.income[i], 1e5);
  Answer s = Ask(people.table, p, {{"query", "sum"}, {"column", "income"}, {"epsilon", 5}});
  EXPECT_LT(std::fabs(s.estimates[0].value - true_sum), 6 * *s.estimates[0].noise_std);
  EXPECT_LT(*s.estimates[0].noise_std, 1e6);

  for (double a : people.age) mean += a;
  mean /= static_cast<double>(people.age.size());
  double var = 0;
  for (double a : people.age) var += (a - mean) * (a - mean);
  var /= static_cast<double>(people.age.size());
  Answer v = Ask(people.table, p, {{"query", "variance"}, {"column", "age"}, {"epsilon", 5}});
  EXPECT_NEAR(v.estimates[0].value, var, 0.05 * var);
  Answer q = Ask(
      people.table, p,
      {{"query", "quantile"}, {"column", "age"}, {"epsilon", 5}, {"quantiles", {0.25, 0.5, 0.75}}});
  ASSERT_EQ(q.estimates.size(), 3u);
  EXPECT_NEAR(q.estimates[0].value, 25, 2);
  EXPECT_NEAR(q.estimates[1].value, 50, 2);
  EXPECT_NEAR(q.estimates[2].value, 75, 2);
  EXPECT_EQ(q.estimates[1].quantile, 0.5);
  EXPECT_EQ(q.estimates[1].value, std::round(q.estimates[1].value));  // an int column
}

TEST(DpEngineTest, UnlistedKeysAreReleasedOnlyThroughPartitionSelection) {
  People people = MakePeople(5'000);
  DpPolicy p = Policy();
  // "Rare" has one row: a key only one person has must (almost) never come out.
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    Answer a =
        Ask(people.table, p,
            {{"query", "count"}, {"epsilon", 1}, {"delta", 1e-8}, {"group_by", "city"}}, seed);
    ASSERT_EQ(a.estimates.size(), 2u) << seed;
    for (const Estimate& e : a.estimates) EXPECT_NE(e.group, "Rare");
    EXPECT_GE(a.delta_spent, 1e-8);  // the query's delta is charged
  }
  Answer mean = Ask(people.table, p,
                    {{"query", "mean"},
                     {"column", "income"},
                     {"epsilon", 2},
                     {"delta", 1e-8},
                     {"group_by", "city"}});
  ASSERT_EQ(mean.estimates.size(), 2u);
}

TEST(DpEngineTest, ContributionBoundingKeepsAtMostMRowsPerUnitIndependentlyOfOthers) {
  People people = MakePeople(1'000, /*rows_per_person=*/5);
  BoundContributions(people.table, people.ids, 2, 99);
  std::map<std::string, int> kept;
  for (size_t i = 0; i < people.ids.size(); ++i) kept[people.ids[i]] += people.table.kept[i];
  for (const auto& [id, n] : kept) EXPECT_EQ(n, 2) << id;
  // Removing another unit's rows changes nothing about which rows this unit keeps.
  std::vector<std::string> fewer(people.ids.begin() + 5, people.ids.end());
  Table other;
  BoundContributions(other, fewer, 2, 99);
  for (size_t i = 0; i < fewer.size(); ++i) EXPECT_EQ(other.kept[i], people.table.kept[i + 5]) << i;
  // A different key keeps other rows (the choice is not the first rows in file order).
  Table keyed;
  BoundContributions(keyed, people.ids, 2, 100);
  EXPECT_NE(keyed.kept, people.table.kept);

  // The count's noise is scaled to 2 rows per unit, and counts only kept rows.
  DpPolicy p = Policy(2);
  Answer a = Ask(people.table, p, {{"query", "count"}, {"epsilon", 5}});
  EXPECT_LT(std::fabs(a.estimates[0].value - 2'000), 6 * *a.estimates[0].noise_std);
  Answer one = Ask(people.table, Policy(), {{"query", "count"}, {"epsilon", 5}});
  EXPECT_NEAR(*a.estimates[0].noise_std, 2 * *one.estimates[0].noise_std,
              0.01 * *a.estimates[0].noise_std);
}

// Counts the bytes drawn: the work a query does.
class CountingRandom final : public RandomBits {
 public:
  void Fill(std::span<uint8_t> out) override {
    bytes += out.size();
    inner.Fill(out);
  }
  SeededRandomForTest inner{3};
  size_t bytes = 0;
};

// A table of `n` rows in city "Oslo" or "Lima", one row in `rare` first when not empty.
Table Cities(int n, const std::string& rare) {
  Table t;
  CategoryColumn city;
  if (!rare.empty()) {
    city.values.push_back(rare);
    city.codes.push_back(0);
  }
  const int32_t base = static_cast<int32_t>(city.values.size());
  city.values.insert(city.values.end(), {"Oslo", "Lima"});
  for (int i = 0; i < n; ++i) city.codes.push_back(base + i % 2);
  t.rows = static_cast<int64_t>(city.codes.size());
  t.numbers["age"].assign(static_cast<size_t>(t.rows), 40);
  t.numbers["income"].assign(static_cast<size_t>(t.rows), 1000);
  t.categories["city"] = std::move(city);
  t.categories["sex"] = CategoryColumn{{"F"}, std::vector<int32_t>(static_cast<size_t>(t.rows), 0)};
  return t;
}

TEST(DpEngineTest, SelectedKeysComeOutSortedNotInTheOrderTheFileHasThem) {
  // Regression (cold attack): keys came out in the order they first appear in the file, so the
  // first released group was the first row's city.
  DpPolicy p = Policy();
  for (const std::string first : {"Zagreb", "Athens"}) {
    Table t = Cities(2000, "");
    t.categories["city"].values.insert(t.categories["city"].values.begin(), first);
    for (auto& code : t.categories["city"].codes) ++code;
    for (size_t i = 0; i < 600; ++i) t.categories["city"].codes[i] = 0;  // released too
    Answer a =
        Ask(t, p, {{"query", "count"}, {"epsilon", 1}, {"delta", 1e-7}, {"group_by", "city"}});
    std::vector<std::string> keys;
    for (const auto& e : a.estimates) keys.push_back(*e.group);
    ASSERT_EQ(keys.size(), 3u) << first;
    EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end())) << keys[0] << "," << keys[1];
  }
}

TEST(DpEngineTest, SelectionDoesTheSameWorkWhateverKeysTheDataHolds) {
  // Regression (cold attack): a query grouped by an unlisted column drew one sample per distinct
  // key (256 for a quantile), so its time told whether a one-person key was there (40/40).
  DpPolicy p = Policy();
  for (const char* kind : {"count", "quantile", "mean"}) {
    json request = {{"query", kind}, {"epsilon", 1}, {"delta", 1e-7}, {"group_by", "city"}};
    if (std::string(kind) != "count") request["column"] = "age";
    std::vector<size_t> bytes;
    for (const std::string rare : {"", "RareTown"}) {
      Table t = Cities(2000, rare);
      auto q = ParseQuery(request, p);
      ASSERT_TRUE(q.ok()) << q.status().ToString();
      CountingRandom random;
      auto a = RunQuery(t, p, *q, *CostOf(p, *q), random);
      ASSERT_TRUE(a.ok()) << a.status().ToString();
      ASSERT_EQ(a->estimates.size(), 2u) << kind;  // Oslo and Lima, never the rare key
      bytes.push_back(random.bytes);
    }
    EXPECT_EQ(bytes[0], bytes[1]) << kind;
  }
}

TEST(DpEngineTest, RowsNamingNoUnitAreLeftOut) {
  // Regression (cold attack): rows with an empty unit id were bounded as one unit, so adding one
  // such person moved others' kept rows (an L2 change of sqrt(2) m, not m).
  Table t;
  t.rows = 4;
  BoundContributions(t, {"a", "", "", "b"}, 1, 5);
  EXPECT_EQ(t.kept, (std::vector<uint8_t>{1, 0, 0, 1}));
}

TEST(DpEngineTest, CostGrowsWithEpsilon) {
  DpPolicy p = Policy();
  auto small = CostOf(p, *ParseQuery({{"query", "count"}, {"epsilon", 0.1}}, p));
  auto large = CostOf(p, *ParseQuery({{"query", "count"}, {"epsilon", 1}}, p));
  ASSERT_TRUE(small.ok() && large.ok());
  EXPECT_GT(large->rho_units, small->rho_units);
  EXPECT_GT(small->rho_units, 0);
  // The policy's budget is (10, 1e-6): a query at epsilon 10 alone spends all of its rho.
  auto all = CostOf(p, *ParseQuery({{"query", "count"}, {"epsilon", 10}}, p));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->rho_units, *RhoForEpsilonDelta(10, ConversionDelta(p)));
}

TEST(DpEngineTest, APolicyColumnTheTableLacksIsAFailedPrecondition) {
  People people = MakePeople(100);
  people.table.numbers.erase("income");
  DpPolicy p = Policy();
  auto q = *ParseQuery({{"query", "sum"}, {"column", "income"}, {"epsilon", 1}}, p);
  SeededRandomForTest random(1);
  auto a = RunQuery(people.table, p, q, *CostOf(p, q), random);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace datasite::dp
