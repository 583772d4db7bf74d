#include "data/schema.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/csv_file.h"
#include "data/format.h"
#include "data/test_util.h"

namespace datasite::data {
namespace {

using nlohmann::json;
using testing::Bytes;
using testing::NpyDict;
using testing::NpyFile;
using testing::ReadCsv;
using testing::TempFile;
using testing::TempPath;

json Columns(std::vector<std::pair<std::string, std::string>> columns) {
  json out = json::array();
  for (auto& [name, type] : columns) out.push_back({{"name", name}, {"type", type}});
  return out;
}

json CsvSchemaOf(const std::string& text) {
  auto schema = InferSchema(Format::kCsv, TempFile("in.csv", text));
  EXPECT_TRUE(schema.ok()) << schema.status().ToString();
  return schema.ok() ? *schema : json();
}

Result<json> SchemaOf(Format format, const std::string& text) {
  return InferSchema(format, TempFile("in", text));
}

// The refusal for `text` as `format`: its code must be kInvalidArgument.
std::string Refusal(Format format, const std::string& text) {
  auto schema = InferSchema(format, TempFile("in", text));
  EXPECT_FALSE(schema.ok()) << schema->dump();
  if (schema.ok()) return "";
  EXPECT_EQ(schema.status().code(), StatusCode::kInvalidArgument) << schema.status().ToString();
  return schema.status().message();
}

// ---- Formats ----

TEST(FormatTest, ParsesTheFourNames) {
  EXPECT_EQ(*ParseFormat("csv"), Format::kCsv);
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
  EXPECT_EQ(*ParseFormat("npy"), Format::kNpy);
  EXPECT_EQ(*ParseFormat("raw"), Format::kRaw);
}

TEST(FormatTest, RefusesOtherNames) {
  for (const char* name : {"", "CSV", "xlsx", "csv ", "parquet"}) {
    auto format = ParseFormat(name);
    ASSERT_FALSE(format.ok()) << name;
    EXPECT_EQ(format.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_NE(ParseFormat("xlsx").status().message().find("csv, json, npy or raw"),
            std::string::npos);
}

TEST(FormatTest, NamesRoundTrip) {
  for (Format f : {Format::kCsv, Format::kJson, Format::kNpy, Format::kRaw}) {
    EXPECT_EQ(*ParseFormat(FormatName(f)), f);
  }
}

TEST(FormatTest, ContentTypes) {
  EXPECT_EQ(ContentType(Format::kCsv), "text/csv");
  EXPECT_EQ(ContentType(Format::kJson), "application/json");
  EXPECT_EQ(ContentType(Format::kNpy), "application/octet-stream");
  EXPECT_EQ(ContentType(Format::kRaw), "application/octet-stream");
}

// ---- CSV ----

TEST(CsvSchemaTest, InfersEachType) {
  json schema = CsvSchemaOf(
      "age,height,smoker,name\n"
      "31,1.82,true,Ann\n"
      "-4,2,FALSE,Bob\n"
      "+7,1e2,False,42\n");
  EXPECT_EQ(
      schema,
      (json{
          {"kind", "table"},
          {"columns",
           Columns({{"age", "int"}, {"height", "float"}, {"smoker", "bool"}, {"name", "string"}})},
          {"rows", 3}}));
}

TEST(CsvSchemaTest, EmptyCellsDoNotDecideTheType) {
  json schema = CsvSchemaOf("a,b,c\n1,,\n,2.5,\n3,,\n");
  EXPECT_EQ(schema["columns"], Columns({{"a", "int"}, {"b", "float"}, {"c", "string"}}));
}

TEST(CsvSchemaTest, BlankCellsCountAsEmpty) {
  json schema = CsvSchemaOf("a,b\n 1 ,  \n2,\t\n");
  EXPECT_EQ(schema["columns"], Columns({{"a", "int"}, {"b", "string"}}));
}

TEST(CsvSchemaTest, NonFiniteNumbersMakeAStringColumn) {
  json schema = CsvSchemaOf("a,b,c\n1.5,1,2\nnan,inf,-Infinity\n");
  EXPECT_EQ(schema["columns"], Columns({{"a", "string"}, {"b", "string"}, {"c", "string"}}));
}

TEST(CsvSchemaTest, IntegersBeyond64BitsAreFloats) {
  json schema =
      CsvSchemaOf("a,b\n99999999999999999999,9223372036854775807\n1,-9223372036854775808\n");
  EXPECT_EQ(schema["columns"], Columns({{"a", "float"}, {"b", "int"}}));
}

TEST(CsvSchemaTest, ZeroAndOneAreIntsNotBools) {
  json schema = CsvSchemaOf("a,b\n0,true\n1,yes\n");
  EXPECT_EQ(schema["columns"], Columns({{"a", "int"}, {"b", "string"}}));
}

TEST(CsvSchemaTest, HeaderOnlyHasNoRows) {
  json schema = CsvSchemaOf("a,b\n");
  EXPECT_EQ(schema["rows"], 0);
  EXPECT_EQ(schema["columns"], Columns({{"a", "string"}, {"b", "string"}}));
  EXPECT_EQ(CsvSchemaOf("a,b")["rows"], 0);
}

TEST(CsvSchemaTest, LastLineEndIsOptional) {
  EXPECT_EQ(CsvSchemaOf("a,b\n1,2\n3,4")["rows"], 2);
  EXPECT_EQ(CsvSchemaOf("a,b\n1,2\n3,4\n")["rows"], 2);
}

TEST(CsvSchemaTest, CrlfAndCrLineEnds) {
  EXPECT_EQ(
      CsvSchemaOf("a,b\r\n1,x\r\n2,y\r\n"),
      (json{
          {"kind", "table"}, {"columns", Columns({{"a", "int"}, {"b", "string"}})}, {"rows", 2}}));
  EXPECT_EQ(CsvSchemaOf("a,b\r1,x\r2,y")["rows"], 2);
}

TEST(CsvSchemaTest, BlankLinesAreSkipped) {
  EXPECT_EQ(CsvSchemaOf("\na,b\n\n1,2\r\n\r\n3,4\n\n\n")["rows"], 2);
}

TEST(CsvSchemaTest, ByteOrderMarkIsDropped) {
  json schema = CsvSchemaOf("\xEF\xBB\xBFid,name\n1,x\n");
  EXPECT_EQ(schema["columns"][0]["name"], "id");
}

TEST(CsvSchemaTest, QuotedFieldsHoldCommasQuotesAndLineEnds) {
  json schema = CsvSchemaOf(
      "\"id\",\"full, name\",note\n"
      "1,\"Smith, Ann\",\"said \"\"hi\"\"\"\n"
      "2,\"two\nlines\",\"\"\n"
      "\"3\",x,\"a\r\nb\"\n");
  EXPECT_EQ(schema["rows"], 3);
  EXPECT_EQ(schema["columns"],
            Columns({{"id", "int"}, {"full, name", "string"}, {"note", "string"}}));
}

TEST(CsvSchemaTest, SingleColumnWithQuotedEmptyCells) {
  json schema = CsvSchemaOf("x\n\"\"\n1\n\"\"\n");
  EXPECT_EQ(schema["rows"], 3);
  EXPECT_EQ(schema["columns"], Columns({{"x", "int"}}));
}

TEST(CsvSchemaTest, NoValueAppearsInTheSchema) {
  json schema = CsvSchemaOf("name,salary\nAnn Secret,123456.78\n");
  EXPECT_EQ(schema.dump().find("Secret"), std::string::npos);
  EXPECT_EQ(schema.dump().find("123456"), std::string::npos);
}

TEST(CsvSchemaTest, RefusesRaggedRows) {
  EXPECT_EQ(Refusal(Format::kCsv, "a,b,c,d\n1,2,3,4\n1,2,3\n"),
            "line 3 has 3 fields, the header has 4");
  EXPECT_EQ(Refusal(Format::kCsv, "a,b\n1,2,3\n"), "line 2 has 3 fields, the header has 2");
  EXPECT_EQ(Refusal(Format::kCsv, "a,b\n1\n"), "line 2 has 1 field, the header has 2");
}

TEST(CsvSchemaTest, RaggedRowLineCountsLinesInsideQuotes) {
  EXPECT_EQ(Refusal(Format::kCsv, "a,b\n\"x\ny\",1\n\n2\n"),
            "line 5 has 1 field, the header has 2");
}

TEST(CsvSchemaTest, RefusesUnclosedQuote) {
  std::string message = Refusal(Format::kCsv, "a,b\n1,2\n3,\"never closed\n4,5\n");
  EXPECT_EQ(message, "line 3: a quoted field is never closed (a '\"' is missing)");
}

TEST(CsvSchemaTest, RefusesTextAfterAClosingQuote) {
  std::string message = Refusal(Format::kCsv, "a,b\n1,\"x\"y\n");
  EXPECT_NE(message.find("line 2: field 2 has text after its closing quote"), std::string::npos)
      << message;
}

TEST(CsvSchemaTest, RefusesALineLongerThanOneMiB) {
  std::string text = "a,b\n1," + std::string(internal::kMaxCsvRecordBytes, 'x') + "\n";
  std::string message = Refusal(Format::kCsv, text);
  EXPECT_EQ(message, "line 2: the record is longer than 1 MiB, the most one CSV record may hold");
}

TEST(CsvSchemaTest, RefusesAQuotedFieldLongerThanOneMiB) {
  std::string text = "a\n\"" + std::string(internal::kMaxCsvRecordBytes, '\n') + "\"\n";
  EXPECT_NE(Refusal(Format::kCsv, text).find("longer than 1 MiB"), std::string::npos);
}

TEST(CsvSchemaTest, AcceptsARecordJustUnderTheLimit) {
  std::string text = "a\n" + std::string(internal::kMaxCsvRecordBytes - 2 * 65536, 'x') + "\n";
  EXPECT_EQ(CsvSchemaOf(text)["rows"], 1);
}

TEST(CsvSchemaTest, RefusesMoreThanTenThousandColumns) {
  std::string header;
  for (int i = 0; i <= 10'000; ++i) header += (i ? ",c" : "c") + std::to_string(i);
  std::string message = Refusal(Format::kCsv, header + "\n");
  EXPECT_EQ(message, "line 1: the record has more than 10000 fields, the most a table may have");
}

TEST(CsvSchemaTest, AcceptsTenThousandColumns) {
  std::string header, row;
  for (int i = 0; i < 10'000; ++i) {
    header += (i ? ",c" : "c") + std::to_string(i);
    row += i ? ",1" : "1";
  }
  json schema = CsvSchemaOf(header + "\n" + row + "\n");
  EXPECT_EQ(schema["columns"].size(), 10'000u);
  EXPECT_EQ(schema["rows"], 1);
}

TEST(CsvSchemaTest, RefusesAnEmptyFile) {
  EXPECT_NE(Refusal(Format::kCsv, "").find("the file is empty"), std::string::npos);
  EXPECT_NE(Refusal(Format::kCsv, "\n\r\n").find("the file is empty"), std::string::npos);
}

TEST(CsvSchemaTest, RefusesAHeaderNotInUtf8) {
  EXPECT_EQ(Refusal(Format::kCsv,
                    "id,Gr\xF6\xDF"
                    "e\n1,2\n"),
            "line 1: the name of column 2 is not UTF-8 text; save the file as UTF-8");
}

TEST(CsvSchemaTest, MissingFileIsNotFound) {
  auto schema = InferSchema(Format::kCsv, TempPath("nothing-here.csv"));
  ASSERT_FALSE(schema.ok());
  EXPECT_EQ(schema.status().code(), StatusCode::kNotFound);
}

// ---- CSV records ----

TEST(CsvReaderTest, ReadsQuotingEdgeCases) {
  std::string path = TempFile("in.csv",
                              "a,\"b,c\",\"d \"\"q\"\"\",\"e\nf\",\n"
                              "\"\",x\"y,\" lead\",,\"\"\"\"\n"
                              "last,\"\",\"cr\r\nlf\",z,end");
  auto records = ReadCsv(path);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0], (std::vector<std::string>{"a", "b,c", "d \"q\"", "e\nf", ""}));
  EXPECT_EQ(records[1], (std::vector<std::string>{"", "x\"y", " lead", "", "\""}));
  EXPECT_EQ(records[2], (std::vector<std::string>{"last", "", "cr\r\nlf", "z", "end"}));
}

TEST(CsvReaderTest, ReportsTheLineEachRecordStartsOn) {
  std::string path = TempFile("in.csv", "h\n\"a\nb\"\n\nc\r\nd");
  auto file = internal::InputFile::Open(path);
  ASSERT_TRUE(file.ok());
  internal::CsvReader reader(std::move(file).value());
  std::vector<int64_t> lines;
  while (*reader.Next()) lines.push_back(reader.line());
  EXPECT_EQ(lines, (std::vector<int64_t>{1, 2, 5, 6}));
}

TEST(CsvReaderTest, FieldsLongerThanTheReadBuffer) {
  std::string big(3 * internal::kIoBufferSize + 17, 'q');
  std::string path = TempFile("in.csv", "a,b\n" + big + ",\"" + big + "\"\n");
  auto records = ReadCsv(path);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1][0], big);
  EXPECT_EQ(records[1][1], big);
}

// ---- npy ----

json NpySchemaOf(const std::string& bytes) {
  auto schema = InferSchema(Format::kNpy, TempFile("in.npy", bytes));
  EXPECT_TRUE(schema.ok()) << schema.status().ToString();
  return schema.ok() ? *schema : json();
}

TEST(NpySchemaTest, Float64Matrix) {
  std::vector<double> values(12, 1.5);
  EXPECT_EQ(NpySchemaOf(NpyFile(NpyDict("<f8", "(3, 4)"), Bytes(values))),
            (json{{"kind", "array"}, {"dtype", "<f8"}, {"shape", {3, 4}}}));
}

TEST(NpySchemaTest, EveryDtype) {
  for (std::string descr : {"|b1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u2", "<u4", "<u8", "<f4",
                            "<f8", ">i2", ">i4", ">i8", ">u8", ">f4", ">f8", "=f8"}) {
    int size = descr.back() - '0';
    std::string data(5 * size, '\1');
    json schema = NpySchemaOf(NpyFile(NpyDict(descr, "(5,)"), data));
    EXPECT_EQ(schema["dtype"], descr);
    EXPECT_EQ(schema["shape"], json::array({5}));
  }
}

TEST(NpySchemaTest, FortranOrderAndVersions2And3) {
  std::string data = Bytes(std::vector<int32_t>(6, 7));
  for (int major : {1, 2, 3}) {
    json schema = NpySchemaOf(NpyFile(NpyDict("<i4", "(2, 3)", true), data, major));
    EXPECT_EQ(schema, (json{{"kind", "array"}, {"dtype", "<i4"}, {"shape", {2, 3}}})) << major;
  }
}

TEST(NpySchemaTest, ScalarAndEmptyArrays) {
  EXPECT_EQ(NpySchemaOf(NpyFile(NpyDict("<f8", "()"), Bytes(std::vector<double>{2.0})))["shape"],
            json::array());
  EXPECT_EQ(NpySchemaOf(NpyFile(NpyDict("<f8", "(0, 5)"), ""))["shape"], json::array({0, 5}));
}

TEST(NpySchemaTest, HeaderSpellings) {
  std::string data = Bytes(std::vector<int64_t>(6, 1));
  EXPECT_EQ(NpySchemaOf(NpyFile("{\"shape\":(2,3),\"fortran_order\":False,\"descr\":\"<i8\"}",
                                data))["shape"],
            json::array({2, 3}));
  EXPECT_EQ(NpySchemaOf(
                NpyFile("{'descr': '<i8', 'fortran_order': False, 'shape': (6L,)}", data))["shape"],
            json::array({6}));
}

TEST(NpySchemaTest, RefusesBadMagic) {
  EXPECT_EQ(Refusal(Format::kNpy, "PK\3\4 this is a zip"),
            "not a .npy file: bad magic (it must start with \\x93NUMPY)");
  EXPECT_EQ(Refusal(Format::kNpy, ""),
            "not a .npy file: bad magic (it must start with \\x93NUMPY)");
  EXPECT_EQ(Refusal(Format::kNpy, "\x93NUM"),
            "not a .npy file: bad magic (it must start with \\x93NUMPY)");
}

TEST(NpySchemaTest, RefusesUnknownVersions) {
  std::string file = NpyFile(NpyDict("<f8", "(1,)"), Bytes(std::vector<double>{1}));
  file[6] = 4;
  EXPECT_EQ(Refusal(Format::kNpy, file),
            "unsupported .npy format version 4.0 (1.0, 2.0 and 3.0 are supported)");
}

TEST(NpySchemaTest, RefusesObjectArrays) {
  std::string message = Refusal(Format::kNpy, NpyFile(NpyDict("|O", "(2,)"), std::string(16, 0)));
  EXPECT_NE(message.find("object arrays (dtype '|O')"), std::string::npos) << message;
}

// Issue 12: np.array(["a", "b"]) was refused; strings, datetimes, complex and records are stored.
TEST(NpySchemaTest, ReadsStringDatetimeComplexAndRecordDtypes) {
  struct Case {
    std::string descr;
    size_t item_size;
  } cases[] = {{"<c16", 16}, {"<f2", 2},      {"<U5", 20},   {"|S3", 3}, {"<M8[ns]", 8},
               {"|V8", 8},   {">m8[10s]", 8}, {"<M8[D]", 8}, {"<M8", 8}, {"<c8", 8}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.descr);
    auto schema =
        SchemaOf(Format::kNpy, NpyFile(NpyDict(c.descr, "(2,)"), std::string(2 * c.item_size, 0)));
    ASSERT_TRUE(schema.ok()) << schema.status().ToString();
    EXPECT_EQ((*schema)["dtype"], c.descr);
  }
}

TEST(NpySchemaTest, ReadsStructuredDtypes) {
  const std::string descr =
      "[('id', '<i4'), ('name', '<U4'), ('pos', '<f8', (2,)), ('inner', [('a', '|u1'), "
      "('b', '|S2')]), ('', '|V1')]";
  const size_t item = 4 + 16 + 16 + 3 + 1;
  auto schema = SchemaOf(
      Format::kNpy, NpyFile("{'descr': " + descr + ", 'fortran_order': False, 'shape': (3,), }",
                            std::string(3 * item, 0)));
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_EQ((*schema)["dtype"], descr);
  // One byte short: the item size is computed, not taken on trust.
  std::string message = Refusal(
      Format::kNpy, NpyFile("{'descr': " + descr + ", 'fortran_order': False, 'shape': (3,), }",
                            std::string(3 * item - 1, 0)));
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;
}

TEST(NpySchemaTest, RefusesStructuredDtypesWithObjectsTitlesOrNoBytes) {
  for (std::string descr : {"[('x', '|O')]", "[(('title', 'x'), '<i4')]", "[]", "[('x', '<i4')",
                            "[('x', [('y', '|O')])]", "[('x', '<i4', (2,)"}) {
    SCOPED_TRACE(descr);
    EXPECT_FALSE(SchemaOf(Format::kNpy, NpyFile("{'descr': " + descr +
                                                    ", 'fortran_order': False, 'shape': (1,), }",
                                                std::string(8, 0)))
                     .ok());
  }
  std::string deep = "'<i4'";
  for (int i = 0; i < 12; ++i) deep = "[('x', " + deep + ")]";
  EXPECT_FALSE(SchemaOf(Format::kNpy,
                        NpyFile("{'descr': " + deep + ", 'fortran_order': False, 'shape': (1,), }",
                                std::string(4, 0)))
                   .ok());
}

TEST(NpySchemaTest, RefusesAHeaderThatIsNotUtf8) {
  // A field name's bytes reach the schema, which is JSON: invalid UTF-8 there made dumping it
  // throw (found by fuzz/npy_file_fuzzer).
  std::string message = Refusal(
      Format::kNpy, NpyFile("{'descr': [('a', '|u1'), ('b\xea', '|u1')], 'fortran_order': False, "
                            "'shape': (1,), }",
                            std::string(2, 0)));
  EXPECT_NE(message.find("not valid UTF-8"), std::string::npos) << message;
  EXPECT_TRUE(SchemaOf(Format::kNpy, NpyFile("{'descr': [('\xc3\xa9t\xc3\xa9', '|u1')], "
                                             "'fortran_order': False, 'shape': (1,), }",
                                             std::string(1, 0)))
                  .ok());
}

TEST(NpySchemaTest, RefusesUnsupportedDtypes) {
  for (std::string descr :
       {"<i3", "<f16", "<U0", "<U", "|S01", "<M8[xs]", "<m8[0s]", "<M4", "|V99999999999"}) {
    std::string message =
        Refusal(Format::kNpy, NpyFile(NpyDict(descr, "(1,)"), std::string(16, 0)));
    EXPECT_EQ(message.rfind("unsupported dtype '" + descr + "': use bool", 0), 0u) << message;
  }
}

TEST(NpySchemaTest, RefusesMalformedHeaders) {
  std::string data(8, 0);
  for (std::string dict : {
           "",
           "[]",
           "{'descr': '<f8', 'fortran_order': False}",
           "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
           "{'descr': '<f8', 'fortran_order': false, 'shape': (1,)}",
           "{'descr': '<f8', 'fortran_order': False, 'shape': [1]}",
           "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}",
           "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'shape': (1,)}",
           "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)} trailing",
           "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)",
           "{'descr': '<f8', 'fortran_order': False, 'shape': (1,) 'x'}",
           "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,)}",
           "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296)}",
       }) {
    std::string message = Refusal(Format::kNpy, NpyFile(dict, data));
    EXPECT_EQ(message.rfind("not a valid .npy header: ", 0), 0u) << dict << " -> " << message;
  }
}

TEST(NpySchemaTest, RefusesTruncatedData) {
  std::string message =
      Refusal(Format::kNpy, NpyFile(NpyDict("<f8", "(3, 4)"), std::string(95, 0)));
  EXPECT_EQ(message,
            "the .npy file is truncated: its header promises 96 bytes of data, it holds 95");
}

TEST(NpySchemaTest, RefusesBytesAfterTheData) {
  std::string message = Refusal(Format::kNpy, NpyFile(NpyDict("<i2", "(2,)"), std::string(7, 0)));
  EXPECT_EQ(message, "the .npy file has 3 bytes after the data its header describes");
}

TEST(NpySchemaTest, RefusesAHeaderCutShort) {
  std::string file = NpyFile(NpyDict("<f8", "(1,)"), "");
  EXPECT_EQ(Refusal(Format::kNpy, file.substr(0, 40)),
            "not a valid .npy file: it ends inside its header");
  EXPECT_EQ(Refusal(Format::kNpy, file.substr(0, 9)),
            "not a valid .npy file: it ends inside its header");
}

TEST(NpySchemaTest, RefusesAHugeHeaderLength) {
  std::string file("\x93NUMPY\x02\x00\xff\xff\xff\x7f", 12);
  EXPECT_EQ(Refusal(Format::kNpy, file), "not a valid .npy header: it is longer than 1 MiB");
}

// ---- JSON ----

json JsonSchemaOf(const std::string& text) {
  auto schema = InferSchema(Format::kJson, TempFile("in.json", text));
  EXPECT_TRUE(schema.ok()) << schema.status().ToString();
  return schema.ok() ? *schema : json();
}

json JsonShape(const std::string& type, int length) {
  return {{"kind", "json"}, {"type", type}, {"length", length}};
}

TEST(JsonSchemaTest, TopLevelTypes) {
  EXPECT_EQ(JsonSchemaOf("[1, [2, 3], {\"a\": [4]}, null]"), JsonShape("array", 4));
  EXPECT_EQ(JsonSchemaOf("{\"a\": {\"b\": 1, \"c\": 2}, \"d\": []}"), JsonShape("object", 2));
  EXPECT_EQ(JsonSchemaOf("\"text\""), JsonShape("string", 0));
  EXPECT_EQ(JsonSchemaOf(" -1.5e3 "), JsonShape("number", 0));
  EXPECT_EQ(JsonSchemaOf("18446744073709551615"), JsonShape("number", 0));
  EXPECT_EQ(JsonSchemaOf("true"), JsonShape("boolean", 0));
  EXPECT_EQ(JsonSchemaOf("null\n"), JsonShape("null", 0));
  EXPECT_EQ(JsonSchemaOf("[]"), JsonShape("array", 0));
  EXPECT_EQ(JsonSchemaOf("{}"), JsonShape("object", 0));
}

TEST(JsonSchemaTest, ByteOrderMarkIsAccepted) {
  EXPECT_EQ(JsonSchemaOf("\xEF\xBB\xBF[1]"), JsonShape("array", 1));
}

TEST(JsonSchemaTest, RefusesInvalidJsonWithTheLine) {
  std::string message = Refusal(Format::kJson, "[1,\n 2,\n tru]");
  EXPECT_EQ(message.rfind("not valid JSON: parse error at line 3, column", 0), 0u) << message;
}

TEST(JsonSchemaTest, RefusesEverythingThatIsNotOneDocument) {
  for (std::string text : {"", "   ", "[1] [2]", "{\"a\" 1}", "{'a': 1}", "[1,]", "NaN",
                           "\"unterminated", "\"bad \xff utf8\"", "// comment\n1", "[1e400]"}) {
    std::string message = Refusal(Format::kJson, text);
    EXPECT_EQ(message.rfind("not valid JSON: ", 0), 0u) << text << " -> " << message;
  }
}

TEST(JsonSchemaTest, RefusesVeryDeepNesting) {
  std::string deep(20'000, '[');
  EXPECT_EQ(Refusal(Format::kJson, deep),
            "the JSON nests arrays and objects deeper than 10000 levels");
}

TEST(JsonSchemaTest, LongMessagesAreCut) {
  std::string message = Refusal(Format::kJson, "[\"" + std::string(5000, 'x'));
  EXPECT_LT(message.size(), 400u);
}

// ---- raw ----

TEST(RawSchemaTest, AnyBytes) {
  auto schema = InferSchema(Format::kRaw, TempFile("in.bin", std::string("\0\1\2\xff", 4)));
  ASSERT_TRUE(schema.ok());
  EXPECT_EQ(*schema, (json{{"kind", "bytes"}}));
}

TEST(RawSchemaTest, MissingFileIsNotFound) {
  for (Format f : {Format::kRaw, Format::kJson, Format::kNpy}) {
    auto schema = InferSchema(f, TempPath("absent"));
    ASSERT_FALSE(schema.ok());
    EXPECT_EQ(schema.status().code(), StatusCode::kNotFound);
  }
}

}  // namespace
}  // namespace datasite::data
