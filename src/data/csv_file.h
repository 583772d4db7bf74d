// CSV: an RFC 4180 record reader and writer, the one-pass profile of a table's columns, its
// schema, and its mock.
#ifndef DATASITE_DATA_CSV_FILE_H_
#define DATASITE_DATA_CSV_FILE_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "data/bounded_hash_set.h"
#include "data/file_io.h"
#include "data/mock_params.h"

namespace datasite::data::internal {

// One record (its bytes, quotes and line ends included) may not be longer than this, so a reader
// holds at most this much beside its read buffer.
inline constexpr size_t kMaxCsvRecordBytes = 1 << 20;
inline constexpr size_t kMaxCsvColumns = 10'000;
// Distinct values are counted up to this many per column...
inline constexpr size_t kMaxDistinctPerColumn = 1000;
// ...and this many over all columns (tables over 250 columns get a lower cap per column), so that
// the counting takes a few MiB at most.
inline constexpr size_t kMaxDistinctTotal = 250'000;

// Reads the records of an RFC 4180 file one at a time: fields separated by commas; records ended
// by LF, CRLF or CR; a field in double quotes may hold commas, line ends and doubled quotes (""),
// and nothing may follow its closing quote but a comma or a line end. A quote inside an unquoted
// field is kept as is. Blank lines are skipped, a UTF-8 byte order mark at the start is dropped,
// and the last record may or may not end with a line end. Memory: the read buffer plus one record
// (its fields are kept in one string). Not thread-safe.
class CsvReader {
 public:
  explicit CsvReader(InputFile file) : file_(std::move(file)) {}

  // Reads the next record: true when there is one, false at the end of the file. kInvalidArgument
  // for a quoted field never closed or followed by other text, or a record over the limits above.
  Result<bool> Next();
  // The fields of the last record read; valid until the next call to Next().
  std::span<const std::string_view> fields() const { return views_; }
  // The line (1-based) on which the last record read started.
  int64_t line() const { return record_line_; }
  // Whether the first record ended with CRLF.
  bool crlf() const { return crlf_; }

 private:
  Status Error(const std::string& what) const;

  InputFile file_;
  std::string record_;                   // The fields of the last record, one after the other...
  std::vector<size_t> ends_;             // ...each ending at this offset in record_.
  std::vector<std::string_view> views_;  // Into record_.
  int64_t lines_done_ = 0;               // Line ends consumed so far.
  int64_t record_line_ = 0;
  bool started_ = false;
  bool first_done_ = false;
  bool crlf_ = false;
};

// Writes CSV records through an OutputFile, quoting a field when it holds a comma, a quote or a
// line end, or starts with a UTF-8 byte order mark, and writing a lone empty field as "" so that
// the record is not a blank line. Write errors are left in the OutputFile's status(). Not
// thread-safe.
class CsvWriter {
 public:
  CsvWriter(OutputFile& out, bool crlf) : out_(out), crlf_(crlf) {}

  void Field(std::string_view value);
  void EndRecord();

 private:
  OutputFile& out_;
  bool crlf_;
  size_t fields_ = 0;
  bool only_field_empty_ = false;
};

enum class ColumnType { kInt, kFloat, kBool, kString };
// "int", "float", "bool" or "string".
std::string_view ColumnTypeName(ColumnType type);

enum class BoolStyle { kLower, kCapitalized, kUpper };

// What one pass learns about a column. Cells are trimmed of spaces and tabs; an empty cell counts
// for no type. A column is int if every non-empty cell parses as a 64-bit integer, else float if
// each parses as a finite double, else bool if each is true/false in any case, else string (also
// when every cell is empty).
struct ColumnProfile {
  std::string name;
  bool maybe_int = true;
  bool maybe_float = true;
  bool maybe_bool = true;
  uint64_t empty = 0;
  uint64_t non_empty = 0;
  int64_t int_min = 0;  // Over the cells when maybe_int.
  int64_t int_max = 0;
  double float_min = 0;  // Over the cells when maybe_float.
  double float_max = 0;
  int max_decimals = 0;                      // Digits after the point, most seen in a cell.
  int max_significant_digits = 0;            // Most seen in a cell (trailing zeros count).
  bool exponent = false;                     // Whether some cell is written 1.5e3.
  BoolStyle bool_style = BoolStyle::kLower;  // Of the first cell, when maybe_bool.
  BoundedHashSet distinct;  // Hashes of the distinct non-empty cells, when tracked.

  ColumnType type() const;
  void Add(std::string_view cell);
};

struct CsvProfile {
  std::vector<ColumnProfile> columns;
  uint64_t rows = 0;  // Records after the header.
  bool crlf = false;
};

// One pass over the file at `path`. kInvalidArgument when it is not a valid CSV table: empty (no
// header), a header not in UTF-8, a record with another number of fields than the header, or
// CsvReader's refusals. With `track_distinct`, counts each column's distinct values (capped).
Result<CsvProfile> ProfileCsv(const std::string& path, bool track_distinct);

// {"kind": "table", "columns": [{"name", "type"}...], "rows": N}.
nlohmann::json CsvSchema(const CsvProfile& profile);

// Writes a mock of the CSV file at `in_path` to `out`, which the caller closes; returns its schema.
// See GenerateMock.
Result<nlohmann::json> WriteCsvMock(const std::string& in_path, const MockParams& params,
                                    uint64_t seed, OutputFile& out);

}  // namespace datasite::data::internal

#endif  // DATASITE_DATA_CSV_FILE_H_
