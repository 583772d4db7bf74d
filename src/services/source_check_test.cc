#include "services/source_check.h"

#include <gtest/gtest.h>

namespace datasite::services {
namespace {

std::string Refusal(std::string_view source) {
  Status st = CheckSourceShownAsRun(source);
  EXPECT_FALSE(st.ok()) << source;
  if (!st.ok()) {
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  }
  return st.message();
}

void ExpectAccepted(std::string_view source) {
  Status st = CheckSourceShownAsRun(source);
  EXPECT_TRUE(st.ok()) << source << ": " << st.message();
}

TEST(SourceCheckTest, PlainPythonPasses) {
  ExpectAccepted("def mean_age(df):\n    return df['age'].mean()\n");
  ExpectAccepted("def f():\r\n\treturn 1\r\n");
  ExpectAccepted("");
}

// The bug this pins: a second function named in mathematical letters replaced the honest one.
TEST(SourceCheckTest, MathematicalLettersInANameAreRefused) {
  std::string msg = Refusal(
      "def mean_age(df):\n    return df.age.mean()\n\n"
      "def \xF0\x9D\x97\x86\xF0\x9D\x96\xBE\xF0\x9D\x96\xBA\xF0\x9D\x97\x87_age(df):\n"
      "    return df\n");
  EXPECT_NE(msg.find("line 4, column 5"), std::string::npos) << msg;
  EXPECT_NE(msg.find("U+1D5C6 MATHEMATICAL SANS-SERIF SMALL M"), std::string::npos) << msg;
  EXPECT_NE(msg.find("reads as 'mean_age'"), std::string::npos) << msg;
}

// Regression (an attack on these checks): a backslash before CR LF in a string. Python reads CR LF
// as LF, so the string runs on to the next line's quote; the lexer ended it at the line break and
// read the look-alike name after it as string text.
TEST(SourceCheckTest, ABackslashBeforeCrLfDoesNotEndAString) {
  std::string msg = Refusal(
      "def mean_age(data):\r\n    return 1\r\nx = \"abc\\\r\n\"; "
      "\xF0\x9D\x97\x86"
      "ean_age = lambda data: 'EVIL'\r\n");
  EXPECT_NE(msg.find("line 4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("reads as 'mean_age'"), std::string::npos) << msg;
}

TEST(SourceCheckTest, TheFirstTopLevelDefinitionsLineIsFound) {
  EXPECT_EQ(TopLevelDefinitionLine("import os\n\ndef f(x):\n    pass\ndef f(y):\n", "f"), 3);
  EXPECT_EQ(TopLevelDefinitionLine("x = 1\r\nasync def f():\r\n    pass\r\n", "f"), 2);
  EXPECT_EQ(TopLevelDefinitionLine("def g():\n    def f():\n        pass\n", "f"), 0);
}

// Regression (a third attack): a Cyrillic с in `_сlean` beside `_clean`; NFKC leaves both alone.
TEST(SourceCheckTest, NamesInTwoScriptsAreRefused) {
  std::string msg =
      Refusal("def _\xD1\x81lean(df):\n    return df\n\ndef _clean(df):\n    return df\n");
  EXPECT_NE(msg.find("line 1, column 6"), std::string::npos) << msg;
  EXPECT_NE(msg.find("U+0441"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Cyrillic"), std::string::npos) << msg;
  // Keywords are Latin, so a name in another script is always beside a Latin one; other scripts in
  // strings and comments pass.
  EXPECT_NE(Refusal("def \xD1\x81\xD1\x80\xD0\xB5\xD0\xB4(df):\n    return df\n").find("'def'"),
            std::string::npos);
  ExpectAccepted("def f(df):\n    return '\xD1\x81'  # \xD1\x81\n");
}

TEST(SourceCheckTest, OverlongLinesAreRefused) {
  std::string msg = Refusal("import os" + std::string(400, ' ') + "; evil = 1\n");
  EXPECT_NE(msg.find("line 1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("characters long"), std::string::npos) << msg;
  ExpectAccepted("x = 1  # " + std::string(380, 'a') + "\n");
}

TEST(SourceCheckTest, FullWidthAndLigaturesInCodeAreRefused) {
  // "ｘ = 1" (U+FF58) and "ﬁle = 1" (U+FB01).
  EXPECT_NE(Refusal("\xEF\xBD\x98 = 1\n").find("U+FF58"), std::string::npos);
  EXPECT_NE(Refusal("x = 1\n\xEF\xAC\x81le = 2\n").find("line 2, column 1"), std::string::npos);
}

TEST(SourceCheckTest, ACombiningSequenceNfkcComposesIsRefused) {
  // "e" + U+0301 is read as U+00E9.
  std::string msg = Refusal(
      "caf"
      "e\xCC\x81 = 1\n");
  EXPECT_NE(msg.find("U+0301"), std::string::npos) << msg;
}

TEST(SourceCheckTest, NfkcStableNonAsciiNamesPass) {
  ExpectAccepted("\xCF\x83 = 1\n");     // σ
  ExpectAccepted("caf\xC3\xA9 = 1\n");  // café, precomposed
}

TEST(SourceCheckTest, FoldingCharactersInCommentsAndPlainStringsPass) {
  ExpectAccepted("x = 1  # \xEF\xBC\x88note\xEF\xBC\x89 m\xC2\xB2\n");
  ExpectAccepted("unit = '\xC2\xB5g'\nlabel = \"\xEF\xBD\x98\"\n");
  ExpectAccepted("doc = '''\n\xF0\x9D\x97\x86\n'''\n");
  ExpectAccepted("s = r'\\' + 'x'  # \xEF\xBD\x98\n");
  ExpectAccepted("s = 'it\\'s \xEF\xBD\x98'\n");
}

TEST(SourceCheckTest, FStringsAreCode) {
  Refusal("s = f'{\xF0\x9D\x97\x86}'\n");
  Refusal("s = rf\"\xEF\xBD\x98\"\n");
  Refusal("s = f'{x:{\xEF\xBD\x98}}'\n");
}

TEST(SourceCheckTest, AStringNeverHidesCodeAfterIt) {
  // A '#' inside a string is not a comment; a quote inside a comment opens nothing.
  Refusal("s = '#'; \xEF\xBD\x98 = 1\n");
  Refusal("# it's\n\xEF\xBD\x98 = 1\n");
  // A single-quoted string ends at its line; an escaped quote does not end it.
  Refusal("s = 'abc\n\xEF\xBD\x98 = 1\n");
  Refusal("s = 'a\\'b'; \xEF\xBD\x98 = 1\n");
  // Python 3.12 nests the same quote inside a replacement field.
  Refusal("s = f\"{d[\"#\"]}\"; \xEF\xBD\x98 = 1\n");
  Refusal("s = f'{\"}\"}' ; \xEF\xBD\x98 = 1\n");
  // A longer name before a quote is no prefix: "elif" then a plain string.
  Refusal("if a: pass\nelif'{': \xEF\xBD\x98 = 1\n");
}

TEST(SourceCheckTest, DeeplyNestedFStringsAreRefused) {
  std::string s = "x = ";
  for (int i = 0; i < 200; ++i) s += "f'{";
  EXPECT_NE(Refusal(s).find("nest too deeply"), std::string::npos);
}

TEST(SourceCheckTest, InvisibleCharactersAreRefusedAnywhere) {
  for (const char* hidden : {"\xE3\x85\xA4",      // U+3164 HANGUL FILLER
                             "\xE1\x85\x9F",      // U+115F
                             "\xE1\x85\xA0",      // U+1160
                             "\xEF\xBE\xA0",      // U+FFA0
                             "\xE2\x80\x8B",      // U+200B ZERO WIDTH SPACE
                             "\xE2\x80\xAE",      // U+202E RIGHT-TO-LEFT OVERRIDE
                             "\xE2\x81\xA6",      // U+2066 LEFT-TO-RIGHT ISOLATE
                             "\xEF\xBB\xBF",      // U+FEFF
                             "\xC2\xAD",          // U+00AD SOFT HYPHEN
                             "\xEF\xB8\x80",      // U+FE00 VARIATION SELECTOR-1
                             "\xF3\xA0\x80\x81",  // U+E0001 LANGUAGE TAG
                             "\xE2\x80\xA8"}) {   // U+2028 LINE SEPARATOR
    for (const std::string& source :
         {"x" + std::string(hidden) + " = 1\n", "x = 1  # " + std::string(hidden) + "\n",
          "s = '" + std::string(hidden) + "'\n"}) {
      std::string msg = Refusal(source);
      EXPECT_NE(msg.find("line 1, column"), std::string::npos) << msg;
      EXPECT_NE(msg.find("invisible"), std::string::npos) << msg;
    }
  }
}

TEST(SourceCheckTest, TheHangulFillerAttackNamesItsPlace) {
  std::string msg = Refusal("def f():\n    \xE3\x85\xA4 = 1\n    return \xE3\x85\xA4\n");
  EXPECT_NE(msg.find("line 2, column 5: U+3164 HANGUL FILLER"), std::string::npos) << msg;
}

TEST(SourceCheckTest, ControlCharactersAreRefused) {
  EXPECT_NE(Refusal("x = 1\rdef f(): pass\n").find("U+000D"), std::string::npos);
  EXPECT_NE(Refusal("x = '\x1b[2K'\n").find("control"), std::string::npos);
  Refusal("x = 1\x0c\n");
  Refusal("x = '\xC2\x85'\n");  // U+0085, a C1 control
  Refusal(std::string("x = '\0'\n", 8));
}

TEST(SourceCheckTest, InvalidUtf8IsRefused) {
  EXPECT_NE(Refusal("x = '\xff'\n").find("UTF-8"), std::string::npos);
}

TEST(CountTopLevelDefinitionsTest, CountsUnindentedDefinitions) {
  EXPECT_EQ(CountTopLevelDefinitions("def f(x):\n  pass\n", "f"), 1);
  EXPECT_EQ(CountTopLevelDefinitions("async  def f (x): pass\n", "f"), 1);
  EXPECT_EQ(CountTopLevelDefinitions("def f(): 1\ndef f(): 2\n", "f"), 2);
  EXPECT_EQ(CountTopLevelDefinitions("  def f(): 1\ndef fg(): 2\n", "f"), 0);
}

}  // namespace
}  // namespace datasite::services
