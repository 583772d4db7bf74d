#include "data/mock_params.h"

#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

namespace datasite::data {
namespace {

using nlohmann::json;

TEST(MockParamsTest, NullAndEmptyMeanDefaults) {
  for (const json& doc : {json(nullptr), json::object()}) {
    auto p = ParseMockParams(doc);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_FALSE(p->rows || p->seed || p->columns || p->paths || p->public_keys || p->values);
  }
}

TEST(MockParamsTest, ReadsAWholeDocument) {
  auto p = ParseMockParams(json::parse(R"({
      "rows": 500, "seed": 18446744073709551615,
      "columns": {"age": {"min": 0, "max": 120, "null_fraction": 0.1},
                  "sex": {"categories": ["F", "M"]}, "w": {"min": -1.5, "max": 2}},
      "paths": {"/*/n": {"length": 0}}, "public_keys": ["", "/*"],
      "values": {"min": 1, "max": 1}})"));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(*p->rows, 500u);
  EXPECT_EQ(*p->seed, 18446744073709551615ull);
  const MockValueParams& age = p->columns->at("age");
  ASSERT_TRUE(age.bounds);
  EXPECT_TRUE(age.bounds->integers);
  EXPECT_EQ(age.bounds->imax, 120);
  EXPECT_DOUBLE_EQ(age.null_fraction, 0.1);
  EXPECT_EQ(p->columns->at("sex").categories->size(), 2u);
  EXPECT_FALSE(p->columns->at("w").bounds->integers);
  EXPECT_DOUBLE_EQ(p->columns->at("w").bounds->min, -1.5);
  EXPECT_EQ(*p->paths->at("/*/n").length, 0u);
  EXPECT_EQ(*p->public_keys, (std::vector<std::string>{"", "/*"}));
  EXPECT_TRUE(p->values->bounds);
}

TEST(MockParamsTest, RefusesWithTheFieldNamed) {
  struct Case {
    const char* doc;
    const char* message;
  } cases[] = {
      {"[]", "the mock parameters must be a JSON object"},
      {R"({"row": 5})",
       "row: unknown field; expected one of rows, seed, columns, paths, public_keys, values"},
      {R"({"rows": 0})", "rows: must be a whole number from 1 to 1000000"},
      {R"({"rows": 1000001})", "rows: must be a whole number from 1 to 1000000"},
      {R"({"rows": 5.0})", "rows: must be a whole number from 1 to 1000000"},
      {R"({"rows": "5"})", "rows: must be a whole number from 1 to 1000000"},
      {R"({"seed": -1})", "seed: must be a whole number from 0 to 18446744073709551615"},
      {R"({"columns": []})", "columns: must be an object"},
      {R"({"columns": {"a": 1}})", "columns.a: must be an object"},
      {R"({"columns": {"a": {"length": 3}}})",
       "columns.a.length: unknown field; expected one of min, max, categories, null_fraction"},
      {R"({"columns": {"a": {"min": 1}}})", "columns.a: give both min and max, or neither"},
      {R"({"columns": {"a": {"min": 2, "max": 1}}})",
       "columns.a.min: must not be greater than max"},
      {R"({"columns": {"a": {"min": "0", "max": 1}}})", "columns.a.min: must be a finite number"},
      {R"({"columns": {"a": {"min": 0, "max": 1, "categories": [1]}}})",
       "columns.a.categories: give either categories or min and max, not both"},
      {R"({"columns": {"a": {"categories": []}}})",
       "columns.a.categories: must be a list of 1 to 10000 strings, numbers or booleans"},
      {R"({"columns": {"a": {"categories": ["x", null]}}})",
       "columns.a.categories[1]: must be a string, a number or a boolean"},
      {R"({"columns": {"a": {"categories": [["x"]]}}})",
       "columns.a.categories[0]: must be a string, a number or a boolean"},
      {R"({"columns": {"a": {"null_fraction": 1.5}}})",
       "columns.a.null_fraction: must be a number from 0 to 1"},
      {R"({"columns": {"a": {"null_fraction": -0.1}}})",
       "columns.a.null_fraction: must be a number from 0 to 1"},
      {R"({"paths": {"a/b": {}}})",
       "paths.a/b: 'a/b' is not a JSON Pointer: it must be \"\" (the top-level value) or start "
       "with '/'"},
      {R"({"paths": {"/a~2": {}}})",
       "paths./a~2: '~' in a path must be written ~0, and '/' inside a key ~1"},
      {R"({"paths": {"/a": {"length": -1}}})",
       "paths./a.length: must be a whole number from 0 to 1000000"},
      {R"({"public_keys": "/"})",
       "public_keys: must be a list of at most 10000 paths (JSON Pointers) of objects"},
      {R"({"public_keys": [1]})", "public_keys[0]: must be a string (a JSON Pointer)"},
      {R"({"public_keys": ["x"]})",
       "public_keys[0]: 'x' is not a JSON Pointer: it must be \"\" (the top-level value) or start "
       "with '/'"},
      {R"({"values": {"categories": [1]}})",
       "values.categories: unknown field; expected one of min, max, null_fraction"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.doc);
    auto p = ParseMockParams(json::parse(c.doc));
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(p.status().message(), c.message);
  }
}

TEST(MockParamsTest, RefusesTooLongCategories) {
  json doc = {
      {"columns", {{"a", {{"categories", {std::string(kMaxMockCategoryBytes + 1, 'x')}}}}}}};
  auto p = ParseMockParams(doc);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), "columns.a.categories[0]: is longer than 1000 bytes");
}

}  // namespace
}  // namespace datasite::data
