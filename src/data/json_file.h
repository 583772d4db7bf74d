// JSON documents: the schema and the mock, both read with a streaming (SAX) parser.
#ifndef DATASITE_DATA_JSON_FILE_H_
#define DATASITE_DATA_JSON_FILE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "data/file_io.h"

namespace datasite::data::internal {

// Number ranges are kept per path (array indices collapsed, "/users/*/age") for this many paths;
// numbers at other paths share one document-wide range.
inline constexpr size_t kMaxJsonPaths = 16'384;
// Private strings of ASCII letters only (the alphabet of mock strings) are remembered, as hashes,
// up to this many and this long, so that a mock string never equals one of them.
inline constexpr size_t kMaxRememberedStrings = 131'072;
inline constexpr size_t kMaxRememberedStringLength = 12;
// Arrays and objects may nest this deep, so that the parser's stacks stay small.
inline constexpr size_t kMaxJsonDepth = 10'000;

// {"kind": "json", "type": "array"|"object"|"string"|"number"|"boolean"|"null", "length": N}, N
// being the elements of a top-level array or the keys of a top-level object, else 0.
// kInvalidArgument (with the line and column) when the file is not one valid JSON document, or
// nests deeper than kMaxJsonDepth.
Result<nlohmann::json> JsonSchema(const std::string& path);

// Writes a mock of the JSON document at `in_path` to `out`, which the caller closes; returns its
// schema. Two streaming passes: number ranges per path, then the mock.
Result<nlohmann::json> WriteJsonMock(const std::string& in_path, uint64_t seed, OutputFile& out);

}  // namespace datasite::data::internal

#endif  // DATASITE_DATA_JSON_FILE_H_
