// What the three data-format targets share: one uploaded file through schema inference and mock
// generation, with the invariants src/data/schema.h and mock.h promise. Fuzzing only.
#ifndef DATASITE_FUZZ_DATA_FUZZ_H_
#define DATASITE_FUZZ_DATA_FUZZ_H_

#include <algorithm>
#include <string>
#include <string_view>

#include "data/format.h"
#include "data/mock.h"
#include "data/schema.h"
#include "fuzz_util.h"

namespace datasite::fuzz {

// The part of a schema a mock keeps: not the row count, a JSON length or an array's first
// dimension.
inline nlohmann::json Structure(nlohmann::json schema) {
  schema.erase("rows");
  schema.erase("length");
  if (schema.contains("shape") && !schema["shape"].empty()) schema["shape"].erase(0);
  return schema;
}

// How deeply `bytes` nests JSON arrays and objects (brackets outside strings).
inline int JsonNesting(std::string_view bytes) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : bytes) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// JSON nested deeper than this gets no mock here: each level multiplies the mock by
// kDefaultMockLength (3), so 28 bytes of nested arrays make a mock of some 190 MB, under the
// 256 MiB cap (mock_test.cc checks the cap). Writing that in an instrumented build passes the
// fuzzer's timeout (112 s, seen), which is not a defect of the code under test.
inline constexpr int kMaxMockedJsonNesting = 9;

// Writes `bytes` to one reused scratch file and infers its schema as `format`. When that succeeds
// it makes a mock with the default parameters and checks that (1) GenerateMock returned the schema
// InferSchema finds in the mock, and (2) the mock has the private file's structure. GenerateMock
// may refuse only what it documents for such a file: too deep a JSON document
// (kFailedPrecondition), a mock past the size cap or a JSON shape past the path cap
// (kInvalidArgument).
inline void FuzzDataFile(data::Format format, std::string_view bytes) {
  static const std::string in_path = ScratchDir() + "/in";
  static const std::string out_path = ScratchDir() + "/mock";
  WriteFile(in_path, bytes);
  auto schema = data::InferSchema(format, in_path);
  if (!schema.ok()) {
    Check(schema.status().code() == StatusCode::kInvalidArgument,
          "InferSchema failed with another code than kInvalidArgument: " +
              schema.status().ToString());
    return;
  }
  if (format == data::Format::kJson && JsonNesting(bytes) > kMaxMockedJsonNesting) return;
  auto mock_schema = data::GenerateMock(format, in_path, out_path, {}, SeedOf(bytes));
  if (!mock_schema.ok()) {
    StatusCode code = mock_schema.status().code();
    Check(code == StatusCode::kFailedPrecondition || code == StatusCode::kInvalidArgument,
          "GenerateMock failed on a file InferSchema accepts: " + mock_schema.status().ToString());
    return;
  }
  auto reread = data::InferSchema(format, out_path);
  Check(reread.ok(), "the mock is not valid: " + reread.status().ToString());
  Check(*reread == *mock_schema, "GenerateMock returned " + mock_schema->dump() +
                                     " but the mock's schema is " + reread->dump());
  Check(Structure(*reread) == Structure(*schema), "the mock's schema " + reread->dump() +
                                                      " has another structure than the private " +
                                                      schema->dump());
}

}  // namespace datasite::fuzz

#endif  // DATASITE_FUZZ_DATA_FUZZ_H_
