// The schema of a dataset file: the structure a data scientist may know without seeing the data.
#ifndef DATASITE_DATA_SCHEMA_H_
#define DATASITE_DATA_SCHEMA_H_

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "data/format.h"

namespace datasite::data {

// The schema of a format that needs none of the bytes to tell it (raw bytes); nullopt for a format
// whose schema is read from the file. Lets a store without local files skip fetching a blob.
std::optional<nlohmann::json> SchemaWithoutBytes(Format format);

// Reads the file at `path` as `format` and returns its schema:
//   csv:  {"kind": "table", "columns": [{"name": "age", "type": "int"}, ...], "rows": N}, types
//         int, float, bool or string (see csv_file.h for how a column's type is inferred);
//   npy:  {"kind": "array", "dtype": "<f8", "shape": [3, 4]};
//   json: {"kind": "json", "type": "array"|"object"|"string"|"number"|"boolean"|"null",
//          "length": N} (the elements of a top-level array or keys of a top-level object, else 0);
//   raw:  {"kind": "bytes"}.
// Streams through the file with fixed buffers, in constant memory whatever its size (a CSV record
// may hold up to 1 MiB). kInvalidArgument, with a message a person can act on, when the file is not
// valid for its format; kNotFound when there is no file at `path`; kInternal on read errors.
// Thread-compatible: concurrent calls on different files are safe.
Result<nlohmann::json> InferSchema(Format format, const std::string& path);

}  // namespace datasite::data

#endif  // DATASITE_DATA_SCHEMA_H_
