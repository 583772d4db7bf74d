#include "core/markup.h"

#include <gtest/gtest.h>

namespace datasite {
namespace {

TEST(EscapeMarkupTest, EscapesWhatMarkupReadsAndKeepsTheRest) {
  EXPECT_EQ(EscapeMarkup("a<b>&\"c'd\xc3\xa9"), "a&lt;b&gt;&amp;&quot;c&#39;d\xc3\xa9");
  EXPECT_EQ(EscapeMarkup(""), "");
}

}  // namespace
}  // namespace datasite
