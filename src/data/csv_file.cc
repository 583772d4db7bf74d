#include "data/csv_file.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <utility>

#include "data/mock_values.h"
#include "data/sampling.h"
#include "data/utf8.h"

namespace datasite::data::internal {
namespace {

constexpr int kEof = InputFile::kEof;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// from_chars takes no leading '+'; a CSV may have one.
std::string_view DropPlus(std::string_view s) {
  if (s.size() > 1 && s[0] == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  return s;
}

// A 64-bit integer: [+-]digits, nothing else.
bool ParseInt64(std::string_view s, int64_t& value) {
  const char* p = s.data();
  const char* end = p + s.size();
  bool negative = p != end && *p == '-';
  if (p != end && (*p == '-' || *p == '+')) ++p;
  if (p == end) return false;
  uint64_t magnitude = 0;
  for (; p != end; ++p) {
    if (*p < '0' || *p > '9') return false;
    if (__builtin_mul_overflow(magnitude, 10, &magnitude) ||
        __builtin_add_overflow(magnitude, static_cast<uint64_t>(*p - '0'), &magnitude)) {
      return false;
    }
  }
  constexpr uint64_t kMaxPositive = std::numeric_limits<int64_t>::max();
  if (magnitude > kMaxPositive + (negative ? 1 : 0)) return false;
  value = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
  return true;
}

bool ParseFiniteDouble(std::string_view s, double& value) {
  s = DropPlus(s);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(value);
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoringCase(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != lower[i]) return false;
  }
  return true;
}

bool IsBool(std::string_view s) {
  return EqualsIgnoringCase(s, "true") || EqualsIgnoringCase(s, "false");
}

BoolStyle StyleOf(std::string_view s) {
  bool first_upper = s[0] >= 'A' && s[0] <= 'Z';
  bool rest_upper =
      std::all_of(s.begin() + 1, s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
  bool rest_lower =
      std::all_of(s.begin() + 1, s.end(), [](char c) { return c >= 'a' && c <= 'z'; });
  if (first_upper && rest_upper) return BoolStyle::kUpper;
  if (first_upper && rest_lower) return BoolStyle::kCapitalized;
  return BoolStyle::kLower;
}

// Digits after the decimal point (before any exponent).
int Decimals(std::string_view s) {
  size_t dot = s.find('.');
  if (dot == std::string_view::npos) return 0;
  int n = 0;
  for (size_t i = dot + 1; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) ++n;
  return n;
}

// Digits of the mantissa from its first non-zero one on.
int SignificantDigits(std::string_view s) {
  int n = 0;
  bool started = false;
  for (char c : s) {
    if (c == 'e' || c == 'E') break;
    if (c < '0' || c > '9') continue;
    if (c != '0') started = true;
    if (started) ++n;
  }
  return n;
}

std::string Fields(size_t n) { return std::to_string(n) + (n == 1 ? " field" : " fields"); }

uint64_t HashOf(std::string_view s) { return std::hash<std::string_view>{}(s); }

}  // namespace

// ---- CsvReader ----

Status CsvReader::Error(const std::string& what) const {
  return InvalidArgumentError("line " + std::to_string(record_line_) + ": " + what);
}

Result<bool> CsvReader::Next() {
  if (!started_) {
    started_ = true;
    if (file_.Buffered().substr(0, 3) == "\xEF\xBB\xBF") file_.Skip(3);
  }
  record_.clear();
  ends_.clear();
  views_.clear();
  int c;
  for (;;) {  // Skips blank lines.
    c = file_.Get();
    if (c == kEof) {
      RETURN_IF_ERROR(file_.status());
      return false;
    }
    if (c == '\r' && file_.Peek() == '\n') file_.Get();
    if (c != '\r' && c != '\n') break;
    ++lines_done_;
  }
  record_line_ = lines_done_ + 1;
  size_t bytes = 1;  // Of this record so far: checked against the limit per chunk.
  auto too_long = [&] {
    return Error("the record is longer than 1 MiB, the most one CSV record may hold");
  };
  for (;;) {  // One field per turn; `c` is its first byte (or what ends it, when it is empty).
    if (ends_.size() == kMaxCsvColumns) {
      return Error("the record has more than " + Fields(kMaxCsvColumns) +
                   ", the most a table may have");
    }
    if (c == '"') {
      int64_t quote_line = lines_done_ + 1;
      for (;;) {  // Up to the next quote: the closing one, or the first of a doubled pair.
        std::string_view chunk = file_.Buffered();
        if (chunk.empty()) {
          RETURN_IF_ERROR(file_.status());
          return InvalidArgumentError("line " + std::to_string(quote_line) +
                                      ": a quoted field is never closed (a '\"' is missing)");
        }
        const char* begin = chunk.data();
        const char* end = begin + chunk.size();
        const char* quote = static_cast<const char*>(std::memchr(begin, '"', chunk.size()));
        const char* stop = quote != nullptr ? quote : end;
        for (const char* p = begin; p != stop; ++p) lines_done_ += *p == '\n';
        record_.append(begin, stop);
        file_.Skip(static_cast<size_t>(stop - begin));
        bytes += static_cast<size_t>(stop - begin);
        if (bytes > kMaxCsvRecordBytes) return too_long();
        if (quote == nullptr) continue;
        file_.Skip(1);
        if (file_.Peek() != '"') break;
        file_.Skip(1);
        bytes += 2;
        record_.push_back('"');
      }
      c = file_.Get();
      if (c != ',' && c != '\n' && c != '\r' && c != kEof) {
        return InvalidArgumentError(
            "line " + std::to_string(lines_done_ + 1) + ": field " +
            std::to_string(ends_.size() + 1) +
            " has text after its closing quote; quote the whole field and double the quotes "
            "inside it (\"say \"\"hi\"\"\")");
      }
    } else {
      while (c != ',' && c != '\n' && c != '\r' && c != kEof) {
        record_.push_back(static_cast<char>(c));
        std::string_view chunk = file_.Buffered();
        const char* begin = chunk.data();
        const char* end = begin + chunk.size();
        const char* p = begin;
        while (p != end && *p != ',' && *p != '\n' && *p != '\r') ++p;
        record_.append(begin, p);
        file_.Skip(static_cast<size_t>(p - begin));
        bytes += static_cast<size_t>(p - begin) + 1;
        if (bytes > kMaxCsvRecordBytes) return too_long();
        c = file_.Get();
      }
    }
    ends_.push_back(record_.size());
    if (c == ',') {
      c = file_.Get();
      if (++bytes > kMaxCsvRecordBytes) return too_long();
      continue;
    }
    // The record ends here.
    if (c == kEof) {
      RETURN_IF_ERROR(file_.status());
    } else {
      bool crlf = c == '\r' && file_.Peek() == '\n';
      if (crlf) file_.Get();
      if (!first_done_) crlf_ = crlf;
      ++lines_done_;
    }
    first_done_ = true;
    size_t start = 0;
    for (size_t end : ends_) {
      views_.emplace_back(record_.data() + start, end - start);
      start = end;
    }
    return true;
  }
}

// ---- CsvWriter ----

void CsvWriter::Field(std::string_view value) {
  if (fields_ > 0) out_.Put(',');
  ++fields_;
  only_field_empty_ = fields_ == 1 && value.empty();
  const char* p = value.data();
  const char* end = p + value.size();
  while (p != end && *p != ',' && *p != '"' && *p != '\n' && *p != '\r') ++p;
  // A leading byte order mark is quoted too, or a reader would drop it at the start of the file.
  if (p == end && value.substr(0, 3) != "\xEF\xBB\xBF") {
    out_.Write(value);
    return;
  }
  out_.Put('"');
  for (size_t quote; (quote = value.find('"')) != std::string_view::npos;) {
    out_.Write(value.substr(0, quote + 1));
    out_.Put('"');
    value.remove_prefix(quote + 1);
  }
  out_.Write(value);
  out_.Put('"');
}

void CsvWriter::EndRecord() {
  if (fields_ == 1 && only_field_empty_) out_.Write("\"\"");
  out_.Write(crlf_ ? "\r\n" : "\n");
  fields_ = 0;
}

// ---- Profile and schema ----

std::string_view ColumnTypeName(ColumnType type) {
  switch (type) {
    case ColumnType::kInt:
      return "int";
    case ColumnType::kFloat:
      return "float";
    case ColumnType::kBool:
      return "bool";
    case ColumnType::kString:
      return "string";
  }
  return "string";
}

ColumnType ColumnProfile::type() const {
  if (non_empty == 0) return ColumnType::kString;
  if (maybe_int) return ColumnType::kInt;
  if (maybe_float) return ColumnType::kFloat;
  if (maybe_bool) return ColumnType::kBool;
  return ColumnType::kString;
}

void ColumnProfile::Add(std::string_view cell) {
  cell = Trim(cell);
  if (cell.empty()) {
    ++empty;
    return;
  }
  bool first = non_empty++ == 0;
  if (!distinct.full()) distinct.Insert(HashOf(cell));
  if (!maybe_int && !maybe_float && !maybe_bool) return;
  int64_t i = 0;
  bool is_int = maybe_int && ParseInt64(cell, i);
  if (is_int) {
    int_min = first ? i : std::min(int_min, i);
    int_max = first ? i : std::max(int_max, i);
  } else {
    maybe_int = false;
  }
  if (maybe_float) {
    double d = static_cast<double>(i);
    if (is_int || ParseFiniteDouble(cell, d)) {
      float_min = first ? d : std::min(float_min, d);
      float_max = first ? d : std::max(float_max, d);
      max_decimals = std::max(max_decimals, Decimals(cell));
      max_significant_digits = std::max(max_significant_digits, SignificantDigits(cell));
      exponent = exponent || cell.find_first_of("eE") != std::string_view::npos;
    } else {
      maybe_float = false;
    }
  }
  if (maybe_bool) {
    if (!IsBool(cell)) {
      maybe_bool = false;
    } else if (first) {
      bool_style = StyleOf(cell);
    }
  }
}

Result<CsvProfile> ProfileCsv(const std::string& path, bool track_distinct) {
  ASSIGN_OR_RETURN(InputFile file, InputFile::Open(path));
  CsvReader reader(std::move(file));
  ASSIGN_OR_RETURN(bool has_header, reader.Next());
  if (!has_header) {
    return InvalidArgumentError(
        "the file is empty: a CSV table needs a header line naming its columns");
  }
  CsvProfile profile;
  std::span<const std::string_view> header = reader.fields();  // Valid until the next Next().
  size_t distinct_cap = 0;
  if (track_distinct) {
    distinct_cap = std::clamp<size_t>(kMaxDistinctTotal / header.size(), 1, kMaxDistinctPerColumn);
  }
  profile.columns.reserve(header.size());
  for (size_t i = 0; i < header.size(); ++i) {
    if (!IsValidUtf8(header[i])) {
      return InvalidArgumentError("line " + std::to_string(reader.line()) +
                                  ": the name of column " + std::to_string(i + 1) +
                                  " is not UTF-8 text; save the file as UTF-8");
    }
    ColumnProfile& column = profile.columns.emplace_back();
    column.name = header[i];
    column.distinct = BoundedHashSet(distinct_cap);
  }
  profile.crlf = reader.crlf();
  for (;;) {
    ASSIGN_OR_RETURN(bool more, reader.Next());
    if (!more) break;
    std::span<const std::string_view> fields = reader.fields();
    if (fields.size() != profile.columns.size()) {
      return InvalidArgumentError("line " + std::to_string(reader.line()) + " has " +
                                  Fields(fields.size()) + ", the header has " +
                                  std::to_string(profile.columns.size()));
    }
    for (size_t i = 0; i < fields.size(); ++i) profile.columns[i].Add(fields[i]);
    ++profile.rows;
  }
  return profile;
}

nlohmann::json CsvSchema(const CsvProfile& profile) {
  nlohmann::json columns = nlohmann::json::array();
  for (const ColumnProfile& column : profile.columns) {
    columns.push_back({{"name", column.name}, {"type", ColumnTypeName(column.type())}});
  }
  return {{"kind", "table"}, {"columns", std::move(columns)}, {"rows", profile.rows}};
}

// ---- Mock ----

namespace {

// One mock column: its private type, and the owner's parameters for it, if any.
struct MockColumn {
  std::string name;
  ColumnType type;
  const MockValueParams* params = nullptr;
  bool any_value = false;  // Whether a non-empty cell was written.
};

// Checks the owner's parameters of column `name` fit its private type `type`.
Status CheckColumnParams(const std::string& name, ColumnType type, const MockValueParams& p) {
  const std::string where = "columns." + name;
  const std::string holds = "column '" + name + "' holds " +
                            std::string(type == ColumnType::kInt     ? "integers"
                                        : type == ColumnType::kFloat ? "floats"
                                        : type == ColumnType::kBool  ? "booleans"
                                                                     : "text");
  if (p.bounds && type != ColumnType::kInt && type != ColumnType::kFloat) {
    return InvalidArgumentError(where + ".min: " + holds + "; min and max apply to numbers only");
  }
  if (p.bounds && type == ColumnType::kInt && !p.bounds->integers) {
    return InvalidArgumentError(where + ".min: " + holds + "; give whole-number bounds");
  }
  if (!p.categories) return Status::Ok();
  ColumnProfile as_read;  // How the categories read back, for a text column.
  for (size_t i = 0; i < p.categories->size(); ++i) {
    const nlohmann::json& c = (*p.categories)[i];
    bool fits = (type == ColumnType::kInt && c.is_number_integer()) ||
                (type == ColumnType::kFloat && c.is_number()) ||
                (type == ColumnType::kBool && c.is_boolean()) ||
                (type == ColumnType::kString && c.is_string());
    if (!fits) {
      return InvalidArgumentError(where + ".categories[" + std::to_string(i) + "]: " + holds +
                                  "; every category must be of that type");
    }
    if (c.is_string()) as_read.Add(c.get_ref<const std::string&>());
  }
  if (type == ColumnType::kString && as_read.type() != ColumnType::kString) {
    return InvalidArgumentError(where + ".categories: every category reads as a " +
                                std::string(ColumnTypeName(as_read.type())) +
                                ", so the mock's column would not be text; add a category that "
                                "is not one");
  }
  return Status::Ok();
}

// One cell of `column`, never empty when `must_have_value`.
std::string MockCell(Rng& rng, MockColumn& column, bool must_have_value) {
  const MockValueParams* p = column.params;
  if (!must_have_value && p != nullptr && DrawChance(rng, p->null_fraction)) return {};
  column.any_value = true;
  if (p != nullptr && p->categories) {
    const nlohmann::json& c = (*p->categories)[UniformIndex(rng, p->categories->size())];
    if (c.is_string()) return c.get<std::string>();
    if (c.is_boolean()) return c.get<bool>() ? "true" : "false";
    if (column.type == ColumnType::kFloat) return FormatReal(c.get<double>());
    return c.dump();
  }
  switch (column.type) {
    case ColumnType::kInt:
      return std::to_string(DrawInt(rng, p));
    case ColumnType::kFloat:
      return FormatReal(DrawReal(rng, p));
    case ColumnType::kBool:
      return UniformIndex(rng, 2) ? "true" : "false";
    case ColumnType::kString:
      break;
  }
  return DrawLabel(rng, column.name);
}

}  // namespace

Result<nlohmann::json> WriteCsvMock(const std::string& in_path, const MockParams& params,
                                    uint64_t seed, OutputFile& out) {
  // Of the private file only the header and the column types are used.
  ASSIGN_OR_RETURN(CsvProfile profile, ProfileCsv(in_path, /*track_distinct=*/false));
  std::vector<MockColumn> columns;
  for (const ColumnProfile& c : profile.columns) columns.push_back({c.name, c.type()});
  if (params.columns) {
    for (const auto& [name, spec] : *params.columns) {
      bool found = false;
      for (MockColumn& column : columns) {
        if (column.name != name) continue;
        RETURN_IF_ERROR(CheckColumnParams(name, column.type, spec));
        column.params = &spec;
        found = true;
      }
      if (!found) {
        return InvalidArgumentError("columns." + name + ": the table has no column named '" + name +
                                    "'");
      }
    }
  }
  const uint64_t rows = params.rows.value_or(kDefaultMockRows);
  Rng rng(seed);
  MockBudget budget("ask for fewer rows");
  // Refused before writing when even one byte a cell would be too much.
  budget.Add(rows * 2 * columns.size());
  RETURN_IF_ERROR(budget.Check());
  budget = MockBudget("ask for fewer rows");
  CsvWriter writer(out, /*crlf=*/false);
  for (const MockColumn& column : columns) {
    writer.Field(column.name);
    budget.Add(column.name.size() + 1);
  }
  writer.EndRecord();
  for (uint64_t row = 0; row < rows; ++row) {
    const bool last = row + 1 == rows;
    for (MockColumn& column : columns) {
      // A number or boolean column of empty cells only would read back as text.
      std::string cell =
          MockCell(rng, column, last && !column.any_value && column.type != ColumnType::kString);
      budget.Add(cell.size() + 3);
      writer.Field(cell);
    }
    writer.EndRecord();
    if (row % 1024 == 0) {
      RETURN_IF_ERROR(budget.Check());
      RETURN_IF_ERROR(out.status());
    }
  }
  RETURN_IF_ERROR(budget.Check());
  RETURN_IF_ERROR(out.status());
  nlohmann::json schema_columns = nlohmann::json::array();
  for (const MockColumn& column : columns) {
    schema_columns.push_back({{"name", column.name}, {"type", ColumnTypeName(column.type)}});
  }
  return nlohmann::json{{"kind", "table"}, {"columns", std::move(schema_columns)}, {"rows", rows}};
}

}  // namespace datasite::data::internal
