#include "services/output_checks.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace datasite::services {
namespace {

using nlohmann::json;

OutputRules Rules(const json& j) {
  auto r = ParseOutputRules(j);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : OutputRules{};
}

// The smallest sidecar of a DataFrame result with these columns (their dtypes) and a RangeIndex.
std::string FrameMeta(const std::vector<std::pair<std::string, std::string>>& columns) {
  json cols = json::array();
  for (const auto& [name, dtype] : columns) cols.push_back({{"name", name}, {"dtype", dtype}});
  return json{{"datasite", "pandas/1"},
              {"kind", "frame"},
              {"index", {{"range", {0, 1, 1}}, {"name", nullptr}}},
              {"columns", cols}}
      .dump();
}

InputTable People() {
  InputTable t;
  t.name = "census/people";
  t.columns = {"name", "age", "city"};
  t.cells = {{"ann", "31", "Oslo"},
             {"bob", "42", "Rome"},
             {"cyd", "57", "Oslo"},
             {"dee", "64", "Lima"},
             {"eve", "23", "Rome"}};
  t.rows = 5;
  return t;
}

TEST(OutputChecksTest, RulesAreReadStrictlyAndWrittenBack) {
  OutputRules r = Rules({{"min_cell_count", 10},
                         {"small_cells", "hold"},
                         {"round_to", 5},
                         {"no_row_level", true},
                         {"max_result_bytes", 1000}});
  EXPECT_EQ(r.min_cell_count, 10);
  EXPECT_TRUE(r.hold_small_cells);
  EXPECT_EQ(OutputRulesJson(r)["small_cells"], "hold");
  EXPECT_FALSE(Rules(json::object()).any());
  for (const json& bad :
       {json{{"min_cell_count", 1}}, json{{"min_cell_count", 2.5}}, json{{"round_to", "5"}},
        json{{"max_result_bytes", 0}}, json{{"small_cells", "drop"}, {"min_cell_count", 3}},
        json{{"small_cells", "hold"}}, json{{"no_row_level", 1}}, json{{"k_anonymity", 5}},
        json::array()}) {
    EXPECT_FALSE(ParseOutputRules(bad).ok()) << bad.dump();
  }
}

TEST(OutputChecksTest, TheStrictestOfTwoRuleSetsWins) {
  OutputRules a = Rules({{"min_cell_count", 5}, {"max_result_bytes", 100}});
  OutputRules b = Rules({{"min_cell_count", 10},
                         {"small_cells", "hold"},
                         {"round_to", 3},
                         {"max_result_bytes", 1000},
                         {"no_row_level", true}});
  OutputRules s = Strictest(a, b);
  EXPECT_EQ(s.min_cell_count, 10);
  EXPECT_TRUE(s.hold_small_cells);
  EXPECT_EQ(s.round_to, 3);
  EXPECT_EQ(s.max_result_bytes, 100);
  EXPECT_TRUE(s.no_row_level);
}

TEST(OutputChecksTest, SmallCountsInJsonAreSuppressedOrHeldAndZerosKept) {
  const std::string result = R"({"Oslo":2,"Rome":12,"Lima":0,"mean":2.5,"label":"x"})";
  Verdict v = CheckOutput(Rules({{"min_cell_count", 10}}), "json", result, "", 0, {});
  EXPECT_TRUE(v.held.empty());
  ASSERT_TRUE(v.result);
  EXPECT_EQ(json::parse(*v.result),
            json::parse(R"({"Oslo":null,"Rome":12,"Lima":0,"mean":2.5,"label":"x"})"));
  Verdict held = CheckOutput(Rules({{"min_cell_count", 10}, {"small_cells", "hold"}}), "json",
                             result, "", 0, {});
  EXPECT_EQ(held.held, "min_cell_count: a count below 10");
  EXPECT_FALSE(held.result);
  // The held reason names the rule, never a value.
  EXPECT_EQ(held.held.find('2'), std::string::npos);
  // Nothing small: passes untouched.
  Verdict clean = CheckOutput(Rules({{"min_cell_count", 10}}), "json", "[12, 40]", "", 0, {});
  EXPECT_TRUE(clean.held.empty());
  EXPECT_FALSE(clean.result);
}

TEST(OutputChecksTest, CountsAreRoundedAfterSuppression) {
  Verdict v = CheckOutput(Rules({{"min_cell_count", 3}, {"round_to", 5}}), "json",
                          "[1, 3, 12, 13, -7]", "", 0, {});
  ASSERT_TRUE(v.result);
  EXPECT_EQ(json::parse(*v.result), json::parse("[null, 5, 10, 15, -5]"));
}

TEST(OutputChecksTest, CsvCountsFollowTheSidecarAndSuppressedCellsBecomeNullable) {
  // A groupby().size(): the index level (ages, integers too) is a label, the values are counts.
  const std::string csv = "age,count\r\n31,2\r\n42,11\r\n";
  const std::string meta = json{{"datasite", "pandas/1"},
                                {"kind", "series"},
                                {"name", nullptr},
                                {"index", {{"levels", {{{"name", "age"}, {"dtype", "int64"}}}}}},
                                {"columns", {{{"name", "count"}, {"dtype", "int64"}}}}}
                               .dump();
  Verdict v = CheckOutput(Rules({{"min_cell_count", 5}}), "csv", csv, meta, 0, {});
  EXPECT_TRUE(v.held.empty()) << v.held;
  ASSERT_TRUE(v.result);
  EXPECT_EQ(*v.result, "age,count\r\n31,\r\n42,11\r\n");
  ASSERT_TRUE(v.meta);
  json m = json::parse(*v.meta);
  EXPECT_EQ(m["columns"][0]["dtype"], "Int64");
  EXPECT_EQ(m["columns"][0]["missing"][""], "NA");
  EXPECT_EQ(m["index"]["levels"][0]["dtype"], "int64");  // labels untouched
  // A float column's whole numbers are counts too (written as floats); other floats are not.
  Verdict floats =
      CheckOutput(Rules({{"round_to", 10}}), "csv", "k,n,m\n1,14,14.5\n",
                  FrameMeta({{"k", "int64"}, {"n", "float64"}, {"m", "float64"}}), 0, {});
  ASSERT_TRUE(floats.result);
  EXPECT_EQ(*floats.result, "k,n,m\r\n0,10.0,14.5\r\n");
  // A CSV without its sidecar was not written by the runner: held.
  EXPECT_EQ(CheckOutput(Rules({{"round_to", 10}}), "csv", "k,n\n1,14\n", "", 0, {}).held,
            "format: a CSV result without a typed sidecar the rules can read");
}

TEST(OutputChecksTest, ARowLevelResultIsHeld) {
  const OutputRules rules = Rules({{"no_row_level", true}});
  // As many rows as the input.
  Verdict all = CheckOutput(rules, "json", "[1, 2, 3, 4, 5]", "", 0, {People()});
  EXPECT_EQ(all.held,
            "no_row_level: the result has as many rows as the input 'census/people' or more");
  // One row copied, on the columns it shares with the input (31 and 31.0 are the same).
  Verdict copied =
      CheckOutput(rules, "json", R"([{"age": 31.0, "name": "ann"}])", "", 0, {People()});
  EXPECT_EQ(copied.held,
            "no_row_level: a row of the result equals a row of the input 'census/people' on its "
            "columns age, name");
  Verdict csv = CheckOutput(rules, "csv", "city,age\r\nRome,42\r\n",
                            FrameMeta({{"city", "object"}, {"age", "int64"}}), 0, {People()});
  EXPECT_NE(csv.held.find("a row of the result equals"), std::string::npos);
  // An aggregate passes.
  Verdict mean = CheckOutput(rules, "json", R"({"Oslo": 44.0, "Rome": 32.5})", "", 0, {People()});
  EXPECT_TRUE(mean.held.empty()) << mean.held;
  // One shared column is not enough to call a row copied (a city is not a person).
  Verdict city = CheckOutput(rules, "json", R"([{"city": "Oslo", "n": 2}])", "", 0, {People()});
  EXPECT_TRUE(city.held.empty()) << city.held;
  // Values of a column copied out, fewer than the input's rows and no whole row: held, whether
  // as values, keys or CSV cells.
  for (const auto& [format, result] : std::vector<std::pair<std::string, std::string>>{
           {"json", R"(["ann", "bob"])"}, {"json", R"({"eve": 1})"}, {"csv", "who\r\ncyd\r\n"}}) {
    Verdict names =
        CheckOutput(rules, format, result, format == "csv" ? FrameMeta({{"who", "object"}}) : "", 0,
                    {People()});
    EXPECT_EQ(names.held,
              "no_row_level: the result holds a value that fewer than 2 rows of the input "
              "'census/people' hold")
        << result;
  }
  // A label two rows share passes (a group), unless the cell minimum is higher.
  EXPECT_TRUE(
      CheckOutput(rules, "json", R"({"Oslo": 2, "Rome": 2})", "", 0, {People()}).held.empty());
  OutputRules strict = Rules({{"no_row_level", true}, {"min_cell_count", 3}});
  EXPECT_NE(CheckOutput(strict, "json", R"({"Oslo": 2})", "", 0, {People()}).held, "");
  // An input the rule can't read holds the result.
  InputTable unread;
  unread.name = "census/scan";
  EXPECT_NE(CheckOutput(rules, "json", "1", "", 0, {unread}).held.find("can't be compared"),
            std::string::npos);
}

// Found by a cold attack on the checks: what each of these let through or did.
TEST(OutputChecksTest, WhatACraftedResultTriedIsHeldOrCounted) {
  const OutputRules all = Rules({{"min_cell_count", 5}, {"round_to", 5}, {"no_row_level", true}});
  // A document nested past the checker's depth is held unread (it crashed the server).
  const std::string deep = std::string(100'000, '[') + std::string(100'000, ']');
  EXPECT_EQ(CheckOutput(all, "json", deep, "", 0, {People()}).held.rfind("format", 0), 0u);
  // A quote inside a field is a character, as pandas reads it, so the rows are seen as rows.
  const std::string people =
      "q,name,age,city\r\nx\"1,ann,31,Oslo\r\n2,bob,42,Rome\r\n3,cyd,57,Oslo\r\n"
      "4,dee,64,Lima\r\n5,eve,23,Rome\"y\r\n";
  const std::string meta =
      FrameMeta({{"q", "object"}, {"name", "object"}, {"age", "int64"}, {"city", "object"}});
  EXPECT_EQ(CheckOutput(all, "csv", people, meta, 0, {People()}).held.rfind("no_row_level", 0), 0u);
  // Text after a closing quote is read differently by different readers: held.
  EXPECT_EQ(CheckOutput(all, "csv", "a\r\n\"x\"y\r\n", FrameMeta({{"a", "object"}}), 0, {})
                .held.rfind("format", 0),
            0u);
  // The sidecar's labels are checked too: categories naming people.
  json cats = json::parse(FrameMeta({{"v", "category"}}));
  cats["columns"][0]["categories"] = {{"dtype", "object"}, {"values", {"flu", "ann", "bob"}}};
  EXPECT_EQ(CheckOutput(all, "csv", "v\r\nflu\r\n", cats.dump(), 0, {People()})
                .held.rfind("no_row_level", 0),
            0u);
  // And count against the size limit.
  EXPECT_EQ(CheckOutput(Rules({{"max_result_bytes", 10}}), "csv", "v\r\n1\r\n",
                        FrameMeta({{"v", "int64"}}), 0, {})
                .held.rfind("max_result_bytes", 0),
            0u);
  // A count written negative is a count.
  Verdict negative = CheckOutput(Rules({{"min_cell_count", 5}}), "json", "[-2, -1, -8]", "", 0, {});
  ASSERT_TRUE(negative.result);
  EXPECT_EQ(json::parse(*negative.result), json::parse("[null, null, -8]"));
  // Rounding near the largest integer does not overflow.
  Verdict big = CheckOutput(Rules({{"round_to", 5}}), "json", "[9223372036854775807]", "", 0, {});
  ASSERT_TRUE(big.result);
  EXPECT_EQ(json::parse(*big.result)[0].get<int64_t>(), 9223372036854775805);
  // Numbers no rule reads exactly are held.
  for (const char* n : {"[18446744073709551615]", "[100000000000000000002]", "[1e300]"}) {
    EXPECT_EQ(CheckOutput(Rules({{"round_to", 5}}), "json", n, "", 0, {}).held.rfind("format", 0),
              0u)
        << n;
  }
  EXPECT_EQ(CheckOutput(Rules({{"round_to", 5}}), "csv", "v\r\n100000000000000000002\r\n",
                        FrameMeta({{"v", "int64"}}), 0, {})
                .held.rfind("format", 0),
            0u);
  // A whole value of a float column is a value, not a count: one person's salary is held.
  InputTable pay;
  pay.name = "hr/pay";
  pay.columns = {"salary"};
  pay.cells = {{"69023.0"}, {"51000.5"}, {"51000.5"}};
  pay.rows = 3;
  EXPECT_EQ(CheckOutput(Rules({{"no_row_level", true}}), "json", "69023.0", "", 0, {pay})
                .held.rfind("no_row_level", 0),
            0u);
}

// Found by a cold review: numbers written in forms pandas reads and the rules would not, a
// sidecar column that is not an object (nlohmann's value() threw), records with other keys.
TEST(OutputChecksTest, WhatACraftedSidecarOrCellTriedIsHeld) {
  const OutputRules counts = Rules({{"min_cell_count", 5}});
  for (const char* cell : {" 1", "+1", "1_0", "\xef\xbc\x91", "01"}) {
    const std::string csv = std::string("n\r\n") + cell + "\r\n";
    EXPECT_EQ(
        CheckOutput(counts, "csv", csv, FrameMeta({{"n", "int64"}}), 0, {}).held.rfind("format", 0),
        0u)
        << cell;
  }
  for (const char* cell : {" 69023.0", "+1.5", "1_0.5"}) {
    const std::string csv = std::string("x\r\n") + cell + "\r\n";
    EXPECT_EQ(CheckOutput(counts, "csv", csv, FrameMeta({{"x", "float64"}}), 0, {})
                  .held.rfind("format", 0),
              0u)
        << cell;
  }
  // The runner's own forms pass: an empty NaN, inf, a column's missing token.
  json meta = json::parse(FrameMeta({{"x", "float64"}, {"n", "Int64"}}));
  meta["columns"][1]["missing"] = {{"<NA>", "NA"}};
  EXPECT_TRUE(
      CheckOutput(counts, "csv", "x,n\r\n,<NA>\r\ninf,7\r\n1.5e-07,12\r\n", meta.dump(), 0, {})
          .held.empty());
  for (const char* bad :
       {R"({"datasite":"pandas/1","kind":"frame","columns":[1]})",
        R"({"datasite":"pandas/1","kind":"frame","columns":[{"name":"n","dtype":3}]})",
        R"({"datasite":"pandas/1","kind":"frame","index":"x","columns":[]})"}) {
    EXPECT_EQ(CheckOutput(counts, "csv", "n\r\n1\r\n", bad, 0, {}).held.rfind("format", 0), 0u)
        << bad;
  }
  // A record whose keys the first record lacks still has its row compared.
  EXPECT_EQ(CheckOutput(Rules({{"no_row_level", true}}), "json",
                        R"([{}, {"name": "ann", "age": 31}])", "", 0, {People()})
                .held.rfind("no_row_level", 0),
            0u);
}

// Found by a second cold attack (F4): `.str.title()` turned "dee" into "Dee", which the rare-value
// check read as another value. Case and padding are no disguise.
TEST(OutputChecksTest, ARareValueInAnotherCaseOrPaddedIsStillRare) {
  const OutputRules rules = Rules({{"no_row_level", true}});
  InputTable people = People();
  people.cells.push_back({"\xc3\x89lodie", "70", "Oslo"});  // Élodie
  people.rows = 6;
  for (const char* result : {R"({"senior": ["Dee"]})", R"(["DEE"])", R"({" Eve\n": 2})",
                             R"(["\u00c9LODIE"])", R"(["\u00e9lodie"])"}) {
    EXPECT_EQ(CheckOutput(rules, "json", result, "", 0, {people}).held.rfind("no_row_level", 0), 0u)
        << result;
  }
  EXPECT_EQ(CheckOutput(rules, "csv", "who\r\nCyd\r\n", FrameMeta({{"who", "object"}}), 0, {people})
                .held.rfind("no_row_level", 0),
            0u);
  // A row copied in capitals is a row copied.
  EXPECT_NE(CheckOutput(rules, "json", R"([{"city": "LIMA", "age": 64}])", "", 0, {people})
                .held.find("a row of the result equals"),
            std::string::npos);
  // A value many rows share passes in any case.
  EXPECT_TRUE(
      CheckOutput(rules, "json", R"({"OSLO": 3, "rome": 2})", "", 0, {people}).held.empty());
}

// Found by a second cold attack (F3): `groupby([a, b]).size().unstack()` and
// `pivot_table(aggfunc="count")` write counts as floats (a missing combination makes the column
// float64), and `.astype(float)` does too: {"hiv": 1.0} passed min_cell_count.
TEST(OutputChecksTest, AWholeFloatIsACount) {
  const OutputRules k3 = Rules({{"min_cell_count", 3}});
  Verdict v = CheckOutput(k3, "json", R"({"flu": 5.0, "hiv": 1.0, "neg": -2.0, "mean": 1.5,
                                        "zero": 0.0, "n": 1})",
                          "", 0, {});
  EXPECT_TRUE(v.held.empty()) << v.held;
  ASSERT_TRUE(v.result);
  EXPECT_EQ(json::parse(*v.result), json::parse(R"({"flu": 5.0, "hiv": null, "neg": null,
                                                    "mean": 1.5, "zero": 0.0, "n": null})"));
  EXPECT_EQ(CheckOutput(Rules({{"min_cell_count", 3}, {"small_cells", "hold"}}), "json",
                        R"({"hiv": 1.0})", "", 0, {})
                .held,
            "min_cell_count: a count below 3");
  Verdict rounded = CheckOutput(Rules({{"round_to", 5}}), "json", R"([13.0, 2.5, 12])", "", 0, {});
  ASSERT_TRUE(rounded.result);
  const json r = json::parse(*rounded.result);
  EXPECT_EQ(r, json::parse("[15.0, 2.5, 10]"));
  EXPECT_TRUE(r[0].is_number_float());  // still a float
  // The attack's cross-table: a numpy float column's missing cell is empty (NaN), its sidecar
  // untouched (a numpy dtype takes no missing tokens).
  const std::string meta =
      json{{"datasite", "pandas/1"},
           {"kind", "frame"},
           {"index", {{"levels", {{{"name", "dept"}, {"dtype", "object"}}}}}},
           {"columns",
            {{{"name", "flu"}, {"dtype", "float64"}}, {{"name", "hiv"}, {"dtype", "float64"}}}}}
          .dump();
  Verdict csv = CheckOutput(k3, "csv", "dept,flu,hiv\r\neng,1.0,1.0\r\nops,4.0,\r\n", meta, 0, {});
  EXPECT_TRUE(csv.held.empty()) << csv.held;
  ASSERT_TRUE(csv.result);
  EXPECT_EQ(*csv.result, "dept,flu,hiv\r\neng,,\r\nops,4.0,\r\n");
  ASSERT_TRUE(csv.meta);
  EXPECT_EQ(json::parse(*csv.meta), json::parse(meta));
  EXPECT_EQ(CheckOutput(Rules({{"min_cell_count", 3}, {"small_cells", "hold"}}), "csv",
                        "dept,flu,hiv\r\neng,1.0,1.0\r\nops,4.0,\r\n", meta, 0, {})
                .held,
            "min_cell_count: a count below 3");
  // A nullable Float64 column takes a missing token; a mean (not whole) is kept; rounding writes
  // a float.
  Verdict masked = CheckOutput(Rules({{"min_cell_count", 3}, {"round_to", 5}}), "csv",
                               "n,m\r\n2.0,2.5\r\n13.0,1.0\r\nnan,inf\r\n",
                               FrameMeta({{"n", "Float64"}, {"m", "float64"}}), 0, {});
  EXPECT_TRUE(masked.held.empty()) << masked.held;
  ASSERT_TRUE(masked.result && masked.meta);
  EXPECT_EQ(*masked.result, "n,m\r\n,2.5\r\n15.0,\r\nnan,inf\r\n");
  EXPECT_EQ(json::parse(*masked.meta)["columns"][0]["missing"][""], "NA");
  EXPECT_FALSE(json::parse(*masked.meta)["columns"][1].contains("missing"));
}

// Found by a second cold attack (F2): a whole number in the data was never a rare value, so a
// patient id or an age used as a key or a label passed: `groupby("pid").size().to_dict()` gave
// {"1004": null}. Counts (integer value cells) stay counts.
TEST(OutputChecksTest, AWholeNumberUsedAsALabelIsARareValue) {
  const OutputRules rules = Rules({{"no_row_level", true}, {"min_cell_count", 2}});
  for (const char* result :
       {R"({"64": null})", R"({"x": {"64": 3}})", R"(["64"])", R"([{"64": 3}])"}) {
    EXPECT_EQ(CheckOutput(rules, "json", result, "", 0, {People()}).held.rfind("no_row_level", 0),
              0u)
        << result;
  }
  // An index level (groupby("age").size()) and a column name.
  const std::string by_age =
      json{{"datasite", "pandas/1"},
           {"kind", "series"},
           {"name", nullptr},
           {"index", {{"levels", {{{"name", "age"}, {"dtype", "int64"}}}}}},
           {"columns", {{{"name", nullptr}, {"dtype", "Int64"}, {"missing", {{"", "NA"}}}}}}}
          .dump();
  EXPECT_EQ(CheckOutput(rules, "csv", "age,value\r\n64,\r\n", by_age, 0, {People()})
                .held.rfind("no_row_level", 0),
            0u);
  EXPECT_EQ(CheckOutput(rules, "csv", "64\r\n3\r\n", FrameMeta({{"64", "int64"}}), 0, {People()})
                .held.rfind("no_row_level", 0),
            0u);
  // A label inside a tuple column name (a pivot's MultiIndex columns), read from the sidecar.
  json tuple = json::parse(FrameMeta({{"n", "int64"}}));
  tuple["columns"][0]["name"] = {{"tuple", {"n", 64}}};
  EXPECT_EQ(CheckOutput(rules, "csv", "n_x\r\n3\r\n", tuple.dump(), 0, {People()})
                .held.rfind("no_row_level", 0),
            0u);
  // A count is a count, whatever ages the data holds; a label many rows share passes.
  EXPECT_TRUE(
      CheckOutput(rules, "json", R"({"Oslo": 64, "n": [31, 42]})", "", 0, {People()}).held.empty());
  EXPECT_TRUE(CheckOutput(rules, "csv", "n\r\n64\r\n", FrameMeta({{"n", "int64"}}), 0, {People()})
                  .held.empty());
  InputTable ages = People();
  for (auto& row : ages.cells) row[1] = "40";
  EXPECT_TRUE(CheckOutput(rules, "json", R"({"40": 5})", "", 0, {ages}).held.empty());
}

// Found by a second cold attack (F1): an object column of mixed values goes out as JSON text per
// cell ("encoding": "json"); its cells were compared as raw text ("\"dee\"" is not dee) and never
// counted, so describe() of a filtered frame showed one person's name and counts of 1, and a
// whole record in one cell passed no_row_level. Decoded cells get the JSON results' checks.
TEST(OutputChecksTest, ValuesInsideJsonEncodedCellsAreChecked) {
  const OutputRules k2 = Rules({{"min_cell_count", 2}, {"no_row_level", true}});
  auto encoded = [](const std::vector<std::string>& columns, bool index_encoded = false) {
    json cols = json::array();
    for (const auto& name : columns) {
      cols.push_back({{"name", name}, {"dtype", "object"}, {"encoding", "json"}});
    }
    json level = {{"name", nullptr}, {"dtype", "object"}};
    if (index_encoded) level["encoding"] = "json";
    return json{{"datasite", "pandas/1"},
                {"kind", "frame"},
                {"index", {{"levels", {level}}}},
                {"columns", cols}}
        .dump();
  };
  // data[data.age > 60][["name", "city"]].describe()
  const std::string describe =
      ",name,city\r\ncount,1,1\r\nunique,1,1\r\ntop,\"\"\"dee\"\"\",\"\"\"Lima\"\"\"\r\n"
      "freq,1,1\r\n";
  EXPECT_EQ(CheckOutput(k2, "csv", describe, encoded({"name", "city"}), 0, {People()})
                .held.rfind("no_row_level", 0),
            0u);
  // A list of names, a record in a cell (its columns city and age are a row of the input), an
  // encoded index label.
  for (const auto& [csv, meta] : std::vector<std::pair<std::string, std::string>>{
           {",name\r\neng,\"[\"\"dee\"\"]\"\r\n", encoded({"name"})},
           {",v\r\nrows,\"[{\"\"city\"\": \"\"Oslo\"\", \"\"age\"\": 31}]\"\r\n", encoded({"v"})},
           {",v\r\n\"\"\"dee\"\"\",\"\"\"Oslo\"\"\"\r\n", encoded({"v"}, true)}}) {
    EXPECT_EQ(CheckOutput(k2, "csv", csv, meta, 0, {People()}).held.rfind("no_row_level", 0), 0u)
        << csv;
  }
  // Counts inside cells are counts: suppressed as JSON null, or held.
  const std::string counts =
      ",city\r\ncount,2\r\nunique,1\r\ntop,\"\"\"Oslo\"\"\"\r\nfreq,\"[1, 5.0]\"\r\n";
  Verdict v = CheckOutput(k2, "csv", counts, encoded({"city"}), 0, {People()});
  EXPECT_TRUE(v.held.empty()) << v.held;
  ASSERT_TRUE(v.result);
  EXPECT_EQ(*v.result,
            ",city\r\ncount,2\r\nunique,null\r\ntop,\"\"\"Oslo\"\"\"\r\nfreq,\"[null,5.0]\"\r\n");
  EXPECT_EQ(CheckOutput(Rules({{"min_cell_count", 2}, {"small_cells", "hold"}}), "csv", counts,
                        encoded({"city"}), 0, {})
                .held,
            "min_cell_count: a count below 2");
  // A cell the rules can't read holds the result; NaN and a missing token are read.
  for (const char* cell : {"{", "[NaN]", "\"\"\"a\"\" x\"", "100000000000000000002"}) {
    EXPECT_EQ(CheckOutput(k2, "csv", std::string(",v\r\na,") + cell + "\r\n", encoded({"v"}), 0, {})
                  .held.rfind("format", 0),
              0u)
        << cell;
  }
  json na = json::parse(encoded({"v"}));
  na["columns"][0]["missing"] = {{"<NA>", "NA"}};
  EXPECT_TRUE(CheckOutput(k2, "csv", ",v\r\na,NaN\r\nb,<NA>\r\nc,-Infinity\r\n", na.dump(), 0, {})
                  .held.empty());
  // A category column of mixed categories carries them as JSON text too.
  json cats = json::parse(FrameMeta({{"v", "category"}}));
  cats["columns"][0]["ordered"] = false;
  cats["columns"][0]["categories"] = {
      {"dtype", "object"}, {"encoding", "json"}, {"values", {"\"dee\"", "1"}}};
  EXPECT_EQ(CheckOutput(k2, "csv", "v\r\n1\r\n", cats.dump(), 0, {People()})
                .held.rfind("no_row_level", 0),
            0u);
  // An encoding the rules don't know is held.
  json other = json::parse(encoded({"v"}));
  other["columns"][0]["encoding"] = "pickle";
  EXPECT_EQ(CheckOutput(k2, "csv", ",v\r\na,1\r\n", other.dump(), 0, {}).held.rfind("format", 0),
            0u);
}

TEST(OutputChecksTest, SizePrintsAndUnreadableFormatsHold) {
  EXPECT_EQ(CheckOutput(Rules({{"max_result_bytes", 3}}), "json", "1234", "", 0, {}).held,
            "max_result_bytes: the result is larger than 3 bytes");
  EXPECT_EQ(CheckOutput(Rules({{"round_to", 5}}), "json", "12", "", 10, {})
                .held.rfind("printed_output", 0),
            0u);
  EXPECT_EQ(CheckOutput(Rules({{"round_to", 5}}), "npy", "....", "", 0, {}).held.rfind("format", 0),
            0u);
  EXPECT_EQ(
      CheckOutput(Rules({{"round_to", 5}}), "csv", "a\n\"open", FrameMeta({{"a", "int64"}}), 0, {})
          .held.rfind("format", 0),
      0u);
}

TEST(OutputChecksTest, AnInputTableIsReadFromItsCsv) {
  const std::string path = ::testing::TempDir() + "/people.csv";
  {
    std::ofstream f(path);
    f << "name,age\nann,31\n\"b,ob\",42\n";
  }
  auto t = ReadInputTable("d/a", path);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->rows, 2);
  EXPECT_EQ(t->columns, (std::vector<std::string>{"name", "age"}));
  EXPECT_EQ(t->cells[1][0], "b,ob");
  std::remove(path.c_str());
}

TEST(OutputChecksTest, AWholeNumberInAnObjectOrCategoryColumnIsHeld) {
  // The endpoint attack's F4: counts in an object or a categorical column passed as text.
  const OutputRules k5 = Rules({{"min_cell_count", 5}});
  for (const char* dtype : {"object", "category"}) {
    const std::string meta = FrameMeta({{"region", "object"}, {"n", dtype}});
    Verdict v = CheckOutput(k5, "csv", "region,n\r\nnorth,2\r\nsouth,40\r\n", meta, 0, {});
    EXPECT_EQ(v.held.rfind("format: a whole number in a column of objects or categories", 0), 0u)
        << dtype << ": " << v.held;
  }
  // Text stays text.
  EXPECT_TRUE(CheckOutput(k5, "csv", "region,n\r\nnorth,x2\r\n",
                          FrameMeta({{"region", "object"}, {"n", "object"}}), 0, {})
                  .held.empty());
}

}  // namespace
}  // namespace datasite::services
