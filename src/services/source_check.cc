#include "services/source_check.h"

#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/uscript.h>
#include <unicode/utf8.h>

#include <cstdio>
#include <limits>
#include <vector>

namespace datasite::services {
namespace {

// f-strings inside f-strings deeper than this are refused (Python stops at a few hundred).
constexpr int kMaxNesting = 64;

struct Range {
  size_t begin;
  size_t end;
};

// Line and column (1-based, in code points) of byte `offset`.
std::string Where(std::string_view s, size_t offset) {
  int line = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset; ++i) {
    if (s[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  int column = 1;
  for (size_t i = line_start; i < offset; ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++column;
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// "U+1D5C6 MATHEMATICAL SANS-SERIF SMALL M".
std::string Describe(UChar32 c) {
  char hex[16];
  std::snprintf(hex, sizeof(hex), "U+%04X", static_cast<unsigned>(c));
  char name[128];
  UErrorCode ec = U_ZERO_ERROR;
  int32_t n = u_charName(c, U_EXTENDED_CHAR_NAME, name, sizeof(name), &ec);
  std::string out = hex;
  if (U_SUCCESS(ec) && n > 0) out += " " + std::string(name, static_cast<size_t>(n));
  return out;
}

// Characters that change what a reader sees without being seen themselves.
bool IsHidden(UChar32 c) {
  const int8_t type = u_charType(c);
  return type == U_FORMAT_CHAR || type == U_LINE_SEPARATOR || type == U_PARAGRAPH_SEPARATOR ||
         u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT) || c == 0x115F || c == 0x1160 ||
         c == 0x3164 || c == 0xFFA0;
}

bool IsIdentifierByte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u >= 0x80 || u == '_' || (u >= '0' && u <= '9') || (u >= 'a' && u <= 'z') ||
         (u >= 'A' && u <= 'Z');
}

// Controls, invisible and format characters, anywhere.
Status CheckVisible(std::string_view s) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(s.data());
  const auto length = static_cast<int32_t>(s.size());
  for (int32_t i = 0; i < length;) {
    const int32_t at = i;
    UChar32 c;
    U8_NEXT(bytes, i, length, c);
    if (c < 0) return InvalidArgumentError(Where(s, at) + ": the source is not valid UTF-8");
    const bool control = c < 0x20 || c == 0x7F || u_charType(c) == U_CONTROL_CHAR;
    if (control) {
      if (c == '\t' || c == '\n' || (c == '\r' && i < length && s[i] == '\n')) continue;
      return InvalidArgumentError(Where(s, at) + ": " + Describe(c) +
                                  " is a control character, which displays hide or act on; "
                                  "remove it (in a string, write it as an escape)");
    }
    if (c >= 0x80 && IsHidden(c)) {
      return InvalidArgumentError(Where(s, at) + ": " + Describe(c) +
                                  " is invisible or changes how the text around it is shown, so "
                                  "a reviewer would not read what runs; remove it (in a string, "
                                  "write it as an escape)");
    }
  }
  return Status::Ok();
}

// Splits Python source into code and the rest (comments, plain string literals), as Python's
// tokenizer does. f-strings are code whole. Python 3.12 nesting (the same quote inside a
// replacement field) is followed, so a string never ends earlier than Python ends it.
class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}

  Result<std::vector<Range>> CodeRanges() {
    size_t code_start = 0;
    size_t i = 0;
    while (i < s_.size()) {
      const char c = s_[i];
      if (c == '#') {
        Code(code_start, i);
        i = LineEnd(i);
        code_start = i;
      } else if (c == '\'' || c == '"') {
        Code(code_start, i);
        const bool f = IsFString(i);
        size_t end;
        ASSIGN_OR_RETURN(end, String(i, f, 0));
        if (f) Code(i, end);
        i = end;
        code_start = i;
      } else {
        ++i;
      }
    }
    Code(code_start, s_.size());
    return std::move(code_);
  }

 private:
  void Code(size_t begin, size_t end) {
    if (end > begin) code_.push_back({begin, end});
  }

  size_t LineEnd(size_t i) const {
    size_t end = s_.find('\n', i);
    return end == std::string_view::npos ? s_.size() : end;
  }

  // Whether the quote at `i` opens an f-string: the name right before it is one of Python's
  // f-string prefixes (a longer name is a name followed by a plain string).
  bool IsFString(size_t i) const {
    size_t j = i;
    while (j > 0 && IsIdentifierByte(s_[j - 1])) --j;
    std::string prefix(s_.substr(j, i - j));
    for (char& ch : prefix) ch = static_cast<char>(ch | 0x20);
    return prefix == "f" || prefix == "fr" || prefix == "rf";
  }

  bool ClosesAt(size_t i, char quote, bool triple) const {
    if (s_[i] != quote) return false;
    return !triple || (i + 2 < s_.size() && s_[i + 1] == quote && s_[i + 2] == quote);
  }

  // The end (one past the closing quote) of the string literal whose opening quote is at `i`; the
  // end of its line when it is not closed there (Python refuses such a source).
  Result<size_t> String(size_t i, bool f, int depth) {
    if (depth > kMaxNesting) {
      return InvalidArgumentError(Where(s_, i) + ": f-strings nest too deeply");
    }
    const char quote = s_[i];
    const bool triple = i + 2 < s_.size() && s_[i + 1] == quote && s_[i + 2] == quote;
    const size_t width = triple ? 3 : 1;
    size_t p = i + width;
    while (p < s_.size()) {
      const char c = s_[p];
      if (c == '\\') {
        p += 2;
      } else if (ClosesAt(p, quote, triple)) {
        return p + width;
      } else if (c == '\n' && !triple) {
        return p;
      } else if (f && c == '{') {
        if (p + 1 < s_.size() && s_[p + 1] == '{') {
          p += 2;
        } else {
          ASSIGN_OR_RETURN(p, Field(p + 1, quote, triple, depth));
        }
      } else {
        ++p;
      }
    }
    return s_.size();
  }

  // A replacement field of an f-string from just after its '{'; returns the position after its
  // '}', or of the enclosing string's closing quote when the field is cut short.
  Result<size_t> Field(size_t p, char quote, bool triple, int depth) {
    int brackets = 0;
    while (p < s_.size()) {
      const char c = s_[p];
      if (c == '\'' || c == '"') {
        ASSIGN_OR_RETURN(p, String(p, IsFString(p), depth + 1));
      } else if (c == '#') {
        p = LineEnd(p);
      } else if (c == '(' || c == '[' || c == '{') {
        ++brackets;
        ++p;
      } else if (c == ')' || c == ']') {
        --brackets;
        ++p;
      } else if (c == '}') {
        if (brackets <= 0) return p + 1;
        --brackets;
        ++p;
      } else if (c == ':' && brackets <= 0) {
        return FormatSpec(p + 1, quote, triple, depth);
      } else {
        ++p;  // a newline too: Python 3.12 lets a field span lines
      }
    }
    return s_.size();
  }

  // A format spec (after ':'): literal text with nested fields, up to the field's '}'.
  Result<size_t> FormatSpec(size_t p, char quote, bool triple, int depth) {
    while (p < s_.size()) {
      const char c = s_[p];
      if (ClosesAt(p, quote, triple)) return p;
      if (c == '\\') {
        p += 2;
      } else if (c == '{') {
        ASSIGN_OR_RETURN(p, Field(p + 1, quote, triple, depth + 1));
      } else if (c == '}') {
        return p + 1;
      } else if (c == '\n' && !triple) {
        return p;
      } else {
        ++p;
      }
    }
    return s_.size();
  }

  std::string_view s_;
  std::vector<Range> code_;
};

// Names in code that NFKC changes.
Status CheckFolding(std::string_view s, Range range) {
  UErrorCode ec = U_ZERO_ERROR;
  const icu::Normalizer2* nfkc = icu::Normalizer2::getNFKCInstance(ec);
  if (U_FAILURE(ec)) return InternalError("ICU has no NFKC normalizer");
  size_t i = range.begin;
  while (i < range.end) {
    if (!IsIdentifierByte(s[i])) {
      ++i;
      continue;
    }
    size_t start = i;
    bool ascii = true;
    while (i < range.end && IsIdentifierByte(s[i])) {
      ascii = ascii && static_cast<unsigned char>(s[i]) < 0x80;
      ++i;
    }
    if (ascii) continue;
    std::string_view word = s.substr(start, i - start);
    icu::UnicodeString text = icu::UnicodeString::fromUTF8(word);
    if (nfkc->isNormalized(text, ec) || U_FAILURE(ec)) {
      if (U_FAILURE(ec)) return InternalError("NFKC check failed");
      continue;
    }
    std::string folded;
    nfkc->normalize(text, ec).toUTF8String(folded);
    // The first character that changes on its own; else the first that combines with another.
    UChar32 changing = 0, combining = 0;
    size_t changing_at = start, combining_at = start;
    const auto* bytes = reinterpret_cast<const uint8_t*>(word.data());
    for (int32_t k = 0, n = static_cast<int32_t>(word.size()); k < n && changing == 0;) {
      const size_t here = start + static_cast<size_t>(k);
      UChar32 c;
      U8_NEXT(bytes, k, n, c);
      if (c < 0x80) continue;
      if (!nfkc->isNormalized(icu::UnicodeString(c), ec)) {
        changing = c;
        changing_at = here;
      } else if (combining == 0 && !nfkc->isInert(c)) {
        combining = c;
        combining_at = here;
      }
    }
    const UChar32 shown = changing    ? changing
                          : combining ? combining
                                      : static_cast<unsigned char>(word[0]);
    const size_t at = changing ? changing_at : combining_at;
    return InvalidArgumentError(
        Where(s, at) + ": " + Describe(shown) + " in the name '" + std::string(word) +
        "', which Python reads as '" + folded +
        "' (it compares names after Unicode NFKC normalization), so the code would not run as "
        "it reads; write the name as '" +
        folded + "'");
  }
  return Status::Ok();
}

// Names in code must all be written in one script (letters of the Common and Inherited scripts,
// such as digits and the underscore, go with any). Python's keywords are Latin, so in practice
// names are Latin: a name in another script beside Latin ones can pass for a Latin one that NFKC
// does not fold, such as `_сlean` with a Cyrillic с beside `_clean` (found by an attack on the NFKC
// check).
Status CheckScripts(std::string_view s, const std::vector<Range>& ranges) {
  UScriptCode first = USCRIPT_INVALID_CODE;
  std::string first_name;
  for (const Range& range : ranges) {
    size_t i = range.begin;
    while (i < range.end) {
      if (!IsIdentifierByte(s[i])) {
        ++i;
        continue;
      }
      const size_t start = i;
      while (i < range.end && IsIdentifierByte(s[i])) ++i;
      const std::string_view word = s.substr(start, i - start);
      const auto* bytes = reinterpret_cast<const uint8_t*>(word.data());
      for (int32_t k = 0, n = static_cast<int32_t>(word.size()); k < n;) {
        const size_t here = start + static_cast<size_t>(k);
        UChar32 c;
        U8_NEXT(bytes, k, n, c);
        UErrorCode ec = U_ZERO_ERROR;
        const UScriptCode script = c < 0 ? USCRIPT_COMMON : uscript_getScript(c, &ec);
        if (U_FAILURE(ec) || script == USCRIPT_COMMON || script == USCRIPT_INHERITED) continue;
        if (first == USCRIPT_INVALID_CODE) {
          first = script;
          first_name = std::string(word);
        } else if (script != first) {
          return InvalidArgumentError(
              Where(s, here) + ": " + Describe(c) + " (" + uscript_getName(script) +
              ") in the name '" + std::string(word) + "', beside " + uscript_getName(first) +
              " names such as '" + first_name +
              "': names in two scripts can look alike and differ, so the code may not run as it "
              "reads; write every name in one script (strings and comments may hold any)");
        }
      }
    }
  }
  return Status::Ok();
}

// No line longer than this: past it, a display may not show the whole line, and code pushed far
// right (after a run of spaces, say) would run unseen (found by an attack).
constexpr size_t kMaxLineCharacters = 400;

Status CheckLineLengths(std::string_view s) {
  size_t line_start = 0, characters = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == '\n') {
      if (characters > kMaxLineCharacters) {
        return InvalidArgumentError(Where(s, line_start) + ": the line is " +
                                    std::to_string(characters) + " characters long, more than " +
                                    std::to_string(kMaxLineCharacters) +
                                    ", so a reviewer's display may not show all of it; wrap it");
      }
      line_start = i + 1;
      characters = 0;
    } else if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      ++characters;
    }
  }
  return Status::Ok();
}

}  // namespace

Status CheckSourceShownAsRun(std::string_view source) {
  if (source.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return InvalidArgumentError("the source is too large");
  }
  RETURN_IF_ERROR(CheckVisible(source));
  // Python reads CR LF as LF before it tokenizes (a lone CR is refused above): so does the lexer,
  // or a backslash before CR LF would end a string here that runs on in Python. Line and column
  // numbers stay those of the source.
  std::string text;
  text.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r' && i + 1 < source.size() && source[i + 1] == '\n') continue;
    text += source[i];
  }
  Lexer lexer(text);
  ASSIGN_OR_RETURN(std::vector<Range> code, lexer.CodeRanges());
  for (const Range& range : code) RETURN_IF_ERROR(CheckFolding(text, range));
  RETURN_IF_ERROR(CheckScripts(text, code));
  RETURN_IF_ERROR(CheckLineLengths(source));
  return Status::Ok();
}

namespace {

// Calls `found(line)` (1-based) for each line of `source` that starts, unindented, with "def NAME("
// or "async def NAME(".
template <typename Found>
void ForEachTopLevelDefinition(std::string_view source, std::string_view name, Found found) {
  auto skip_blanks = [](std::string_view& line) {
    while (!line.empty() && (line[0] == ' ' || line[0] == '\t')) line.remove_prefix(1);
  };
  size_t pos = 0;
  int number = 0;
  while (pos < source.size()) {
    size_t end = source.find('\n', pos);
    if (end == std::string_view::npos) end = source.size();
    std::string_view line = source.substr(pos, end - pos);
    pos = end + 1;
    ++number;
    if (line.substr(0, 6) == "async ") {
      line.remove_prefix(6);
      skip_blanks(line);
    }
    if (line.substr(0, 4) != "def " && line.substr(0, 4) != "def\t") continue;
    line.remove_prefix(4);
    skip_blanks(line);
    if (line.substr(0, name.size()) != name) continue;
    line.remove_prefix(name.size());
    skip_blanks(line);
    if (!line.empty() && line[0] == '(') found(number);
  }
}

}  // namespace

int CountTopLevelDefinitions(std::string_view source, std::string_view name) {
  int count = 0;
  ForEachTopLevelDefinition(source, name, [&](int) { ++count; });
  return count;
}

int TopLevelDefinitionLine(std::string_view source, std::string_view name) {
  int first = 0;
  ForEachTopLevelDefinition(source, name, [&](int line) {
    if (first == 0) first = line;
  });
  return first;
}

}  // namespace datasite::services
