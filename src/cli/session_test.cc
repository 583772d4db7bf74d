#include "cli/session.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace datasite::cli {
namespace {

TEST(PrintableTest, PlainTextIsUnchanged) {
  EXPECT_EQ(Printable("def f(data):\treturn 1"), "def f(data):\treturn 1");
  EXPECT_EQ(Printable("caf\xc3\xa9 \xe6\x97\xa5"), "caf\xc3\xa9 \xe6\x97\xa5");
}

TEST(PrintableTest, ControlCharactersBecomeEscapes) {
  EXPECT_EQ(Printable("a\x1b[2Jb\rc\x7f"), "a\\x1b[2Jb\\x0dc\\x7f");
  EXPECT_EQ(Printable("one\ntwo"), "one\\x0atwo");
  EXPECT_EQ(Printable("one\ntwo", /*keep_newlines=*/true), "one\ntwo");
}

TEST(PrintableTest, InvisibleAndBidiCharactersBecomeEscapes) {
  // U+202E RIGHT-TO-LEFT OVERRIDE, U+2066 LEFT-TO-RIGHT ISOLATE, U+200B ZERO WIDTH SPACE, the BOM,
  // and a C1 control (U+009B, CSI).
  EXPECT_EQ(Printable("x\xe2\x80\xae y\xe2\x81\xa6 z\xe2\x80\x8b\xef\xbb\xbf\xc2\x9b"),
            "x\\u{202e} y\\u{2066} z\\u{200b}\\u{feff}\\u{009b}");
}

TEST(PrintableTest, BrokenUtf8IsKeptAsBytes) {
  EXPECT_EQ(Printable("\xe2\x80"), "\xe2\x80");
  EXPECT_EQ(Printable("\xff"), "\xff");
}

TEST(JsonFieldTest, WrongTypesReadAsEmpty) {
  nlohmann::json j = {{"name", 3}, {"size", "big"}, {"ok", "yes"}};
  EXPECT_EQ(Str(j, "name"), "");
  EXPECT_EQ(Int(j, "size", -1), -1);
  EXPECT_EQ(Str(j, "ok"), "yes");
  EXPECT_TRUE(Field(nlohmann::json::array(), "x").is_null());
}

}  // namespace
}  // namespace datasite::cli
