// What the three data-format targets share: one uploaded file through schema inference and mock
// generation, with the invariants src/data/schema.h and mock.h promise. Fuzzing only.
#ifndef DATASITE_FUZZ_DATA_FUZZ_H_
#define DATASITE_FUZZ_DATA_FUZZ_H_

#include <string>
#include <string_view>

#include "data/format.h"
#include "data/mock.h"
#include "data/schema.h"
#include "fuzz_util.h"

namespace datasite::fuzz {

// Writes `bytes` to one reused scratch file and infers its schema as `format`. When that succeeds
// it makes a mock and checks that (1) GenerateMock returned the schema InferSchema finds in the
// mock, and (2) the mock has the private file's structure: the same schema.
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
  auto mock_schema = data::GenerateMock(format, in_path, out_path, SeedOf(bytes));
  Check(mock_schema.ok(),
        "GenerateMock failed on a file InferSchema accepts: " + mock_schema.status().ToString());
  auto reread = data::InferSchema(format, out_path);
  Check(reread.ok(), "the mock is not valid: " + reread.status().ToString());
  Check(*reread == *mock_schema, "GenerateMock returned " + mock_schema->dump() +
                                     " but the mock's schema is " + reread->dump());
  Check(*reread == *schema,
        "the mock's schema " + reread->dump() + " differs from the private " + schema->dump());
}

}  // namespace datasite::fuzz

#endif  // DATASITE_FUZZ_DATA_FUZZ_H_
