#include "data/mock.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/format.h"
#include "data/json_file.h"
#include "data/schema.h"
#include "data/test_util.h"

namespace datasite::data {
namespace {

using nlohmann::json;
using testing::Bytes;
using testing::NpyDict;
using testing::NpyFile;
using testing::ReadCsv;
using testing::ReadFile;
using testing::TempFile;
using testing::TempPath;
using testing::Values;

using Table = std::vector<std::vector<std::string>>;

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

MockParams Params(const json& doc) {
  auto p = ParseMockParams(doc);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : MockParams{};
}

// Makes a mock of `in_path`; checks the schema it returns is InferSchema's of the mock. Returns
// the mock's path.
std::string MakeMock(Format format, const std::string& in_path, const json& params = nullptr,
                     uint64_t seed = 1, const std::string& name = "mock") {
  std::string out_path = TempPath(name);
  auto schema = GenerateMock(format, in_path, out_path, Params(params), seed);
  EXPECT_TRUE(schema.ok()) << schema.status().ToString();
  if (!schema.ok()) return out_path;
  auto of_mock = InferSchema(format, out_path);
  EXPECT_TRUE(of_mock.ok()) << of_mock.status().ToString();
  if (of_mock.ok()) {
    EXPECT_EQ(*schema, *of_mock);
  }
  return out_path;
}

// The refusal of GenerateMock for `in_path`, which must leave no output file.
Status MockRefusal(Format format, const std::string& in_path, const json& params = nullptr) {
  std::string out_path = TempPath("refused-mock");
  auto parsed = ParseMockParams(params);
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  if (!parsed.ok()) return parsed.status();
  auto schema = GenerateMock(format, in_path, out_path, *parsed, 1);
  EXPECT_FALSE(schema.ok());
  EXPECT_FALSE(Exists(out_path));
  return schema.status();
}

std::vector<std::string> Column(const Table& table, size_t column) {
  std::vector<std::string> cells;
  for (size_t row = 1; row < table.size(); ++row) cells.push_back(table[row][column]);
  return cells;
}

double AsDouble(const std::string& s) {
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  EXPECT_TRUE(ec == std::errc() && end == s.data() + s.size()) << s;
  return v;
}

int64_t AsInt(const std::string& s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  EXPECT_TRUE(ec == std::errc() && end == s.data() + s.size()) << s;
  return v;
}

// ---- CSV ----

// A private table built to be recognizable in a mock (the leaks of issue 11): 5,000 rows; emails
// and names of distinctive lengths; empty cells at chosen rows; an amount whose range has the
// midpoint 1450.45; a code column with exactly 37 distinct values.
std::string PrivateTable(int rows = 5000, uint32_t salt = 0) {
  std::string csv = "id,email,name,amount,code,member\n";
  for (int i = 0; i < rows; ++i) {
    std::string name(3 + (i * 7 + salt) % 29, static_cast<char>('a' + (i + salt) % 26));
    std::string amount = std::to_string(1000.123 + (i * 31 + salt) % 901) + "7";
    if (i == 0) amount = "1000.123";
    if (i == 1) amount = "1900.777";
    std::string email = "patient" + std::to_string(i * 13 + salt) + "@hospital.org";
    bool hole = i % 17 == 3;  // empty cells at rows 3, 20, 37, ...
    csv += std::to_string(i + 1) + "," + email + "," + (hole ? "" : name) + "," +
           (hole ? "" : amount) + ",C" + std::to_string((i + salt) % 37) + "," +
           ((i + salt) % 3 ? "True" : "FALSE") + "\n";
  }
  return csv;
}

TEST(CsvMockTest, KeepsOnlyNamesAndTypesWithAFixedRowCount) {
  std::string in = TempFile("in.csv", PrivateTable());
  auto private_schema = InferSchema(Format::kCsv, in);
  ASSERT_TRUE(private_schema.ok());
  ASSERT_EQ((*private_schema)["rows"], 5000);
  Table mock = ReadCsv(MakeMock(Format::kCsv, in));
  ASSERT_EQ(mock.size(), 1 + kDefaultMockRows);
  EXPECT_EQ(mock[0], (std::vector<std::string>{"id", "email", "name", "amount", "code", "member"}));
  auto schema = InferSchema(Format::kCsv, TempPath("mock"));
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ((*schema)["columns"], (*private_schema)["columns"]);
}

// Regression (issue 11, "mocks tell the private data"): the old mock kept the row count, every
// empty cell, each string column's distinct count, and the numbers' jittered range, whose
// midpoint gave away the private one.
TEST(CsvMockTest, RevealsNoRowCountNullsLengthsMidpointOrDistinctCount) {
  std::string in = TempFile("in.csv", PrivateTable());
  Table mock = ReadCsv(MakeMock(Format::kCsv, in));
  ASSERT_EQ(mock.size(), 1 + kDefaultMockRows);  // not 5,000
  std::set<size_t> lengths;
  std::set<std::string> codes;
  double amount_sum = 0;
  for (size_t row = 1; row < mock.size(); ++row) {
    for (const std::string& cell : mock[row]) EXPECT_FALSE(cell.empty()) << "row " << row;
    EXPECT_EQ(mock[row][1].find('@'), std::string::npos) << mock[row][1];
    EXPECT_EQ(mock[row][2].rfind("name_", 0), 0u) << mock[row][2];
    lengths.insert(mock[row][2].size());
    codes.insert(mock[row][4]);
    double amount = AsDouble(mock[row][3]);
    EXPECT_GE(amount, kDefaultRealMin);
    EXPECT_LE(amount, kDefaultRealMax);
    amount_sum += amount;
    EXPECT_TRUE(mock[row][5] == "true" || mock[row][5] == "false") << mock[row][5];
  }
  EXPECT_LE(lengths.size(), 2u);  // "name_1".."name_10": the column name's length, plus 1 or 2
  EXPECT_LE(codes.size(), kSyntheticLabels);      // not 37
  EXPECT_LT(amount_sum / kDefaultMockRows, 1.0);  // nowhere near 1450.45
}

// The strongest form of the above: two private tables with the same columns and types and
// nothing else in common give the same mock, byte for byte.
TEST(CsvMockTest, DependsOnTheStructureAlone) {
  std::string a = ReadFile(
      MakeMock(Format::kCsv, TempFile("a.csv", PrivateTable(5000, 0)), nullptr, 9, "mock-a"));
  std::string b = ReadFile(
      MakeMock(Format::kCsv, TempFile("b.csv", PrivateTable(12, 5)), nullptr, 9, "mock-b"));
  EXPECT_EQ(a, b);
  json params = {{"rows", 40}, {"columns", {{"amount", {{"min", 5}, {"max", 6}}}}}};
  std::string c = ReadFile(MakeMock(Format::kCsv, TempPath("a.csv"), params, 9, "mock-c"));
  std::string d = ReadFile(MakeMock(Format::kCsv, TempPath("b.csv"), params, 9, "mock-d"));
  EXPECT_EQ(c, d);
}

TEST(CsvMockTest, SameSeedSameMockOtherSeedOtherMock) {
  std::string in = TempFile("in.csv", PrivateTable(50));
  std::string a = ReadFile(MakeMock(Format::kCsv, in, nullptr, 3, "a"));
  std::string b = ReadFile(MakeMock(Format::kCsv, in, nullptr, 3, "b"));
  std::string c = ReadFile(MakeMock(Format::kCsv, in, nullptr, 4, "c"));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(CsvMockTest, UsesTheOwnersRowsBoundsCategoriesAndNullFraction) {
  std::string in = TempFile("in.csv", "age,sex,score,city,ok\n34,F,0.5,Oslo,true\n");
  json params = {{"rows", 2000},
                 {"columns",
                  {{"age", {{"min", 18}, {"max", 20}}},
                   {"sex", {{"categories", {"F", "M", "X"}}}},
                   {"score", {{"min", -2.5}, {"max", -2.25}, {"null_fraction", 0.25}}},
                   {"ok", {{"categories", {true}}}}}}};
  Table mock = ReadCsv(MakeMock(Format::kCsv, in, params));
  ASSERT_EQ(mock.size(), 2001u);
  std::set<int64_t> ages;
  std::set<std::string> sexes;
  int empty_scores = 0;
  for (size_t row = 1; row < mock.size(); ++row) {
    ages.insert(AsInt(mock[row][0]));
    sexes.insert(mock[row][1]);
    if (mock[row][2].empty()) {
      ++empty_scores;
    } else {
      EXPECT_GE(AsDouble(mock[row][2]), -2.5);
      EXPECT_LE(AsDouble(mock[row][2]), -2.25);
    }
    EXPECT_FALSE(mock[row][3].empty());  // no null_fraction: no empty cell
    EXPECT_EQ(mock[row][4], "true");
  }
  EXPECT_EQ(ages, (std::set<int64_t>{18, 19, 20}));
  EXPECT_EQ(sexes, (std::set<std::string>{"F", "M", "X"}));
  EXPECT_GT(empty_scores, 400);
  EXPECT_LT(empty_scores, 600);
}

TEST(CsvMockTest, FloatsReadBackAsFloatsAndIntegralCategoriesToo) {
  std::string in = TempFile("in.csv", "x,y\n1.5,2.5\n");
  json params = {{"columns", {{"x", {{"min", 1}, {"max", 3}}}, {"y", {{"categories", {1, 2}}}}}}};
  Table mock = ReadCsv(MakeMock(Format::kCsv, in, params));  // MakeMock checks the types
  for (const std::string& y : Column(mock, 1)) EXPECT_TRUE(y == "1.0" || y == "2.0") << y;
}

TEST(CsvMockTest, ANumberColumnAllNullKeepsOneValueAndItsType) {
  std::string in = TempFile("in.csv", "n\n1\n");
  Table mock = ReadCsv(
      MakeMock(Format::kCsv, in, {{"rows", 5}, {"columns", {{"n", {{"null_fraction", 1}}}}}}));
  std::vector<std::string> cells = Column(mock, 0);
  EXPECT_EQ(std::count(cells.begin(), cells.end(), ""), 4);
}

TEST(CsvMockTest, QuotesNamesThatNeedIt) {
  std::string in = TempFile("in.csv", "\"a,b\",\"say \"\"hi\"\"\"\n1,x\n");
  Table mock = ReadCsv(MakeMock(Format::kCsv, in, {{"rows", 3}}));
  ASSERT_EQ(mock.size(), 4u);
  EXPECT_EQ(mock[0], (std::vector<std::string>{"a,b", "say \"hi\""}));
  EXPECT_EQ(mock[1][1].rfind("say \"hi\"_", 0), 0u);
}

TEST(CsvMockTest, HeaderOnlyTableGetsRowsOfLabels) {
  Table mock = ReadCsv(MakeMock(Format::kCsv, TempFile("in.csv", "a,b\n"), {{"rows", 2}}));
  ASSERT_EQ(mock.size(), 3u);
  EXPECT_EQ(mock[1][0].rfind("a_", 0), 0u);
}

TEST(CsvMockRefusalTest, NamesTheBadColumnParameter) {
  std::string in = TempFile("in.csv", "age,name,score\n3,ann,1.5\n");
  struct Case {
    json params;
    std::string message;
  } cases[] = {
      {{{"columns", {{"agee", {{"min", 0}, {"max", 1}}}}}},
       "columns.agee: the table has no column named 'agee'"},
      {{{"columns", {{"name", {{"min", 0}, {"max", 1}}}}}},
       "columns.name.min: column 'name' holds text; min and max apply to numbers only"},
      {{{"columns", {{"age", {{"min", 0.5}, {"max", 1}}}}}},
       "columns.age.min: column 'age' holds integers; give whole-number bounds"},
      {{{"columns", {{"age", {{"categories", {1, "two"}}}}}}},
       "columns.age.categories[1]: column 'age' holds integers; every category must be of that "
       "type"},
      {{{"columns", {{"name", {{"categories", {"1", "2"}}}}}}},
       "columns.name.categories: every category reads as a int, so the mock's column would not be "
       "text; add a category that is not one"},
      {{{"columns", {{"score", {{"categories", {true}}}}}}},
       "columns.score.categories[0]: column 'score' holds floats; every category must be of that "
       "type"},
      {{{"paths", {{"/a", {{"length", 1}}}}}},
       "paths: applies to JSON documents only; this asset is csv"},
      {{{"public_keys", {""}}}, "public_keys: applies to JSON documents only; this asset is csv"},
      {{{"values", {{"min", 0}, {"max", 1}}}},
       "values: applies to .npy arrays only; this asset is csv"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.params.dump());
    Status s = MockRefusal(Format::kCsv, in, c.params);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), c.message);
  }
}

TEST(CsvMockRefusalTest, AMockOverTheSizeCapIsRefused) {
  std::string header;
  for (int i = 0; i < 300; ++i) header += (i ? ",c" : "c") + std::to_string(i);
  std::string in = TempFile("in.csv", header + "\n");
  Status s = MockRefusal(Format::kCsv, in, {{"rows", kMaxMockRows}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "the mock would be larger than 256 MiB; ask for fewer rows");
}

TEST(CsvMockRefusalTest, RefusesInvalidInputAndLeavesNoFile) {
  Status s = MockRefusal(Format::kCsv, TempFile("in.csv", "a,b\n1,2\n3\n"));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "line 3 has 1 field, the header has 2");
}

TEST(CsvMockRefusalTest, MissingInputIsNotFound) {
  EXPECT_EQ(MockRefusal(Format::kCsv, TempPath("absent.csv")).code(), StatusCode::kNotFound);
}

TEST(CsvMockRefusalTest, RefusesToOverwriteItsInput) {
  std::string in = TempFile("in.csv", "a\n1\n");
  auto schema = GenerateMock(Format::kCsv, in, in, {}, 1);
  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(ReadFile(in), "a\n1\n");
}

TEST(RawMockTest, IsRefused) {
  std::string out = TempPath("mock.bin");
  auto schema = GenerateMock(Format::kRaw, TempFile("in.bin", "bytes"), out, {}, 1);
  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(schema.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(schema.status().message(), "a mock can't be generated for raw bytes; upload one");
  EXPECT_FALSE(Exists(out));
}

// Peak resident memory (VmHWM) can be reset through /proc/self/clear_refs on Linux.
bool ResetPeakMemory() {
  std::ofstream out("/proc/self/clear_refs");
  out << "5";
  out.flush();
  return out.good();
}

int64_t StatusKb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// Unoptimized builds parse some 20 times slower: they stream a smaller table through the same path.
#ifdef __OPTIMIZE__
constexpr size_t kStreamingBytes = 20'000'000;
#else
constexpr size_t kStreamingBytes = 4'000'000;
#endif

// A 20 MB table is read in one streaming pass for its mock, without the process growing by
// anything like the file's size (sanitizers' allocators make RSS meaningless there).
TEST(CsvStreamingTest, TwentyMegabytesReadInBoundedMemory) {
  std::string in_path = TempPath("big.csv");
  {
    std::ofstream out(in_path, std::ios::binary);
    std::string chunk;
    out << "id,value,flag,city,note\n";
    uint64_t rows = 0;
    for (size_t bytes = 0; bytes < kStreamingBytes; ++rows) {
      chunk += std::to_string(rows) + "," + std::to_string(rows % 1000) + "." +
               std::to_string(rows % 97) + "," + (rows % 3 ? "true" : "false") + ",city" +
               std::to_string(rows % 50) + ",\"note, " + std::to_string(rows) + "\"\n";
      if (chunk.size() > 1 << 16) {
        out << chunk;
        bytes += chunk.size();
        chunk.clear();
      }
    }
    out << chunk;
  }
  int64_t rss_before = StatusKb("VmRSS");
  bool can_measure = !kSanitized && rss_before > 0 && ResetPeakMemory();

  auto schema = InferSchema(Format::kCsv, in_path);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_GT((*schema)["rows"].get<size_t>(), kStreamingBytes / 60);
  std::string out_path = TempPath("big-mock.csv");
  auto mock = GenerateMock(Format::kCsv, in_path, out_path, {}, 7);
  ASSERT_TRUE(mock.ok()) << mock.status().ToString();
  EXPECT_EQ((*mock)["columns"], (*schema)["columns"]);
  EXPECT_EQ((*mock)["rows"], kDefaultMockRows);

  if (can_measure) {
    int64_t peak_growth_kb = StatusKb("VmHWM") - rss_before;
    RecordProperty("peak_growth_kb", std::to_string(peak_growth_kb));
    EXPECT_LT(peak_growth_kb, 8 * 1024) << "the CSV path should stream, not load the file";
  }
  std::filesystem::remove(in_path);
  std::filesystem::remove(out_path);
}

// ---- npy ----

std::string NpyOf(const std::string& descr, const std::string& shape, const std::string& data,
                  bool fortran = false) {
  return NpyFile(NpyDict(descr, shape, fortran), data);
}

// The data bytes of a .npy file.
std::string NpyData(const std::string& file) {
  size_t header =
      file[6] == 1
          ? 10 + (static_cast<unsigned char>(file[8]) | static_cast<unsigned char>(file[9]) << 8)
          : 0;
  return file.substr(header);
}

// Regression (issue 11): the old mock kept the shape, the count and places of NaNs and the
// jittered range of the values.
TEST(NpyMockTest, KeepsDtypeAndTrailingDimensionsOnly) {
  std::vector<double> values;
  for (int i = 0; i < 5000 * 3; ++i) {
    values.push_back(i % 11 == 0 ? std::nan("") : 1000.123 + (i % 901));
  }
  std::string in = TempFile("in.npy", NpyOf("<f8", "(5000, 3)", Bytes(values)));
  std::string out = MakeMock(Format::kNpy, in);
  auto schema = InferSchema(Format::kNpy, out);
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ(*schema, (json{{"kind", "array"}, {"dtype", "<f8"}, {"shape", {100, 3}}}));
  std::vector<double> mock = Values<double>(NpyData(ReadFile(out)));
  ASSERT_EQ(mock.size(), 300u);
  for (double v : mock) {
    EXPECT_FALSE(std::isnan(v));
    EXPECT_GE(v, kDefaultRealMin);
    EXPECT_LE(v, kDefaultRealMax);
  }
}

TEST(NpyMockTest, DependsOnTheStructureAlone) {
  std::string a = ReadFile(
      MakeMock(Format::kNpy,
               TempFile("a.npy", NpyOf("<i4", "(7, 2)", Bytes(std::vector<int32_t>(14, 123456)))),
               nullptr, 5, "mock-a"));
  std::string b = ReadFile(MakeMock(
      Format::kNpy,
      TempFile("b.npy", NpyOf("<i4", "(3, 2)", Bytes(std::vector<int32_t>{-9, 9, 8, 7, 6, 5}))),
      nullptr, 5, "mock-b"));
  EXPECT_EQ(a, b);
}

TEST(NpyMockTest, EveryDtypeAndByteOrderReadsBack) {
  for (const char* descr :
       {"|b1", "|i1", "<i2", ">i4", "<i8", "|u1", ">u2", "<u4", "<u8", "<f4", ">f8"}) {
    SCOPED_TRACE(descr);
    int size = descr[2] - '0';
    std::string in = TempFile("in.npy", NpyOf(descr, "(4,)", std::string(4 * size, '\1')));
    std::string out = MakeMock(Format::kNpy, in, {{"rows", 10}});
    auto schema = InferSchema(Format::kNpy, out);
    ASSERT_TRUE(schema.ok());
    EXPECT_EQ((*schema)["shape"], json({10}));
    EXPECT_EQ((*schema)["dtype"], descr);
  }
}

// Issue 12: arrays of strings, datetimes, complex numbers and records are stored; their mocks keep
// the dtype and are zero-filled (datetimes draw int64 counts like any int64).
TEST(NpyMockTest, OpaqueDtypesAreZeroFilled) {
  const std::string record = "[('id', '<i4'), ('name', '<U2')]";
  struct Case {
    std::string dict;
    size_t item_size;
  } cases[] = {
      {NpyDict("<U3", "(2,)"), 12},
      {NpyDict("|S5", "(2,)"), 5},
      {NpyDict("<c16", "(2,)"), 16},
      {"{'descr': " + record + ", 'fortran_order': False, 'shape': (2,), }", 12},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.dict);
    std::string in = TempFile("in.npy", NpyFile(c.dict, std::string(2 * c.item_size, 'x')));
    std::string out = MakeMock(Format::kNpy, in, {{"rows", 7}});
    std::string data = NpyData(ReadFile(out));
    EXPECT_EQ(data, std::string(7 * c.item_size, '\0'));
    EXPECT_EQ(MockRefusal(Format::kNpy, in, {{"values", {{"min", 1}, {"max", 2}}}}).message(),
              "values: the mock of an array of dtype " +
                  (*InferSchema(Format::kNpy, in))["dtype"].get<std::string>().substr(0, 40) +
                  " is zero-filled; it takes no value "
                  "parameters");
  }
  std::string dates = MakeMock(
      Format::kNpy, TempFile("m.npy", NpyOf("<M8[ns]", "(2,)", std::string(16, 'x'))), nullptr);
  EXPECT_NE(ReadFile(dates).find("'descr': '<M8[ns]'"), std::string::npos);
}

TEST(NpyMockTest, UsesTheOwnersBoundsAndNanFraction) {
  std::string in = TempFile("in.npy", NpyOf(">f4", "(2, 2)", std::string(16, '\0')));
  std::string out =
      MakeMock(Format::kNpy, in,
               {{"rows", 1000}, {"values", {{"min", 5}, {"max", 6}, {"null_fraction", 0.5}}}});
  std::vector<float> mock = Values<float>(NpyData(ReadFile(out)), true);
  ASSERT_EQ(mock.size(), 2000u);
  int nans = 0;
  for (float v : mock) {
    if (std::isnan(v)) {
      ++nans;
      continue;
    }
    EXPECT_GE(v, 5.0f);
    EXPECT_LE(v, 6.0f);
  }
  EXPECT_GT(nans, 850);
  EXPECT_LT(nans, 1150);
  std::string ints = MakeMock(Format::kNpy, TempFile("i.npy", NpyOf("|u1", "(3,)", "abc")),
                              {{"values", {{"min", 250}, {"max", 255}}}}, 1, "ints");
  for (uint8_t v : Values<uint8_t>(NpyData(ReadFile(ints)))) EXPECT_GE(v, 250);
}

TEST(NpyMockTest, KeepsFortranOrderAndScalars) {
  std::string f =
      MakeMock(Format::kNpy, TempFile("f.npy", NpyOf("<f8", "(2, 3)", std::string(48, '\0'), true)),
               nullptr, 1, "f");
  EXPECT_NE(ReadFile(f).find("'fortran_order': True"), std::string::npos);
  std::string s = MakeMock(
      Format::kNpy, TempFile("s.npy", NpyOf("<f8", "()", std::string(8, '\0'))), nullptr, 1, "s");
  auto schema = InferSchema(Format::kNpy, s);
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ((*schema)["shape"], json::array());
}

TEST(NpyMockRefusalTest, NamesTheBadParameter) {
  std::string u8 = TempFile("u8.npy", NpyOf("|u1", "(3,)", "abc"));
  std::string scalar = TempFile("s.npy", NpyOf("<f8", "()", std::string(8, '\0')));
  std::string wide =
      TempFile("w.npy", NpyOf("<f8", "(1, 1000, 1000)", std::string(8'000'000, '\0')));
  struct Case {
    std::string in;
    json params;
    std::string message;
  } cases[] = {
      {u8, {{"values", {{"min", -1}, {"max", 3}}}}, "values.min: the bounds do not fit dtype |u1"},
      {u8,
       {{"values", {{"min", 0.5}, {"max", 3}}}},
       "values.min: dtype |u1 holds integers; give whole-number bounds"},
      {u8,
       {{"values", {{"null_fraction", 0.1}}}},
       "values.null_fraction: dtype |u1 has no NaN; only float arrays may have nulls"},
      {scalar, {{"rows", 5}}, "rows: the array has no dimensions (it is a single value)"},
      {wide, nullptr, "rows: the mock would be larger than 256 MiB; ask for at most 33 rows"},
      {u8, {{"columns", json::object()}}, "columns: applies to CSV tables only; this asset is npy"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.params.dump());
    Status s = MockRefusal(Format::kNpy, c.in, c.params);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), c.message);
  }
}

TEST(NpyMockRefusalTest, RefusesObjectArraysAndLeavesNoFile) {
  Status s =
      MockRefusal(Format::kNpy, TempFile("o.npy", NpyOf("|O", "(1,)", std::string(8, '\0'))));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
}

// ---- JSON ----

json ReadJson(const std::string& path) { return json::parse(ReadFile(path)); }

// Regression (issue 11): the old mock copied keys such as emails verbatim and kept every array's
// length, every null and every string's length.
TEST(JsonMockTest, KeysAreSyntheticUnlessDeclaredPublic) {
  std::string in = TempFile("in.json", R"({"alice.smith@hospital.org": {"age": 34, "ward": "B"},
      "bob.jones@hospital.org": {"age": 51, "ward": null},
      "carol@hospital.org": {"age": 47, "ward": "C12", "notes": [1, 2, 3, 4, 5, 6, 7]}})");
  std::string text = ReadFile(MakeMock(Format::kJson, in));
  EXPECT_EQ(text.find('@'), std::string::npos) << text;
  EXPECT_EQ(text.find("age"), std::string::npos) << text;  // the inner keys are not public either
  json mock = json::parse(text);
  ASSERT_TRUE(mock.is_object());
  EXPECT_EQ(mock.size(), kDefaultMockLength);
  EXPECT_TRUE(mock.contains("key_1") && mock.contains("key_3"));

  json with_inner = ReadJson(MakeMock(Format::kJson, in, {{"public_keys", {"/*"}}}, 1, "inner"));
  for (const auto& [key, record] : with_inner.items()) {
    EXPECT_EQ(key.rfind("key_", 0), 0u);
    ASSERT_TRUE(record.is_object());
    EXPECT_EQ(record.size(), 3u);  // age, ward, notes: the union of the records' keys
    EXPECT_TRUE(record["age"].is_number_integer());
    EXPECT_TRUE(record["ward"].is_string());  // null only where nothing else was seen
    EXPECT_EQ(record["ward"].get<std::string>().rfind("ward_", 0), 0u);
    EXPECT_EQ(record["notes"].size(), kDefaultMockLength);  // not 7
  }
}

TEST(JsonMockTest, DependsOnTheShapeOfTypesAlone) {
  std::string a = ReadFile(MakeMock(Format::kJson, TempFile("a.json", R"([
      {"name": "Ann Smith", "age": 34, "tags": ["x"], "email": null},
      {"name": "B", "age": 1000, "tags": [], "email": "b@x.org"}])"),
                                    {{"public_keys", {"/*"}}}, 2, "mock-a"));
  std::string b = ReadFile(MakeMock(Format::kJson, TempFile("b.json", R"([
      {"name": "Zebedee", "age": -5, "tags": ["a", "b", "c", "d"], "email": "z@y.com"},
      {"name": "Q", "age": 7, "email": null, "tags": ["longer string here"]},
      {"name": "R", "age": 8, "tags": [], "email": "r@y.com"}])"),
                                    {{"public_keys", {"/*"}}}, 2, "mock-b"));
  EXPECT_EQ(a, b);
  json mock = json::parse(a);
  ASSERT_EQ(mock.size(), kDefaultMockRows);  // not 2 or 3
  for (const json& record : mock) {
    EXPECT_FALSE(record["email"].is_null());
    EXPECT_EQ(record["email"].get<std::string>().find('@'), std::string::npos);
  }
}

TEST(JsonMockTest, UsesTheOwnersPathParameters) {
  std::string in = TempFile("in.json", R"({"patients": [{"age": 3, "sex": "F", "visits": [1.5]}],
                                          "site": "x"})");
  json params = {{"public_keys", {"", "/patients/*"}},
                 {"paths",
                  {{"/patients", {{"length", 50}}},
                   {"/patients/*/age", {{"min", 0}, {"max", 120}}},
                   {"/patients/*/sex", {{"categories", {"F", "M"}}}},
                   {"/patients/*/visits", {{"length", 0}}},
                   {"/site", {{"null_fraction", 1}}}}}};
  json mock = ReadJson(MakeMock(Format::kJson, in, params));
  ASSERT_EQ(mock["patients"].size(), 50u);
  EXPECT_TRUE(mock["site"].is_null());
  for (const json& p : mock["patients"]) {
    EXPECT_GE(p["age"].get<int64_t>(), 0);
    EXPECT_LE(p["age"].get<int64_t>(), 120);
    EXPECT_TRUE(p["sex"] == "F" || p["sex"] == "M");
    EXPECT_EQ(p["visits"], json::array());
  }
}

TEST(JsonMockTest, KeysThatNeedEscapingArePathsWithTildes) {
  std::string in = TempFile("in.json", R"({"a/b": {"c~d": 1, "e\"f": "s"}})");
  json mock = ReadJson(MakeMock(Format::kJson, in, {{"public_keys", {"", "/a~1b"}}}));
  EXPECT_TRUE(mock["a/b"]["c~d"].is_number_integer());
  EXPECT_TRUE(mock["a/b"]["e\"f"].is_string());
}

TEST(JsonMockTest, TopLevelScalarsAndEmptyContainers) {
  EXPECT_TRUE(ReadJson(MakeMock(Format::kJson, TempFile("n.json", "3.25"), nullptr, 1, "n"))
                  .is_number_float());
  EXPECT_TRUE(ReadJson(MakeMock(Format::kJson, TempFile("s.json", "\"secret\""), nullptr, 1, "s"))
                  .is_string());
  EXPECT_EQ(ReadJson(MakeMock(Format::kJson, TempFile("e.json", "[]"), nullptr, 1, "e")),
            json::array());
  EXPECT_EQ(ReadJson(MakeMock(Format::kJson, TempFile("o.json", "{}"), nullptr, 1, "o")),
            json::object());
  EXPECT_TRUE(
      ReadJson(MakeMock(Format::kJson, TempFile("z.json", "null"), nullptr, 1, "z")).is_null());
}

TEST(JsonMockRefusalTest, NamesTheBadParameter) {
  std::string in = TempFile("in.json", R"({"people": [{"age": 3, "name": "x"}]})");
  struct Case {
    json params;
    std::string message;
  } cases[] = {
      {{{"public_keys", {"/people"}}},
       "public_keys[0]: the document has no value at '/people'; paths use \"*\" for the elements "
       "of arrays and for the values of objects whose keys are not public"},
      {{{"public_keys", {"", "/people"}}}, "public_keys[1]: '/people' holds arrays, not objects"},
      {{{"public_keys", {""}}, {"paths", {{"/people/*/age", {{"min", 0}, {"max", 1}}}}}},
       "paths./people/*/age: the document has no value at '/people/*/age'; paths use \"*\" for "
       "the elements of arrays and for the values of objects whose keys are not public"},
      {{{"public_keys", {"", "/people/*"}},
        {"paths", {{"/people/*/name", {{"min", 0}, {"max", 1}}}}}},
       "paths./people/*/name.min: '/people/*/name' holds strings; min and max apply to numbers "
       "only"},
      {{{"public_keys", {"", "/people/*"}}, {"paths", {{"/people/*/age", {{"length", 2}}}}}},
       "paths./people/*/age.length: '/people/*/age' holds integers; length applies to arrays and "
       "to objects whose keys are not public"},
      {{{"rows", 5}},
       "rows: the document is not an array; set the length of an inner array with "
       "paths.<path>.length"},
      {{{"columns", json::object()}}, "columns: applies to CSV tables only; this asset is json"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.params.dump());
    Status s = MockRefusal(Format::kJson, in, c.params);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.message(), c.message);
  }
}

TEST(JsonMockRefusalTest, DeepDocumentsAndHugeMocks) {
  std::string deep = std::string(internal::kMaxJsonMockDepth + 1, '[') +
                     std::string(internal::kMaxJsonMockDepth + 1, ']');
  EXPECT_EQ(MockRefusal(Format::kJson, TempFile("deep.json", deep)).code(),
            StatusCode::kFailedPrecondition);
  std::string nested = std::string(20, '[') + "1" + std::string(20, ']');  // 3^19 numbers
  Status s = MockRefusal(Format::kJson, TempFile("nested.json", nested));
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "the mock would be larger than 256 MiB; ask for fewer rows or shorter arrays "
            "(\"length\" in \"paths\")");
}

TEST(JsonMockRefusalTest, RefusesInvalidJsonAndLeavesNoFile) {
  EXPECT_EQ(MockRefusal(Format::kJson, TempFile("bad.json", "{\"a\": ")).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace datasite::data
