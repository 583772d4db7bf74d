// Mock data: a file with the structure of a private one and random values, which data scientists
// may see and write code against.
#ifndef DATASITE_DATA_MOCK_H_
#define DATASITE_DATA_MOCK_H_

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "data/format.h"
#include "data/mock_params.h"

namespace datasite::data {

// Writes to `out_path` (created or truncated, mode 0600; removed again on failure) a mock of the
// file at `in_path`. A mock shows the structure of the private file and what the owner declares in
// `params`, nothing else: of the private file it reads only what the structure needs, and every
// other property of the mock (how many rows, which values, where nulls are) comes from `params`
// or from defaults that do not depend on the private data (mock_params.h). The same parameters and
// seed give the same mock. Returns the mock's schema, which InferSchema would return for
// `out_path`.
//   csv:  the private header and column types (int, float, bool, string); `rows` rows (default
//         100), LF line ends. A cell is one of the column's declared categories, else a number
//         uniform in its declared [min, max] (default [0, 100] for ints, [0, 1] for floats), a
//         random boolean, or a label "<column>_<k>", k uniform in 1..10. Empty with the column's
//         declared null_fraction (default 0; a number or boolean column keeps one value).
//   npy:  the private dtype, order and trailing dimensions; the first dimension is `rows`
//         (default 100; a 0-d array stays one value). Values uniform in the declared `values`
//         bounds (defaults as for CSV), booleans random, NaN with `values.null_fraction`.
//   json: the private document's shape of types, each path (array elements merged, "*") holding
//         one of the types seen there, each as likely (null only where nothing else was seen),
//         or a declared category, or null with the path's null_fraction. Arrays have `rows`
//         elements at the top (default 100) and 3 elsewhere, or the path's declared `length`.
//         An object's keys are copied only when its path is in `public_keys`; otherwise it has
//         the keys "key_1".."key_3" (or `length` of them), each holding the merged type of all
//         its private values. Numbers as for CSV; strings "<key>_<k>", <key> the nearest
//         public key (else "value").
//   raw:  kFailedPrecondition: a mock of raw bytes must be uploaded.
// Errors: those of InferSchema for the private file; kInvalidArgument naming the parameter that
// does not fit the file (a column or path it does not have, bounds on text, parameters of another
// format, a mock over kMaxMockBytes); kFailedPrecondition for JSON nested deeper than
// kMaxJsonMockDepth; kResourceExhausted when the disk is full; kInternal for other I/O errors.
// Uses a seeded std::mt19937_64: mock values are fake, not secret.
// Thread-compatible: concurrent calls on different files are safe.
Result<nlohmann::json> GenerateMock(Format format, const std::string& in_path,
                                    const std::string& out_path, const MockParams& params,
                                    uint64_t seed);

}  // namespace datasite::data

#endif  // DATASITE_DATA_MOCK_H_
