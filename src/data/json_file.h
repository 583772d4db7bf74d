// JSON documents: the schema and the mock, both read with a streaming (SAX) parser.
#ifndef DATASITE_DATA_JSON_FILE_H_
#define DATASITE_DATA_JSON_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "data/file_io.h"
#include "data/mock_params.h"

namespace datasite::data::internal {

// Arrays and objects may nest this deep, so that the parser's stacks stay small.
inline constexpr size_t kMaxJsonDepth = 10'000;
// A mock is made of documents nesting at most this deep (it is written by recursion)...
inline constexpr size_t kMaxJsonMockDepth = 1000;
// ...with at most this many paths in their shape ("*" standing for array elements and the values
// of objects whose keys are not public), whose text takes at most this many bytes.
inline constexpr size_t kMaxJsonMockNodes = 16'384;
inline constexpr size_t kMaxJsonMockPathBytes = 16 << 20;

// {"kind": "json", "type": "array"|"object"|"string"|"number"|"boolean"|"null", "length": N}, N
// being the elements of a top-level array or the keys of a top-level object, else 0.
// kInvalidArgument (with the line and column) when the file is not one valid JSON document, or
// nests deeper than kMaxJsonDepth.
Result<nlohmann::json> JsonSchema(const std::string& path);

// Writes a mock of the JSON document at `in_path` to `out`, which the caller closes; returns its
// schema. One streaming pass reads the document's shape of types; the mock is written from that
// shape and `params` (see GenerateMock).
Result<nlohmann::json> WriteJsonMock(const std::string& in_path, const MockParams& params,
                                     uint64_t seed, OutputFile& out);

}  // namespace datasite::data::internal

#endif  // DATASITE_DATA_JSON_FILE_H_
