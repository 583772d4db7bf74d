#include "services/output_checks.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "core/json_depth.h"
#include "data/csv_file.h"
#include "data/file_io.h"

namespace datasite::services {
namespace {

using nlohmann::json;

constexpr int64_t kMaxRuleValue = 1'000'000'000;
// JSON results and sidecars nested deeper are held unread (the rules walk them recursively).
constexpr int kMaxCheckedDepth = 64;

// A result read as a table: column names where its shape has them, and each row's cells as text
// (numbers in one canonical form, so 31 and 31.0 compare equal).
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

// Whitespace around a value: ASCII's and the no-break space (U+00A0).
std::string_view Trimmed(std::string_view text) {
  auto space_at_front = [&]() -> size_t {
    if (text.empty()) return 0;
    if (std::strchr(" \t\r\n\v\f", text.front()) && text.front() != '\0') return 1;
    return text.substr(0, 2) == "\xC2\xA0" ? 2 : 0;
  };
  auto space_at_back = [&]() -> size_t {
    if (text.empty()) return 0;
    if (std::strchr(" \t\r\n\v\f", text.back()) && text.back() != '\0') return 1;
    return text.size() >= 2 && text.substr(text.size() - 2) == "\xC2\xA0" ? 2 : 0;
  };
  for (size_t n; (n = space_at_front()) > 0;) text.remove_prefix(n);
  for (size_t n; (n = space_at_back()) > 0;) text.remove_suffix(n);
  return text;
}

// The lower case of a code point, for the scripts whose case is a simple mapping: ASCII, Latin-1,
// Latin Extended-A, Greek, Cyrillic (others are returned as they are).
char32_t FoldedCodePoint(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 0x20;
  if (c < 0x80) return c;
  if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
  if ((c >= 0x100 && c <= 0x12F) || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177)) {
    return c % 2 == 0 ? c + 1 : c;
  }
  if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E)) return c % 2 == 1 ? c + 1 : c;
  if (c == 0x178) return 0xFF;
  if (c == 0x17F) return 's';                                   // long s
  if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 0x20;  // Greek capitals
  if (c == 0x386) return 0x3AC;
  if (c >= 0x388 && c <= 0x38A) return c + 0x25;
  if (c == 0x38C) return 0x3CC;
  if (c == 0x38E || c == 0x38F) return c + 0x3F;
  if (c == 0x3C2) return 0x3C3;                   // final sigma
  if (c >= 0x410 && c <= 0x42F) return c + 0x20;  // Cyrillic capitals
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  return c;
}

// `text` in lower case (FoldedCodePoint; "ß" as "ss", as Unicode case folding has it). Bytes
// that are not UTF-8 are kept as they are.
std::string CaseFolded(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (b < 0x80) {
      out += static_cast<char>(b >= 'A' && b <= 'Z' ? b + 0x20 : b);
      ++i;
      continue;
    }
    // Only two-byte sequences (U+0080 to U+07FF) hold the letters folded here.
    if ((b & 0xE0) == 0xC0 && i + 1 < text.size() &&
        (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80) {
      char32_t c = ((b & 0x1F) << 6) | (static_cast<unsigned char>(text[i + 1]) & 0x3F);
      if (c == 0xDF) {
        out += "ss";
      } else {
        c = FoldedCodePoint(c);
        if (c < 0x80) {
          out += static_cast<char>(c);
        } else {
          out += static_cast<char>(0xC0 | (c >> 6));
          out += static_cast<char>(0x80 | (c & 0x3F));
        }
      }
      i += 2;
      continue;
    }
    out += text[i++];
  }
  return out;
}

// A value as the rules compare it: trimmed, in lower case ("Dee" and " dee" are dee: a case
// change or padding is no disguise), a number in one form (31 and 31.0 are the same).
std::string Canonical(std::string_view text) {
  text = Trimmed(text);
  double v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || !std::isfinite(v) || text.empty()) return CaseFolded(text);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.17g", v);
  return buf;
}

std::string CellText(const json& v) {
  if (v.is_string()) return Canonical(v.get<std::string>());
  if (v.is_null()) return "";
  if (v.is_number()) return Canonical(v.dump());
  return v.dump();
}

// The table a JSON result reads as: records ([{col: v}]), columns ({col: [v]} or pandas'
// {col: {index: v}}), a list of values or a dict of values (one column without a name), or one
// value.
Table JsonTable(const json& doc) {
  Table t;
  auto row_of = [](const json& v) { return std::vector<std::string>{CellText(v)}; };
  if (doc.is_array()) {
    const bool records = !doc.empty() && std::all_of(doc.begin(), doc.end(),
                                                     [](const json& r) { return r.is_object(); });
    if (!records) {
      for (const auto& v : doc) t.rows.push_back(row_of(v));
      return t;
    }
    for (const auto& r : doc) {  // every record's keys, in the order first seen
      for (const auto& [k, v] : r.items()) {
        if (std::find(t.columns.begin(), t.columns.end(), k) == t.columns.end()) {
          t.columns.push_back(k);
        }
      }
    }
    for (const auto& r : doc) {
      std::vector<std::string> row;
      for (const auto& c : t.columns) row.push_back(r.contains(c) ? CellText(r[c]) : "");
      t.rows.push_back(std::move(row));
    }
    return t;
  }
  if (doc.is_object()) {
    const bool columns = !doc.empty() && std::all_of(doc.begin(), doc.end(), [](const json& c) {
      return c.is_array() || c.is_object();
    });
    if (!columns) {
      for (const auto& [k, v] : doc.items()) t.rows.push_back(row_of(v));
      return t;
    }
    size_t n = 0;
    for (const auto& [k, c] : doc.items()) {
      t.columns.push_back(k);
      n = std::max(n, c.size());
    }
    t.rows.assign(n, std::vector<std::string>(t.columns.size()));
    size_t col = 0;
    for (const auto& [k, c] : doc.items()) {
      size_t i = 0;
      for (const auto& v : c) {
        if (i < n) t.rows[i++][col] = CellText(v);
      }
      ++col;
    }
    return t;
  }
  t.rows.push_back(row_of(doc));
  return t;
}

// RFC 4180 records of a CSV result held in memory (at most 1 MiB), read as pandas reads them: a
// leading UTF-8 byte order mark dropped; fields split on commas; a field that starts with a quote
// is quoted (doubled quotes inside), a quote elsewhere is an ordinary character; records ended by
// LF, CRLF or CR. nullopt for what the two might read differently: a quoted field never closed, or
// followed by anything but a comma or a line end.
std::optional<std::vector<std::vector<std::string>>> CsvRecords(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<std::vector<std::string>> records;
  std::vector<std::string> record;
  std::string field;
  bool quoted = false;   // inside a quoted field
  bool closed = false;   // a quoted field just closed: a comma or a line end must follow
  bool started = false;  // the current field has begun (quoted or not)
  bool any = false;      // the current record has a field
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c != '"') {
        field += c;
      } else if (i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else {
        quoted = false;
        closed = true;
      }
      continue;
    }
    if (c == ',') {
      record.push_back(std::move(field));
      field.clear();
      closed = started = false;
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || started) {
        record.push_back(std::move(field));
        records.push_back(std::move(record));
      }
      record.clear();
      field.clear();
      closed = started = any = false;
    } else if (closed) {
      return std::nullopt;
    } else if (c == '"' && !started) {
      quoted = started = true;
    } else {
      field += c;
      started = true;
    }
  }
  if (quoted) return std::nullopt;
  if (any || started) {
    record.push_back(std::move(field));
    records.push_back(std::move(record));
  }
  return records;
}

void AppendCsvField(std::string& out, const std::string& f) {
  if (f.find_first_of(",\"\r\n") == std::string::npos) {
    out += f;
    return;
  }
  out += '"';
  for (char c : f) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

std::optional<int64_t> AsCount(std::string_view text) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

// What the count rules make of one count: nullopt to suppress it, the value to keep (rounded), or
// "hold" through `held`.
std::optional<int64_t> Counted(const OutputRules& rules, int64_t v, bool& small) {
  // A negative count is a count written negative: -2 tells what 2 does.
  const __int128 magnitude = v < 0 ? -static_cast<__int128>(v) : static_cast<__int128>(v);
  if (rules.min_cell_count && magnitude > 0 && magnitude < *rules.min_cell_count) {
    small = true;
    return std::nullopt;
  }
  if (rules.round_to) {
    const __int128 b = *rules.round_to;
    __int128 r = (magnitude + b / 2) / b * b;
    if (r > INT64_MAX) r -= b;  // the multiple below, which fits
    return static_cast<int64_t>(v < 0 ? -r : r);
  }
  return v;
}

// The count a float stands for when it is a whole number (pandas writes counts as floats when a
// group is missing: `unstack()`, `pivot_table(aggfunc="count")`), below 2^53 in magnitude; nullopt
// for a value that is not whole (a mean), not finite, or larger.
std::optional<int64_t> WholeFloat(double d) {
  if (!std::isfinite(d) || d != std::trunc(d) || std::fabs(d) >= 9007199254740992.0) {
    return std::nullopt;
  }
  return static_cast<int64_t>(d);
}

// Whether a JSON document holds a number no rule can read exactly: a whole number past int64, or
// a number past 2^53 in magnitude (a double, which may stand for a longer integer's text).
bool HasUncheckableNumber(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX);
  if (v.is_number_float()) return std::fabs(v.get<double>()) >= 9007199254740992.0;
  if (v.is_array() || v.is_object()) {
    for (const auto& e : v) {
      if (HasUncheckableNumber(e)) return true;
    }
  }
  return false;
}

// Applies the count rules to every integer and whole float of a JSON document (keys are labels,
// not counts); a float stays a float.
json CountJson(const OutputRules& rules, const json& v, bool& small) {
  if (v.is_number_integer()) {
    auto kept = Counted(rules, v.get<int64_t>(), small);
    return kept ? json(*kept) : json(nullptr);
  }
  if (v.is_number_float()) {
    auto whole = WholeFloat(v.get<double>());
    if (!whole) return v;
    auto kept = Counted(rules, *whole, small);
    return kept ? json(static_cast<double>(*kept)) : json(nullptr);
  }
  if (v.is_array()) {
    json out = json::array();
    for (const auto& e : v) out.push_back(CountJson(rules, e, small));
    return out;
  }
  if (v.is_object()) {
    json out = json::object();
    for (const auto& [k, e] : v.items()) out[k] = CountJson(rules, e, small);
    return out;
  }
  return v;
}

bool IsIntDtype(const std::string& d) {
  static const char* kInts[] = {"int8",   "int16",  "int32",  "int64", "uint8", "uint16",
                                "uint32", "uint64", "Int8",   "Int16", "Int32", "Int64",
                                "UInt8",  "UInt16", "UInt32", "UInt64"};
  return std::find(std::begin(kInts), std::end(kInts), d) != std::end(kInts);
}

// The token a nullable integer column writes for a missing cell, making the column nullable
// ("int64" -> "Int64") and giving it one when it has none: "" (an integer is never written so).
std::string NaToken(json& column) {
  std::string dtype = column.value("dtype", std::string());
  if (!dtype.empty() && (dtype[0] == 'i' || dtype[0] == 'u')) {
    dtype = dtype[0] == 'i' ? "I" + dtype.substr(1) : "UI" + dtype.substr(2);
    column["dtype"] = dtype;
  }
  if (column.contains("missing") && column["missing"].is_object()) {
    for (const auto& [token, kind] : column["missing"].items()) {
      if (kind == "NA") return token;
    }
  }
  if (!column.contains("missing") || !column["missing"].is_object())
    column["missing"] = json::object();
  column["missing"][""] = "NA";
  return "";
}

std::string Held(const std::string& rule, const std::string& why) { return rule + ": " + why; }

bool IsFloatDtype(const std::string& d) {
  return d == "float16" || d == "float32" || d == "float64" || d == "Float32" || d == "Float64";
}

// Whether a cell of a number column is in the one form the runner writes it (or is one of the
// column's missing tokens, or empty): " 1", "+1", "1_0" or a full-width digit are other forms that
// pandas reads as numbers and the rules would read as text.
bool InRunnersForm(const json& column, const std::string& cell) {
  if (cell.empty()) return true;
  if (column.contains("missing") && column["missing"].is_object() &&
      column["missing"].contains(cell)) {
    return true;
  }
  const std::string dtype = column["dtype"].get<std::string>();
  if (IsIntDtype(dtype)) {
    auto n = AsCount(cell);
    return n && std::to_string(*n) == cell;
  }
  if (IsFloatDtype(dtype)) {
    if (cell.find_first_of(" \t+_") != std::string::npos) return false;
    double v = 0;
    auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
    return ec == std::errc() && p == cell.data() + cell.size();
  }
  return true;
}

// The row-level rule against each private input.
std::string RowLevel(const Table& t, const std::vector<InputTable>& inputs) {
  for (const InputTable& in : inputs) {
    if (in.rows < 0) {
      return Held("no_row_level", "the input '" + in.name +
                                      "' can't be compared with results (only CSV inputs of at "
                                      "most 8 MiB are)");
    }
    if (in.rows >= 2 && static_cast<int64_t>(t.rows.size()) >= in.rows) {
      return Held("no_row_level",
                  "the result has as many rows as the input '" + in.name + "' or more");
    }
    if (t.columns.empty() || in.cells.empty()) continue;
    std::vector<size_t> mine, theirs;
    for (size_t i = 0; i < t.columns.size(); ++i) {
      for (size_t j = 0; j < in.columns.size(); ++j) {
        if (t.columns[i] == in.columns[j]) {
          mine.push_back(i);
          theirs.push_back(j);
          break;
        }
      }
    }
    if (mine.empty() || mine.size() < std::min<size_t>(2, in.columns.size())) continue;
    auto key = [](const std::vector<std::string>& row, const std::vector<size_t>& at) {
      std::string k;
      for (size_t i : at) {
        k += i < row.size() ? row[i] : std::string();
        k += '\x1f';
      }
      return k;
    };
    std::unordered_set<std::string> rows;
    for (const auto& r : in.cells) {
      std::vector<std::string> canonical;
      for (const auto& c : r) canonical.push_back(Canonical(c));
      rows.insert(key(canonical, theirs));
    }
    for (const auto& r : t.rows) {
      if (rows.count(key(r, mine))) {
        std::string names;
        for (size_t i : mine) names += (names.empty() ? "" : ", ") + t.columns[i];
        return Held("no_row_level", "a row of the result equals a row of the input '" + in.name +
                                        "' on its columns " + names);
      }
    }
  }
  return "";
}

// How many input rows must share a value for a result to show it: the smallest cell allowed, at
// least 2.
int64_t RareThreshold(const OutputRules& rules) {
  return std::max<int64_t>(2, rules.min_cell_count.value_or(2));
}

// Whether a text is a whole number (a count, which the cell rules handle).
bool IsInteger(std::string_view text) { return AsCount(text).has_value(); }

// What of a result the rare-value check reads, canonical: `values`, numbers in value cells (not
// whole numbers as written, which are counts), compared with the input's values other than whole
// numbers as written; `labels`, strings, keys, column names and index labels, compared with all of
// the input's values (a patient id or an age used as a key or a label is someone's value).
struct Readable {
  std::vector<std::string> values;
  std::vector<std::string> labels;
};

// The second half of the row-level rule: a value of the result (a string, a label, a column name,
// a number that is not a whole number) equal to a value that fewer than `threshold` rows of a
// private input hold is one person's value copied out (a name, a salary): `data["name"].head(3)`
// has fewer rows than its input and no row of it. Group labels that many rows share pass.
std::string RareValue(const Readable& found, const std::vector<InputTable>& inputs,
                      int64_t threshold) {
  for (const InputTable& in : inputs) {
    // A value -> the rows holding it: as a value other than a whole number as written, as any.
    std::unordered_map<std::string, int64_t> seen, seen_any;
    for (const auto& row : in.cells) {
      std::unordered_set<std::string> in_row, in_row_any;
      for (const auto& cell : row) {
        if (cell.empty()) continue;
        std::string c = Canonical(cell);
        // A whole number as written is read as a count where the result has counts; "69023.0"
        // is a value.
        if (!IsInteger(cell) && in_row.insert(c).second) ++seen[c];
        if (in_row_any.insert(c).second) ++seen_any[c];
      }
    }
    auto rare = [&](const std::unordered_map<std::string, int64_t>& map,
                    const std::vector<std::string>& what) {
      for (const auto& v : what) {
        auto it = map.find(v);
        if (it != map.end() && it->second < threshold) return true;
      }
      return false;
    };
    if (rare(seen, found.values) || rare(seen_any, found.labels)) {
      return Held("no_row_level", "the result holds a value that fewer than " +
                                      std::to_string(threshold) + " rows of the input '" + in.name +
                                      "' hold");
    }
  }
  return "";
}

// Every value of a JSON document a person's value could hide in, canonical: strings and keys as
// labels, floats as values (integers are counts); with `as_labels` (a document that is a label),
// every number as a label too.
void JsonValues(const json& v, Readable& out, bool as_labels = false) {
  if (v.is_string()) {
    out.labels.push_back(Canonical(v.get<std::string>()));
  } else if (v.is_number()) {
    if (as_labels) {
      out.labels.push_back(Canonical(v.dump()));
    } else if (v.is_number_float()) {
      out.values.push_back(Canonical(v.dump()));
    }
  } else if (v.is_array()) {
    for (const auto& e : v) JsonValues(e, out, as_labels);
  } else if (v.is_object()) {
    for (const auto& [k, e] : v.items()) {
      out.labels.push_back(Canonical(k));
      JsonValues(e, out, as_labels);
    }
  }
}

// A sidecar's labels: its strings and floats as JsonValues reads them, and the column, index and
// Series names (whole numbers too: {"name": 64}, {"tuple": ["n", 64]}) as labels.
void SidecarValues(const json& v, Readable& out) {
  if (v.is_array()) {
    for (const auto& e : v) SidecarValues(e, out);
  } else if (v.is_object()) {
    for (const auto& [k, e] : v.items()) {
      out.labels.push_back(Canonical(k));
      if (k == "name" || k == "columns_names" || k == "tuple") {
        JsonValues(e, out, /*as_labels=*/true);
      } else {
        SidecarValues(e, out);
      }
    }
  } else {
    JsonValues(v, out);
  }
}

// A JSON cell of a CSV result (an object column's "encoding": "json"), as the client's json.loads
// reads it; nullopt when the rules can't read it so (not JSON to this parser, nested deeper than
// the rules walk, a number no rule reads exactly). NaN, Infinity and -Infinity alone, which
// Python's JSON writes, are a float that is no count: read as null.
std::optional<json> JsonCell(const std::string& text) {
  if (text == "NaN" || text == "Infinity" || text == "-Infinity") return json(nullptr);
  if (NestsDeeperThan(text, kMaxCheckedDepth)) return std::nullopt;
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || HasUncheckableNumber(doc)) return std::nullopt;
  return doc;
}

bool IsMissingToken(const json& column, const std::string& cell) {
  return column.contains("missing") && column["missing"].is_object() &&
         column["missing"].contains(cell);
}

}  // namespace

Result<OutputRules> ParseOutputRules(const json& j) {
  if (!j.is_object()) return InvalidArgumentError("output checks must be an object");
  OutputRules r;
  auto count = [&](const std::string& field, int64_t min) -> Result<std::optional<int64_t>> {
    const json& v = j[field];
    if (v.is_null()) return std::optional<int64_t>();
    if (!v.is_number_integer() || v.get<int64_t>() < min || v.get<int64_t>() > kMaxRuleValue) {
      return InvalidArgumentError("'" + field + "' must be a whole number from " +
                                  std::to_string(min) + " to " + std::to_string(kMaxRuleValue));
    }
    return std::optional<int64_t>(v.get<int64_t>());
  };
  for (const auto& [field, v] : j.items()) {
    if (field == "min_cell_count") {
      ASSIGN_OR_RETURN(r.min_cell_count, count(field, 2));
    } else if (field == "round_to") {
      ASSIGN_OR_RETURN(r.round_to, count(field, 2));
    } else if (field == "max_result_bytes") {
      ASSIGN_OR_RETURN(r.max_result_bytes, count(field, 1));
    } else if (field == "small_cells") {
      if (v.is_null()) continue;
      if (v != "suppress" && v != "hold") {
        return InvalidArgumentError("'small_cells' must be \"suppress\" or \"hold\"");
      }
      r.hold_small_cells = v == "hold";
    } else if (field == "no_row_level") {
      if (v.is_null()) continue;
      if (!v.is_boolean()) return InvalidArgumentError("'no_row_level' must be true or false");
      r.no_row_level = v.get<bool>();
    } else {
      return InvalidArgumentError("unknown output check '" + field.substr(0, 100) +
                                  "' (min_cell_count, small_cells, round_to, no_row_level, "
                                  "max_result_bytes)");
    }
  }
  if (r.hold_small_cells && !r.min_cell_count) {
    return InvalidArgumentError("'small_cells' goes with 'min_cell_count'");
  }
  return r;
}

json OutputRulesJson(const OutputRules& r) {
  auto opt = [](const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); };
  return {{"min_cell_count", opt(r.min_cell_count)},
          {"small_cells",
           r.min_cell_count ? json(r.hold_small_cells ? "hold" : "suppress") : json(nullptr)},
          {"round_to", opt(r.round_to)},
          {"no_row_level", r.no_row_level},
          {"max_result_bytes", opt(r.max_result_bytes)}};
}

OutputRules Strictest(const OutputRules& a, const OutputRules& b) {
  auto larger = [](const std::optional<int64_t>& x, const std::optional<int64_t>& y) {
    if (!x) return y;
    if (!y) return x;
    return std::optional<int64_t>(std::max(*x, *y));
  };
  auto smaller = [](const std::optional<int64_t>& x, const std::optional<int64_t>& y) {
    if (!x) return y;
    if (!y) return x;
    return std::optional<int64_t>(std::min(*x, *y));
  };
  OutputRules r;
  r.min_cell_count = larger(a.min_cell_count, b.min_cell_count);
  r.hold_small_cells =
      (a.min_cell_count && a.hold_small_cells) || (b.min_cell_count && b.hold_small_cells);
  r.round_to = larger(a.round_to, b.round_to);
  r.no_row_level = a.no_row_level || b.no_row_level;
  r.max_result_bytes = smaller(a.max_result_bytes, b.max_result_bytes);
  return r;
}

Result<InputTable> ReadInputTable(const std::string& name, const std::string& csv_path) {
  ASSIGN_OR_RETURN(data::internal::InputFile file, data::internal::InputFile::Open(csv_path));
  if (file.size() > static_cast<uint64_t>(kMaxCheckedInputBytes)) {
    return ResourceExhaustedError("the input is larger than 8 MiB");
  }
  data::internal::CsvReader reader(std::move(file));
  InputTable t;
  t.name = name;
  bool header = true;
  while (true) {
    ASSIGN_OR_RETURN(bool more, reader.Next());
    if (!more) break;
    std::vector<std::string> row(reader.fields().begin(), reader.fields().end());
    if (header) {
      t.columns = std::move(row);
      header = false;
    } else {
      t.cells.push_back(std::move(row));
    }
  }
  t.rows = static_cast<int64_t>(t.cells.size());
  return t;
}

Verdict CheckOutput(const OutputRules& rules, const std::string& format, const std::string& result,
                    const std::string& meta, int64_t stdout_bytes,
                    const std::vector<InputTable>& inputs) {
  Verdict v;
  if (rules.max_result_bytes &&
      static_cast<int64_t>(result.size() + meta.size()) > *rules.max_result_bytes) {
    v.held = Held("max_result_bytes", "the result is larger than " +
                                          std::to_string(*rules.max_result_bytes) + " bytes");
    return v;
  }
  if (stdout_bytes > 0) {
    v.held =
        Held("printed_output", "a run checked by rule may not print (no rule reads free text)");
    return v;
  }
  bool small = false;
  if (format == "json") {
    // The rules walk the document recursively: a deep one is refused before it is parsed.
    json doc = NestsDeeperThan(result, kMaxCheckedDepth) ? json(json::value_t::discarded)
                                                         : json::parse(result, nullptr, false);
    if (doc.is_discarded()) {
      v.held = Held("format", "the result is not JSON the rules can read (or nests deeper than " +
                                  std::to_string(kMaxCheckedDepth) + ")");
      return v;
    }
    if (HasUncheckableNumber(doc)) {
      v.held = Held("format", "the result holds a number too large to check exactly");
      return v;
    }
    if (rules.no_row_level) {
      v.held = RowLevel(JsonTable(doc), inputs);
      if (v.held.empty()) {
        Readable found;
        JsonValues(doc, found);
        v.held = RareValue(found, inputs, RareThreshold(rules));
      }
      if (!v.held.empty()) return v;
    }
    if (rules.min_cell_count || rules.round_to) {
      json counted = CountJson(rules, doc, small);
      if (small && rules.hold_small_cells) {
        v.held = Held("min_cell_count", "a count below " + std::to_string(*rules.min_cell_count));
        return v;
      }
      if (counted != doc) v.result = counted.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    return v;
  }
  if (format != "csv") {
    v.held = Held("format",
                  "only JSON and CSV results are checked by rule (this one is " + format + ")");
    return v;
  }
  // A DataFrame or Series result comes with its sidecar (the runner writes one); a CSV without
  // one was not written by the runner.
  json sidecar = meta.empty() || NestsDeeperThan(meta, kMaxCheckedDepth)
                     ? json(json::value_t::discarded)
                     : json::parse(meta, nullptr, false);
  if (!sidecar.is_object()) {
    v.held = Held("format", "a CSV result without a typed sidecar the rules can read");
    return v;
  }
  auto records = CsvRecords(result);
  if (!records) {
    v.held = Held("format", "the result is not CSV the rules can read");
    return v;
  }
  // Which CSV columns hold counts: with a sidecar, its value columns of an integer dtype (index
  // levels are labels); without one, every cell that reads as an integer, header aside.
  size_t index_columns = 0;
  std::vector<json*> sidecar_columns;
  // Its shape is the runner's (the server checked it with data::ParseSidecar); held otherwise.
  const bool has_index = sidecar.contains("index");
  if ((has_index && !sidecar["index"].is_object()) ||
      (sidecar.contains("columns") && !sidecar["columns"].is_array())) {
    v.held = Held("format", "the result's sidecar is not one the rules can read");
    return v;
  }
  std::vector<json*> all_columns;  // index levels, then value columns: one per CSV column
  if (has_index && sidecar["index"].contains("levels") && sidecar["index"]["levels"].is_array()) {
    index_columns = sidecar["index"]["levels"].size();
    for (auto& c : sidecar["index"]["levels"]) all_columns.push_back(&c);
  }
  if (sidecar.contains("columns")) {
    for (auto& c : sidecar["columns"]) {
      sidecar_columns.push_back(&c);
      all_columns.push_back(&c);
    }
  }
  for (const json* c : all_columns) {
    if (!c->is_object() || !c->contains("dtype") || !(*c)["dtype"].is_string()) {
      v.held = Held("format", "the result's sidecar is not one the rules can read");
      return v;
    }
  }
  for (size_t r = 1; r < records->size(); ++r) {
    const auto& record = (*records)[r];
    for (size_t c = 0; c < record.size() && c < all_columns.size(); ++c) {
      if (!InRunnersForm(*all_columns[c], record[c])) {
        v.held = Held("format", "a number of the result is not written as the runner writes it");
        return v;
      }
    }
  }
  // An object column of mixed values carries each cell as JSON text ("encoding": "json"), and a
  // category column whose categories are mixed carries its cells and categories so; the client
  // decodes them. The rules read the decoded values as they read a JSON result's: strings and keys
  // as labels, integers and whole floats in value columns as counts, a record as a row. A cell
  // they can't read holds the result.
  enum class Encoded { kNo, kCell, kCategory };
  std::vector<Encoded> encoded(all_columns.size(), Encoded::kNo);
  Readable category_labels;  // an encoded category column's categories, decoded
  for (size_t c = 0; c < all_columns.size(); ++c) {
    const json& column = *all_columns[c];
    const std::string& dtype = column["dtype"].get_ref<const std::string&>();
    const json* categories =
        dtype == "category" && column.contains("categories") && column["categories"].is_object()
            ? &column["categories"]
            : nullptr;
    if (column.contains("encoding")) {
      if (column["encoding"] != "json" || dtype != "object") {
        v.held = Held("format", "the result's sidecar names an encoding the rules can't read");
        return v;
      }
      encoded[c] = Encoded::kCell;
    } else if (categories && categories->contains("encoding")) {
      if ((*categories)["encoding"] != "json" || !categories->contains("values") ||
          !(*categories)["values"].is_array()) {
        v.held = Held("format", "the result's sidecar names an encoding the rules can't read");
        return v;
      }
      encoded[c] = Encoded::kCategory;
      for (const json& value : (*categories)["values"]) {
        std::optional<json> doc =
            value.is_string() ? JsonCell(value.get<std::string>()) : std::optional<json>();
        if (!doc) {
          v.held = Held("format", "a JSON cell of the result is not one the rules can read");
          return v;
        }
        JsonValues(*doc, category_labels, /*as_labels=*/true);
      }
    }
  }
  std::vector<std::vector<std::optional<json>>> decoded(records->size());
  for (size_t r = 1; r < records->size(); ++r) {
    const auto& record = (*records)[r];
    decoded[r].resize(record.size());
    for (size_t c = 0; c < record.size() && c < all_columns.size(); ++c) {
      if (encoded[c] == Encoded::kNo || IsMissingToken(*all_columns[c], record[c])) continue;
      decoded[r][c] = JsonCell(record[c]);
      if (!decoded[r][c]) {
        v.held = Held("format", "a JSON cell of the result is not one the rules can read");
        return v;
      }
    }
  }
  Table t;
  if (!records->empty()) {
    t.columns = records->front();
    for (size_t i = 1; i < records->size(); ++i) {
      std::vector<std::string> row;
      const auto& record = (*records)[i];
      for (size_t c = 0; c < record.size(); ++c) {
        row.push_back(decoded[i][c] ? CellText(*decoded[i][c]) : Canonical(record[c]));
      }
      t.rows.push_back(std::move(row));
    }
  }
  if (rules.no_row_level) {
    v.held = RowLevel(t, inputs);
    // A list or a record in one cell is a result of its own: `to_dict("records")` in a cell.
    for (size_t r = 1; r < decoded.size() && v.held.empty(); ++r) {
      for (const auto& cell : decoded[r]) {
        if (cell && (cell->is_array() || cell->is_object())) {
          v.held = RowLevel(JsonTable(*cell), inputs);
          if (!v.held.empty()) break;
        }
      }
    }
    if (v.held.empty()) {
      // The header and index levels are labels; a value column's cells are counts (an integer
      // dtype), values (a float dtype) or labels (text, dates, anything else).
      Readable found;
      for (size_t r = 0; r < records->size(); ++r) {
        const auto& record = (*records)[r];
        for (size_t c = 0; c < record.size(); ++c) {
          const std::string& f = record[c];
          if (f.empty()) continue;
          const std::string dtype = r == 0 || c < index_columns || c >= all_columns.size()
                                        ? std::string()
                                        : (*all_columns[c])["dtype"].get<std::string>();
          if (r > 0 && r < decoded.size() && c < decoded[r].size() && decoded[r][c]) {
            // Index levels and categories are labels, whole numbers too.
            JsonValues(*decoded[r][c], found,
                       /*as_labels=*/c < index_columns || encoded[c] == Encoded::kCategory);
            continue;
          }
          if (IsIntDtype(dtype)) continue;
          (IsFloatDtype(dtype) ? found.values : found.labels).push_back(Canonical(f));
        }
      }
      found.labels.insert(found.labels.end(), category_labels.labels.begin(),
                          category_labels.labels.end());
      // The sidecar's labels travel too: names, index names, categories.
      SidecarValues(sidecar, found);
      v.held = RareValue(found, inputs, RareThreshold(rules));
    }
    if (!v.held.empty()) return v;
  }
  if (!rules.min_cell_count && !rules.round_to) return v;
  bool changed = false;
  std::vector<std::optional<std::string>> na_tokens(t.columns.size());
  for (size_t r = 1; r < records->size(); ++r) {
    auto& record = (*records)[r];
    for (size_t c = 0; c < record.size(); ++c) {
      if (c < index_columns) continue;
      json* column = nullptr;
      if (sidecar.is_object()) {
        const size_t at = c - index_columns;
        if (at >= sidecar_columns.size()) continue;
        column = sidecar_columns[at];
        if (c < decoded[r].size() && decoded[r][c] && encoded[c] == Encoded::kCell) {
          // A suppressed value inside a JSON cell is null, as in a JSON result.
          json counted = CountJson(rules, *decoded[r][c], small);
          if (counted != *decoded[r][c]) {
            record[c] = counted.dump(-1, ' ', false, json::error_handler_t::replace);
            changed = true;
          }
          continue;
        }
        const std::string dtype = column->value("dtype", std::string());
        if (IsFloatDtype(dtype)) {
          // A whole float is a count; suppressed, a numpy float's cell is empty (NaN: its dtype
          // takes no missing tokens), a nullable Float's is its missing token.
          const std::string& f = record[c];
          if (f.empty() || (column->contains("missing") && (*column)["missing"].is_object() &&
                            (*column)["missing"].contains(f))) {
            continue;
          }
          double d = 0;
          auto [p, ec] = std::from_chars(f.data(), f.data() + f.size(), d);
          if (ec != std::errc() || p != f.data() + f.size()) continue;
          if (std::isfinite(d) && d == std::trunc(d) && !WholeFloat(d)) {
            v.held = Held("format", "the result holds a number too large to check exactly");
            return v;
          }
          auto whole = WholeFloat(d);
          if (!whole) continue;
          auto kept = Counted(rules, *whole, small);
          if (kept && *kept == *whole) continue;
          changed = true;
          if (kept) {
            record[c] = std::to_string(*kept) + ".0";
          } else {
            if (c >= na_tokens.size()) na_tokens.resize(c + 1);
            if (!na_tokens[c]) {
              na_tokens[c] = dtype[0] == 'F' ? NaToken(*column) : std::string();
            }
            record[c] = *na_tokens[c];
          }
          continue;
        }
        if (!IsIntDtype(dtype)) {
          // A whole number in a value column of objects or categories reads as a count to its
          // reader, but its column's type says nothing of it: held rather than guessed at.
          if ((dtype == "object" || dtype == "category") && AsCount(record[c])) {
            v.held = Held("format",
                          "a whole number in a column of objects or categories (counts are "
                          "checked in integer columns)");
            return v;
          }
          continue;
        }
      }
      auto n = AsCount(record[c]);
      if (!n) {
        const std::string& f = record[c];
        const bool digits = !f.empty() && f.find_first_not_of("-0123456789") == std::string::npos &&
                            f.find('-', 1) == std::string::npos && f != "-";
        if (digits) {
          v.held = Held("format", "the result holds a number too large to check exactly");
          return v;
        }
        continue;
      }
      auto kept = Counted(rules, *n, small);
      if (kept && *kept == *n) continue;
      changed = true;
      if (kept) {
        record[c] = std::to_string(*kept);
      } else {
        if (c >= na_tokens.size()) na_tokens.resize(c + 1);
        if (!na_tokens[c]) na_tokens[c] = column ? NaToken(*column) : std::string();
        record[c] = *na_tokens[c];
      }
    }
  }
  if (small && rules.hold_small_cells) {
    v.held = Held("min_cell_count", "a count below " + std::to_string(*rules.min_cell_count));
    return v;
  }
  if (!changed) return v;
  std::string out;
  for (const auto& record : *records) {
    for (size_t c = 0; c < record.size(); ++c) {
      if (c) out += ',';
      AppendCsvField(out, record[c]);
    }
    if (record.size() == 1 && record[0].empty()) out += "\"\"";
    out += "\r\n";
  }
  v.result = std::move(out);
  if (sidecar.is_object()) v.meta = sidecar.dump();
  return v;
}

}  // namespace datasite::services
