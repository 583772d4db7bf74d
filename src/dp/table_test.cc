#include "dp/table.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

namespace datasite::dp {
namespace {

std::string WriteCsv(const std::string& text) {
  static int n = 0;
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("dp_table_test_" + std::to_string(getpid()) + "_" + std::to_string(n++) + ".csv"))
          .string();
  std::ofstream(path) << text;
  return path;
}

DpPolicy Policy(const std::string& unit = "") {
  nlohmann::json d = {{"columns",
                       {{"age", {{"type", "int"}, {"lower", 0}, {"upper", 100}}},
                        {"sex", {{"type", "category"}, {"categories", {"F", "M"}}}}}},
                      {"budget", {{"per_scientist", {{"epsilon", 1}, {"delta", 1e-6}}}}}};
  if (!unit.empty()) {
    d["privacy_unit"] = unit;
    d["max_rows_per_unit"] = 1;
  }
  return *ParseDpPolicy(d);
}

TEST(DpTableTest, ReadsThePolicysColumnsMissingValuesAsMissing) {
  const std::string path =
      WriteCsv("id,age,sex,note\n1,30,F,x\n2,,M,y\n3,abc,\"F\",z\n4,41.5,,w\n");
  auto t = LoadCsvTable(path, Policy(), 1);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->rows, 4);
  const auto& age = t->numbers.at("age");
  EXPECT_EQ(age[0], 30);
  EXPECT_TRUE(std::isnan(age[1]));
  EXPECT_TRUE(std::isnan(age[2]));
  EXPECT_EQ(age[3], 41.5);
  const CategoryColumn& sex = t->categories.at("sex");
  EXPECT_EQ(sex.codes[3], -1);
  EXPECT_EQ(sex.values[static_cast<size_t>(sex.codes[0])], "F");
  EXPECT_EQ(sex.codes[0], sex.codes[2]);
  EXPECT_FALSE(t->numbers.contains("note"));  // not in the policy: never read
  EXPECT_TRUE(t->kept.empty());               // each row its own unit
  std::remove(path.c_str());
}

TEST(DpTableTest, BoundsEachUnitsRowsAndNamesMissingColumns) {
  const std::string path = WriteCsv("id,age,sex\na,1,F\na,2,F\nb,3,M\n");
  auto t = LoadCsvTable(path, Policy("id"), 7);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  ASSERT_EQ(t->kept.size(), 3u);
  EXPECT_EQ(t->kept[0] + t->kept[1], 1);  // one of a's two rows
  EXPECT_EQ(t->kept[2], 1);
  auto missing = MissingPolicyColumns(path, Policy("person"));
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, "person");
  auto refused = LoadCsvTable(path, Policy("person"), 7);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  std::remove(path.c_str());
}

TEST(DpTableTest, RefusesATwiceNamedColumnAndMoreKeysThanThePolicyAllows) {
  const std::string twice = WriteCsv("id,age,sex,age\n1,30,F,99\n");
  auto missing = MissingPolicyColumns(twice, Policy());
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(*missing, "age (twice)");
  EXPECT_EQ(LoadCsvTable(twice, Policy(), 1).status().code(), StatusCode::kFailedPrecondition);
  std::remove(twice.c_str());

  nlohmann::json d = {{"columns", {{"city", {{"type", "category"}, {"max_keys", 2}}}}},
                      {"budget", {{"per_scientist", {{"epsilon", 1}, {"delta", 1e-6}}}}}};
  DpPolicy two = *ParseDpPolicy(d);
  const std::string three = WriteCsv("city\nOslo\nLima\nPune\n");
  auto refused = LoadCsvTable(three, two, 1);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("max_keys"), std::string::npos);
  std::remove(three.c_str());
}

TEST(DpTableTest, AListedColumnHoldsOnlyThePolicysCategories) {
  // Regression (second cold attack): a listed column kept every distinct value of the data, and a
  // query's filter compared against each, so padding 'where' timed how many stray values there
  // were.
  const std::string path = WriteCsv("age,sex\n1,F\n2,X\n3,Y\n4,M\n5,F\n");
  auto t = LoadCsvTable(path, Policy(), 1);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  const CategoryColumn& sex = t->categories.at("sex");
  EXPECT_EQ(sex.values, (std::vector<std::string>{"F", "M"}));  // the policy's, in its order
  EXPECT_EQ(sex.codes, (std::vector<int32_t>{0, -1, -1, 1, 0}));
  std::remove(path.c_str());
}

TEST(DpTableTest, UnitIdsAreTrimmedAndBlankOnesNameNoUnit) {
  // Regression (second cold attack): " " was one shared unit of unrelated people.
  const std::string path = WriteCsv("id,age,sex\na,1,F\n\"a \",2,F\n \t,3,M\n  ,4,M\n");
  auto t = LoadCsvTable(path, Policy("id"), 7);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->kept[0] + t->kept[1], 1);  // "a" and "a " are one person, with one row kept
  EXPECT_EQ(t->kept[2], 0);
  EXPECT_EQ(t->kept[3], 0);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace datasite::dp
