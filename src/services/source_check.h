// SourceCheck: refuses Python source whose display would differ from what Python runs, so that
// what a reviewer approves is what runs.
//
// Python reads identifiers after Unicode NFKC normalization: `def 𝗆𝖾𝖺𝗇_𝖺𝗀𝖾():` defines `mean_age`
// and replaces an honest `def mean_age` above it, while a reader sees two different names. And
// invisible characters (zero-width, bidi controls, Hangul fillers, variation selectors) make two
// different texts look the same.
//
// Refused:
// - anywhere (code, strings, comments): control characters other than tab, newline and CR LF;
//   format characters (category Cf), default-ignorable code points (which include the Hangul
//   fillers U+115F, U+1160, U+3164, U+FFA0, zero-width characters and variation selectors), and the
//   line and paragraph separators. Strings that need one can write it as an escape ("\u200b").
// - in code (outside comments and string literals; f-strings count as code, since their
//   replacement fields are expressions): any character that NFKC changes. Comments and plain
//   string literals may keep them: Python does not fold them, so they are shown as they run, and
//   text such as "µ", "m²" or full-width CJK punctuation is common there.
// - in code: names in more than one script (Common and Inherited letters go with any). Keywords
//   are Latin, so names must be Latin letters, digits and underscores: a Cyrillic "с" in `_сlean`
//   beside `_clean` reads as the same name and is another.
// - lines over 400 characters: a display may cut them, and code pushed far right would run unseen.
#ifndef DATASITE_SERVICES_SOURCE_CHECK_H_
#define DATASITE_SERVICES_SOURCE_CHECK_H_

#include <string>
#include <string_view>

#include "core/status.h"

namespace datasite::services {

// Ok, or kInvalidArgument naming the first refused character: its line and column (1-based, in
// characters), code point and Unicode name, and for a folded identifier what Python reads it as.
// `source` must be valid UTF-8 (JSON strings are).
Status CheckSourceShownAsRun(std::string_view source);

// How many lines of `source` start (unindented) with "def NAME(" or "async def NAME(".
int CountTopLevelDefinitions(std::string_view source, std::string_view name);
// The line (1-based) of the first such definition; 0 when there is none. The sandbox runs the
// function only if it is the one defined there (nothing later rebinds the name).
int TopLevelDefinitionLine(std::string_view source, std::string_view name);

}  // namespace datasite::services

#endif  // DATASITE_SERVICES_SOURCE_CHECK_H_
