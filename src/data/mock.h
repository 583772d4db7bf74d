// Mock data: a file with the structure of a private one and random values, which data scientists
// may see and write code against.
#ifndef DATASITE_DATA_MOCK_H_
#define DATASITE_DATA_MOCK_H_

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "data/format.h"

namespace datasite::data {

// Writes to `out_path` (created or truncated, mode 0600; removed again on failure) a mock of the
// file at `in_path`: the same structure, random values, and no value copied from the private file.
// The same seed gives the same mock. Returns the mock's schema, which InferSchema would return for
// `out_path`. Reads the private file in constant memory, in one streaming pass (two for JSON).
//   csv:  the same header, row count, column types and line ends; ints uniform in the column's
//         [min - j, max + j] (j a random 5-15% of max - min, at least 1); floats likewise, written
//         with one more digit than any private cell shows, the last one not 0, so that no mock
//         float equals a private one; bools random, in the column's case style; strings replaced
//         by "<column>_<k>" labels, as many distinct ones as the column has distinct values
//         (counted up to 1000 per column, fewer in tables of over 250 columns); as many empty
//         cells as the column has, at random rows.
//   npy:  the same header (dtype, order, shape); values uniform in the jittered [min, max] of the
//         finite private values; as many NaNs and infinities, at random places.
//   json: the same document shape, compact: keys kept (they are structure), arrays keep their
//         length, null stays null, booleans random, numbers random of the same kind (integer or
//         float) in the jittered range of the numbers at the same path (array indices collapsed),
//         strings replaced by random ASCII letters, as many as the private string's characters,
//         never equal to a private string of letters.
//   raw:  kFailedPrecondition: a mock of raw bytes must be uploaded.
// Errors: those of InferSchema for the private file; kResourceExhausted when the disk is full;
// kInternal for other I/O errors. Uses a seeded std::mt19937_64: mock values are fake, not secret.
// Thread-compatible: concurrent calls on different files are safe.
Result<nlohmann::json> GenerateMock(Format format, const std::string& in_path,
                                    const std::string& out_path, uint64_t seed);

}  // namespace datasite::data

#endif  // DATASITE_DATA_MOCK_H_
