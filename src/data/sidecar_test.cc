#include "data/sidecar.h"

#include <string>

#include <gtest/gtest.h>

namespace datasite::data {
namespace {

constexpr const char* kFrame =
    R"({"datasite":"pandas/1","kind":"frame","columns_names":[null],)"
    R"("index":{"levels":[{"dtype":"object","missing":{"":"None"},"name":"z"}]},)"
    R"("columns":[{"dtype":"datetime64[ns]","tz":"Europe/Paris","name":"d"},)"
    R"({"dtype":"category","ordered":true,"categories":{"dtype":"object","values":["b","a"]},)"
    R"("missing":{"":"NaN"},"name":"c"},{"dtype":"Int64","name":{"tuple":[1,{"float":"2.5"}]}}]})";

std::string With(std::string text, const std::string& from, const std::string& to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

TEST(SidecarTest, AcceptsTheClientsDocument) {
  auto doc = ParseSidecar(kFrame, 4);
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ((*doc)["kind"], "frame");
  EXPECT_TRUE(ParseSidecar(kFrame, std::nullopt).ok());
}

TEST(SidecarTest, AcceptsASeriesWithARangeIndex) {
  EXPECT_TRUE(ParseSidecar(R"({"datasite":"pandas/1","kind":"series","name":"v",)"
                           R"("index":{"range":[0,3,1],"name":null},)"
                           R"("columns":[{"dtype":"float64","name":"v"}]})",
                           1)
                  .ok());
}

TEST(SidecarTest, AcceptsAFrameWithoutColumnsWritingItsRange) {
  constexpr const char* kEmpty =
      R"({"datasite":"pandas/1","kind":"frame","columns_names":[null],"columns_dtype":"object",)"
      R"("index":{"range":[0,3,1],"name":"i","levels":[{"dtype":"int64","name":"i"}]},)"
      R"("columns":[]})";
  EXPECT_TRUE(ParseSidecar(kEmpty, 1).ok());
  EXPECT_FALSE(ParseSidecar(kEmpty, 0).ok());
  EXPECT_FALSE(ParseSidecar(With(kEmpty, R"("dtype":"int64")", R"("dtype":"object")"), 1).ok());
  EXPECT_FALSE(
      ParseSidecar(With(kEmpty, R"("columns_dtype":"object")", R"("columns_dtype":"x")"), 1).ok());
}

TEST(SidecarTest, RefusesAColumnCountOtherThanTheCsvs) {
  auto doc = ParseSidecar(kFrame, 5);
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("the CSV has 5"), std::string::npos);
}

TEST(SidecarTest, RefusesUnknownKeysAndDtypes) {
  EXPECT_FALSE(ParseSidecar(With(kFrame, R"("kind":"frame")", R"("kind":"frame","x":1)"), 4).ok());
  EXPECT_FALSE(ParseSidecar(With(kFrame, R"("Int64")", R"("O")"), 4).ok());
  EXPECT_FALSE(ParseSidecar(With(kFrame, R"("Int64")", R"("object","pickle":true)"), 4).ok());
  EXPECT_FALSE(ParseSidecar(With(kFrame, "pandas/1", "pandas/2"), 4).ok());
  EXPECT_FALSE(ParseSidecar(With(kFrame, R"("dtype":"object","missing")",
                                 R"("dtype":"object","encoding":"pickle","missing")"),
                            4)
                   .ok());
}

TEST(SidecarTest, RefusesBadShapes) {
  EXPECT_FALSE(ParseSidecar("[]", std::nullopt).ok());
  EXPECT_FALSE(ParseSidecar("{", std::nullopt).ok());
  EXPECT_FALSE(ParseSidecar(With(kFrame, R"("ordered":true)", R"("ordered":1)"), 4).ok());
  EXPECT_FALSE(ParseSidecar(With(kFrame, R"(["b","a"])", R"(["b",1])"), 4).ok());
  EXPECT_FALSE(ParseSidecar(With(kFrame, R"({"":"NaN"})", R"({"":"eval"})"), 4).ok());
  EXPECT_FALSE(
      ParseSidecar(With(kFrame, R"({"":"None"})", R"({"01234567890123456":"None"})"), 4).ok());
  // A category's categories can't be categories.
  EXPECT_FALSE(ParseSidecar(With(kFrame, R"("categories":{"dtype":"object")",
                                 R"("categories":{"dtype":"category")"),
                            4)
                   .ok());
  // A Series has exactly one column.
  EXPECT_FALSE(ParseSidecar(R"({"datasite":"pandas/1","kind":"series","name":"v",)"
                            R"("index":{"range":[0,3,1],"name":null},"columns":[]})",
                            0)
                   .ok());
  // A range with step 0.
  EXPECT_FALSE(ParseSidecar(R"({"datasite":"pandas/1","kind":"series","name":"v",)"
                            R"("index":{"range":[0,3,0],"name":null},)"
                            R"("columns":[{"dtype":"int8","name":"v"}]})",
                            1)
                   .ok());
}

TEST(SidecarTest, RefusesDeepLabelsAndLargeDocuments) {
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += R"({"tuple":[)";
  deep += "1";
  for (int i = 0; i < 40; ++i) deep += "]}";
  EXPECT_FALSE(ParseSidecar(With(kFrame, R"("name":"d")", R"("name":)" + deep), 4).ok());
  std::string big =
      With(kFrame, R"(["b","a"])", "[\"" + std::string(kMaxSidecarBytes, 'x') + "\"]");
  auto doc = ParseSidecar(big, 4);
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("longer than"), std::string::npos);
}

}  // namespace
}  // namespace datasite::data
